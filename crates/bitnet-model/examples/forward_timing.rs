//! Load a model and time a batched prefill and token-by-token decode (greedy):
//! `cargo run --release -p bitnet-model --example forward_timing -- MODEL [PROMPT_LEN] [DECODE]`.
//! A quick look at end-to-end speed; the benchmarks proper live with the kernels.

use std::time::Instant;

use bitnet_model::{argmax, Logits, Model};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: forward_timing MODEL [PROMPT_LEN] [DECODE]")?;
    let prompt_len: usize = args.next().map_or(Ok(64), |s| s.parse())?;
    let decode: usize = args.next().map_or(Ok(32), |s| s.parse())?;

    let t = Instant::now();
    let model = Model::load(&path)?;
    let load = t.elapsed().as_secs_f64();
    let c = &model.config;
    eprintln!(
        "{}: {} layers, dim {}, vocab {}, weights {:.1} MiB, loaded in {load:.2} s, {} kernel threads",
        c.arch_name,
        c.n_layers,
        c.dim,
        c.vocab_size,
        model.weights.bytes() as f64 / (1 << 20) as f64,
        bitnet_kernels::num_threads()
    );
    let prompt: Vec<u32> = (0..prompt_len as u32)
        .map(|i| (1 + i * 7919) % c.vocab_size as u32)
        .collect();
    let mut state = model.new_state(prompt_len + decode)?;
    let t = Instant::now();
    let mut next = argmax(model.forward(&mut state, &prompt, 0, Logits::Last)?) as u32;
    let prefill = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for _ in 0..decode {
        let pos = state.pos();
        next = argmax(model.forward(&mut state, &[next], pos, Logits::Last)?) as u32;
    }
    let dec = t.elapsed().as_secs_f64();
    eprintln!(
        "prefill {prompt_len} tokens: {:.2} s ({:.1} tok/s); decode {decode} tokens: {:.2} s ({:.2} tok/s); last id {next}",
        prefill,
        prompt_len as f64 / prefill,
        dec,
        decode as f64 / dec
    );
    Ok(())
}
