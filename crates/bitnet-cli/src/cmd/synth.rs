//! `bitnet synth`: write a deterministic random BitNet b1.58 checkpoint.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use bitnet_convert::synth::{synth, EmbedType, Format, Shape, SynthSpec};

#[derive(clap::Args)]
pub struct Args {
    /// Model shape: tiny (vocab 512, hidden 256, 2 layers, head_dim 64, 2:1 GQA),
    /// gqa (vocab 1024, hidden 1024, head_dim 128, 4:1 GQA), 2b4t (bitnet-b1.58-2B-4T).
    #[arg(long, default_value = "tiny")]
    shape: String,
    /// Layout: hf-packed, hf-bf16 (directories), gguf-i2s, gguf-tq2, gguf-tq1 (files).
    #[arg(long)]
    format: String,
    /// Output: a .gguf file for GGUF formats, a directory for HF formats.
    #[arg(long)]
    out: PathBuf,
    /// Random seed; the same seed gives the same model in every format.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// GGUF token embedding type: f16 (as bitnet.cpp), f32 or bf16.
    #[arg(long, default_value = "f16")]
    embed: String,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let shape = Shape::named(&a.shape).with_context(|| {
        format!(
            "unknown shape {:?} (expected one of {})",
            a.shape,
            Shape::NAMES.join(", ")
        )
    })?;
    let spec = SynthSpec {
        shape,
        format: a.format.parse::<Format>()?,
        seed: a.seed,
        embed: a.embed.parse::<EmbedType>()?,
    };
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let t0 = Instant::now();
    let summary = synth(&spec, &a.out, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .context("writing the checkpoint")?;
    bar.finish_and_clear();
    for f in &summary.files {
        println!("{}", f.display());
    }
    eprintln!(
        "wrote {} bytes ({} {}, seed {}) in {:.2} s",
        summary.bytes,
        a.shape,
        spec.format.name(),
        spec.seed,
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
