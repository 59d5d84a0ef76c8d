//! `bitnet inspect MODEL`: architecture, hyperparameters, every tensor's type, shape and bytes,
//! total weight bytes, and a tokenizer summary. MODEL is a GGUF file or an HF directory.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use bitnet_gguf::GgufFile;
use bitnet_model::hf::SafetensorsSet;
use bitnet_model::Config;

#[derive(clap::Args)]
pub struct Args {
    /// GGUF file or Hugging Face model directory.
    pub model: PathBuf,
}

/// One row of the tensor table.
struct Row {
    name: String,
    ty: String,
    shape: String,
    bytes: u64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let path = super::common::resolve_model(&args.model.to_string_lossy())?;
    print!("{}", report(&path)?);
    Ok(())
}

/// The whole report for a GGUF file or an HF directory.
pub fn report(path: &Path) -> anyhow::Result<String> {
    let mut out = String::new();
    if path.is_dir() {
        inspect_hf(&mut out, path)?;
    } else if path.exists() {
        inspect_gguf(&mut out, path)?;
    } else {
        anyhow::bail!("{}: no such file or directory", path.display());
    }
    chat_template(&mut out, path)?;
    Ok(out)
}

/// Which chat format `run --chat` / `chat` will use, and whether a stored template was replaced
/// because it is known to be broken (the published 2B4T GGUF embeds a placeholder).
fn chat_template(out: &mut String, path: &Path) -> std::fmt::Result {
    let Ok(loaded) = bitnet_tokenizer::load_tokenizer(path) else {
        return Ok(());
    };
    match bitnet_tokenizer::chat::ChatTemplate::from_loaded(&loaded) {
        Ok(t) => {
            writeln!(out, "chat template: {}", t.describe())?;
            if let Some(note) = t.override_note() {
                writeln!(out, "  note: {note}")?;
            }
            Ok(())
        }
        Err(e) => writeln!(out, "chat template: none; `--chat` is unavailable ({e})"),
    }
}

fn print_config(out: &mut String, config: anyhow::Result<Config>) -> std::fmt::Result {
    match config {
        Ok(c) => {
            writeln!(out, "architecture: {} ({:?})", c.arch_name, c.arch)?;
            writeln!(out, "hyperparameters:")?;
            let rows: [(&str, String); 17] = [
                ("vocab_size", c.vocab_size.to_string()),
                ("hidden_size", c.dim.to_string()),
                ("intermediate_size", c.ffn_dim.to_string()),
                ("layers", c.n_layers.to_string()),
                ("heads", c.n_heads.to_string()),
                ("kv_heads", c.n_kv_heads.to_string()),
                ("head_dim", c.head_dim.to_string()),
                ("context_length", c.max_context.to_string()),
                ("rope_theta", c.rope_theta.to_string()),
                ("rope_style", format!("{:?}", c.rope_style)),
                ("rms_norm_eps", format!("{:e}", c.norm_eps)),
                ("activation", format!("{:?}", c.activation)),
                ("sub_norms", c.sub_norms.to_string()),
                (
                    "bitlinear_input_norm_eps",
                    c.linear_norm_eps
                        .map_or("none".into(), |e| format!("{e:e}")),
                ),
                ("tied_embeddings", c.tied_embeddings.to_string()),
                ("bos_token_id", opt(c.bos_token_id)),
                ("eos_token_id", opt(c.eos_token_id)),
            ];
            for (k, v) in rows {
                writeln!(out, "  {k:<26} {v}")?;
            }
        }
        Err(e) => writeln!(out, "configuration: error: {e:#}")?,
    }
    Ok(())
}

fn opt(v: Option<u32>) -> String {
    v.map_or("none".into(), |v| v.to_string())
}

fn print_tensors(out: &mut String, rows: &[Row], shape_note: &str) -> std::fmt::Result {
    writeln!(out, "tensors: {} ({shape_note})", rows.len())?;
    let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    writeln!(
        out,
        "  {:<w$}  {:<6}  {:<18}  {:>12}",
        "name", "type", "shape", "bytes"
    )?;
    for r in rows {
        writeln!(
            out,
            "  {:<w$}  {:<6}  {:<18}  {:>12}",
            r.name, r.ty, r.shape, r.bytes
        )?;
    }
    let total: u64 = rows.iter().map(|r| r.bytes).sum();
    writeln!(
        out,
        "total weight bytes: {total} ({:.2} MiB)",
        total as f64 / (1024.0 * 1024.0)
    )
}

fn shape_str<T: std::fmt::Display>(dims: &[T]) -> String {
    format!(
        "[{}]",
        dims.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn inspect_gguf(out: &mut String, path: &Path) -> anyhow::Result<()> {
    let f = GgufFile::open(path).with_context(|| format!("opening {}", path.display()))?;
    writeln!(
        out,
        "model: {} (GGUF v{})",
        path.display(),
        f.header().version
    )?;
    print_config(
        out,
        bitnet_model::config_from_path(path).map_err(Into::into),
    )?;
    let rows: Vec<Row> = f
        .tensors()
        .iter()
        .map(|t| Row {
            name: t.name.clone(),
            ty: t.ggml_type.to_string(),
            shape: shape_str(&t.dims),
            bytes: t.size,
        })
        .collect();
    print_tensors(out, &rows, "shapes in GGUF order [ne0 = inner, ne1, …]")?;
    // Tokenizer from metadata.
    let get_str = |k: &str| f.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let n_tokens = f
        .get("tokenizer.ggml.tokens")
        .and_then(|v| v.as_array())
        .map(|a| a.len());
    match (get_str("tokenizer.ggml.model"), n_tokens) {
        (Some(kind), Some(n)) => {
            let mut extra = Vec::new();
            if let Some(pre) = get_str("tokenizer.ggml.pre") {
                extra.push(format!("pre-tokenizer {pre}"));
            }
            if let Some(m) = f.get("tokenizer.ggml.merges").and_then(|v| v.as_array()) {
                extra.push(format!("{} merges", m.len()));
            }
            for (k, label) in [
                ("tokenizer.ggml.bos_token_id", "bos"),
                ("tokenizer.ggml.eos_token_id", "eos"),
                ("tokenizer.ggml.eot_token_id", "eot"),
            ] {
                if let Some(id) = f.get(k).and_then(|v| v.as_u64()) {
                    extra.push(format!("{label} {id}"));
                }
            }
            if let Some(t) = get_str("tokenizer.chat_template") {
                extra.push(format!("chat template ({} chars)", t.len()));
            }
            writeln!(out, "tokenizer: {kind}, {n} tokens; {}", extra.join(", "))?;
        }
        _ => writeln!(out, "tokenizer: none in the file")?,
    }
    Ok(())
}

fn inspect_hf(out: &mut String, dir: &Path) -> anyhow::Result<()> {
    writeln!(out, "model: {} (Hugging Face directory)", dir.display())?;
    print_config(out, bitnet_model::config_from_path(dir).map_err(Into::into))?;
    let set = SafetensorsSet::open(dir)?;
    let rows: Vec<Row> = set
        .tensors()
        .map(|t| Row {
            name: t.name.clone(),
            ty: format!("{:?}", t.dtype),
            shape: shape_str(&t.shape),
            bytes: t.bytes() as u64,
        })
        .collect();
    print_tensors(out, &rows, "shapes in PyTorch order [out, in]")?;
    tokenizer_files(out, dir)?;
    Ok(())
}

/// Summarize tokenizer.json / tokenizer.model / tokenizer_config.json in an HF directory.
fn tokenizer_files(out: &mut String, dir: &Path) -> std::fmt::Result {
    let mut found = false;
    if let Ok(text) = std::fs::read_to_string(dir.join("tokenizer.json")) {
        found = true;
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(j) => {
                let kind = j["model"]["type"].as_str().unwrap_or("?");
                let vocab = j["model"]["vocab"].as_object().map_or(0, |v| v.len());
                let added = j["added_tokens"].as_array().map_or(0, |a| a.len());
                let merges = j["model"]["merges"].as_array().map_or(0, |a| a.len());
                writeln!(
                    out,
                    "tokenizer: tokenizer.json, {kind}, {vocab} tokens in the vocabulary, \
                     {added} added tokens, {merges} merges"
                )?;
            }
            Err(e) => writeln!(out, "tokenizer: tokenizer.json is not valid JSON: {e}")?,
        }
    }
    if let Ok(m) = std::fs::metadata(dir.join("tokenizer.model")) {
        found = true;
        writeln!(out, "tokenizer: tokenizer.model ({} bytes)", m.len())?;
    }
    if let Ok(text) = std::fs::read_to_string(dir.join("tokenizer_config.json")) {
        if let Ok(j) = serde_json::from_str::<serde_json::Value>(&text) {
            let s = |k: &str| j[k].as_str().map(str::to_string);
            let mut parts = Vec::new();
            for k in ["tokenizer_class", "bos_token", "eos_token"] {
                if let Some(v) = s(k) {
                    parts.push(format!("{k} {v:?}"));
                }
            }
            if let Some(t) = s("chat_template") {
                parts.push(format!("chat template ({} chars)", t.len()));
            }
            writeln!(out, "tokenizer_config.json: {}", parts.join(", "))?;
        }
    }
    if !found {
        writeln!(
            out,
            "tokenizer: none found (no tokenizer.json or tokenizer.model)"
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bitnet_testdata::shared_dir as shared;

    #[test]
    fn reports_gguf_and_hf() {
        let Some(s) = shared() else { return };
        // Expected values: shared/data/bitnetcpp/tiny/MANIFEST.md.
        let r = super::report(&s.join("data/bitnetcpp/tiny/model-i2_s.gguf")).unwrap();
        assert!(r.contains("architecture: bitnet-25 (BitNet)"), "{r}");
        assert!(r.contains("tensors: 24"), "{r}");
        let line = r
            .lines()
            .find(|l| l.contains("blk.0.ffn_down.weight"))
            .unwrap();
        assert!(
            line.contains("I2_S") && line.contains("[1024, 512]") && line.ends_with("131104"),
            "{line}"
        );
        // 1,114,560 (I2_S) + 1,024,000 (F16) + 22,528 (F32).
        assert!(r.contains("total weight bytes: 2161088"), "{r}");
        assert!(
            r.contains("tokenizer: gpt2, 1000 tokens; 741 merges, bos 1, eos 2"),
            "{r}"
        );
        // bitnet.cpp's converter embeds its placeholder template (MANIFEST.md): replaced and said so.
        assert!(r.contains("chat template: built-in bitnet (2B4T)"), "{r}");
        assert!(r.contains("known-broken placeholder"), "{r}");
        let r = super::report(&s.join("data/real-models/bitllama2c-tinystories-3m")).unwrap();
        assert!(
            r.contains("architecture: LlamaForCausalLM (LlamaBitNet)"),
            "{r}"
        );
        assert!(r.contains("bitlinear_input_norm_eps   1e-30"), "{r}");
        let line = r
            .lines()
            .find(|l| l.contains("model.layers.0.self_attn.k_proj.weight "))
            .unwrap();
        assert!(
            line.contains("U8") && line.contains("[32, 256]") && line.ends_with("8192"),
            "{line}"
        );
        assert!(
            r.contains("tokenizer: tokenizer.json, BPE, 512 tokens"),
            "{r}"
        );
        assert!(r.contains("tokenizer: tokenizer.model (7522 bytes)"), "{r}");
        let e = super::report(&s.join("nope.gguf")).unwrap_err().to_string();
        assert!(e.contains("nope.gguf") && e.contains("no such file"), "{e}");
    }
}
