//! `bitnet tokenize SOURCE`: text on stdin → token ids as a JSON array on stdout;
//! `--decode`: ids on stdin (JSON array, or comma/space separated) → text.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};

#[derive(clap::Args)]
pub struct Args {
    /// A GGUF file, a tokenizer.json, a tokenizer.model (tiktoken or SentencePiece) or a
    /// model directory.
    pub source: PathBuf,
    /// Prepend the BOS token.
    #[arg(long)]
    pub bos: bool,
    /// Read token ids on stdin and print the text they decode to.
    #[arg(long)]
    pub decode: bool,
    /// Encoding: turn spelled-out special tokens (e.g. `<|eot_id|>`) into their ids.
    /// Decoding: print control tokens as their spelling instead of dropping them.
    #[arg(long)]
    pub special: bool,
    /// Encoding: remove one trailing newline from the input (as `echo` adds).
    #[arg(long)]
    pub trim_newline: bool,
}

/// Parse ids given as a JSON array or as comma/space separated integers.
fn parse_ids(input: &str) -> anyhow::Result<Vec<u32>> {
    let t = input.trim();
    if t.starts_with('[') {
        let v: Vec<serde_json::Value> =
            serde_json::from_str(t).context("stdin is not a JSON array of token ids")?;
        return v
            .iter()
            .enumerate()
            .map(|(i, x)| {
                x.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .with_context(|| format!("element {i} ({x}) is not a token id"))
            })
            .collect();
    }
    t.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<u32>()
                .with_context(|| format!("`{s}` is not a token id"))
        })
        .collect()
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let loaded = bitnet_tokenizer::load_tokenizer(&args.source)
        .with_context(|| format!("loading a tokenizer from {}", args.source.display()))?;
    let tok = loaded.tokenizer.as_ref();
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading stdin (is it UTF-8 text?)")?;
    let mut out = std::io::stdout().lock();
    if args.decode {
        let ids = parse_ids(&input)?;
        let n = tok.vocab_size();
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= n) {
            bail!("token id {bad} is out of range (vocabulary size {n})");
        }
        let text = tok.decode(&ids, args.special);
        // One final newline, as for the ids of an encode, so a shell prompt starts on its own
        // line (the decoded text itself is written unchanged before it).
        out.write_all(text.as_bytes())?;
        out.write_all(b"\n")?;
    } else {
        let text = if args.trim_newline {
            input
                .strip_suffix("\r\n")
                .or_else(|| input.strip_suffix('\n'))
                .unwrap_or(&input)
        } else {
            &input
        };
        let ids = tok.encode(text, args.bos, args.special)?;
        writeln!(out, "{}", serde_json::to_string(&ids)?)?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_ids;

    #[test]
    fn id_formats() {
        assert_eq!(parse_ids("[1, 2,3]").unwrap(), [1, 2, 3]);
        assert_eq!(parse_ids(" 1,2  3\n").unwrap(), [1, 2, 3]);
        assert!(parse_ids("[1, -2]").is_err());
        assert!(parse_ids("1 x").is_err());
        assert!(parse_ids("[1,").is_err());
        assert_eq!(parse_ids("").unwrap(), Vec::<u32>::new());
    }
}
