//! `bitnet logits MODEL --ids 1,2,3 --out FILE.npy`: float32 `[positions, vocab]` logits of one
//! forward pass, in NumPy .npy format, to check a model or a conversion against a reference.

use std::path::PathBuf;

use anyhow::{bail, Context};
use bitnet_model::{Logits, Model, State};

#[derive(clap::Args)]
pub struct Args {
    /// GGUF file or Hugging Face model directory.
    pub model: PathBuf,
    /// Comma-separated token ids, e.g. `1,450,4996`.
    #[arg(long)]
    pub ids: String,
    /// Output .npy file.
    #[arg(long)]
    pub out: PathBuf,
}

/// Parse `--ids`: comma-separated non-negative integers (spaces allowed).
pub fn parse_ids(s: &str) -> anyhow::Result<Vec<u32>> {
    if s.trim().is_empty() {
        bail!("--ids is empty: give comma-separated token ids, e.g. --ids 1,2,3");
    }
    s.split(',')
        .enumerate()
        .map(|(i, part)| {
            let p = part.trim();
            p.parse::<u32>().map_err(|_| {
                anyhow::anyhow!(
                    "--ids: entry {} ({p:?}) is not a token id (expected comma-separated \
                     non-negative integers, e.g. --ids 1,2,3)",
                    i + 1
                )
            })
        })
        .collect()
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let ids = parse_ids(&args.ids)?;
    let path = super::common::resolve_model(&args.model.to_string_lossy())?;
    let model = Model::load(&path).with_context(|| format!("loading {}", path.display()))?;
    let n = ids.len();
    let mut state = State::new(&model.config, n, n)?;
    let logits = model.forward(&mut state, &ids, 0, Logits::All)?;
    let vocab = model.config.vocab_size;
    bitnet_model::npy::write_npy_f32(&args.out, &[n, vocab], logits)?;
    let last = &logits[(n - 1) * vocab..];
    eprintln!(
        "wrote {} float32 [{n}, {vocab}]; argmax at the last position: {}",
        args.out.display(),
        bitnet_model::argmax(last)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_ids;

    #[test]
    fn ids_parse_and_errors_are_clear() {
        assert_eq!(parse_ids("1,2, 3").unwrap(), vec![1, 2, 3]);
        assert_eq!(parse_ids("7").unwrap(), vec![7]);
        let e = parse_ids("1,x,3").unwrap_err().to_string();
        assert!(e.contains("entry 2") && e.contains("\"x\""), "{e}");
        let e = parse_ids("1,,3").unwrap_err().to_string();
        assert!(e.contains("entry 2"), "{e}");
        let e = parse_ids("-1").unwrap_err().to_string();
        assert!(e.contains("\"-1\""), "{e}");
        assert!(parse_ids(" ").unwrap_err().to_string().contains("empty"));
        assert!(parse_ids("99999999999").is_err());
    }
}

#[cfg(test)]
mod run_tests {
    use bitnet_testdata::{fixtures_dir, shared_dir};

    #[test]
    fn writes_transformers_matching_npy() {
        let Some(dir) = shared_dir() else { return };
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("l.npy");
        super::run(super::Args {
            model: dir.join("data/real-models/bitllama2c-tinystories-3m"),
            ids: "1,17,300,42,5,99,250,7".into(),
            out: out.clone(),
        })
        .unwrap();
        let got = bitnet_model::npy::read_npy(&out).unwrap();
        // transformers' logits for the same ids (fixtures/transformers, prompt 1).
        let fixture = fixtures_dir().join("transformers/tinystories-3m.p1.npy");
        let want = bitnet_model::npy::read_npy(fixture).unwrap();
        assert_eq!(got.shape, vec![8, 512]);
        let (bitnet_model::npy::NpyData::F32(g), bitnet_model::npy::NpyData::F32(w)) =
            (got.data, want.data)
        else {
            panic!("not float32")
        };
        let err = bitnet_model::rel_l2(&g, &w);
        assert!(err < 5e-3, "rel L2 {err:e}");
    }
}
