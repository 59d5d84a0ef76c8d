//! Loader for tiktoken-format BPE files (`<base64 bytes> <rank>` per line), e.g. Llama 3's
//! `tokenizer.model` as shipped with BitNet b1.58 2B4T, plus its 256 special tokens.

use std::path::Path;

use base64::Engine as _;

use crate::bpe::BpeModel;
use crate::core::{CoreTokenizer, Engine};
use crate::error::{Result, TokenizerError};
use crate::pretok::{PreKind, PreTokenizer};
use crate::special::attr;
use crate::SpecialTokens;

/// Whether `head` (the start of a file) looks like a tiktoken rank file.
pub fn looks_like_tiktoken(head: &[u8]) -> bool {
    let Some(line) = head.split(|&b| b == b'\n').find(|l| !l.is_empty()) else {
        return false;
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.split(|&b| b == b' ');
    let (Some(b64), Some(rank), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    !b64.is_empty()
        && b64
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'=')
        && !rank.is_empty()
        && rank.iter().all(|c| c.is_ascii_digit())
}

/// Llama 3's 256 special tokens, ids 128000..128255 (as in Meta's / microsoft/BitNet's
/// `tokenizer.py`).
pub fn llama3_special_tokens() -> Vec<String> {
    let mut v: Vec<String> = [
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|reserved_special_token_0|>",
        "<|reserved_special_token_1|>",
        "<|reserved_special_token_2|>",
        "<|reserved_special_token_3|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|reserved_special_token_4|>",
        "<|eot_id|>",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for i in 5..251 {
        v.push(format!("<|reserved_special_token_{i}|>"));
    }
    v
}

/// Parse the rank lines; returns the byte string of each rank 0..n.
pub fn parse_ranks(path: &Path, data: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut tokens: Vec<Option<Vec<u8>>> = Vec::new();
    for (lineno, line) in data.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let bad = |msg: &str| TokenizerError::format(path, format!("line {}: {msg}", lineno + 1));
        let sp = line
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| bad("expected `<base64> <rank>`"))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&line[..sp])
            .map_err(|e| bad(&format!("bad base64: {e}")))?;
        let rank: usize = std::str::from_utf8(&line[sp + 1..])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| bad("bad rank"))?;
        if rank > 10_000_000 {
            return Err(bad("rank too large"));
        }
        if tokens.len() <= rank {
            tokens.resize(rank + 1, None);
        }
        if tokens[rank].is_some() {
            return Err(bad(&format!("duplicate rank {rank}")));
        }
        tokens[rank] = Some(bytes);
    }
    if tokens.is_empty() {
        return Err(TokenizerError::format(path, "no ranks found"));
    }
    tokens
        .into_iter()
        .enumerate()
        .map(|(i, t)| t.ok_or_else(|| TokenizerError::format(path, format!("rank {i} is missing"))))
        .collect()
}

/// Build a Llama 3 tokenizer from tiktoken rank bytes plus special token spellings (ids follow
/// the ranks). BOS = `<|begin_of_text|>`, EOS = `<|end_of_text|>`, EOT = `<|eot_id|>`.
pub fn from_ranks(ranks: Vec<Vec<u8>>, specials: Vec<String>) -> Result<CoreTokenizer> {
    let n_ranks = ranks.len();
    let mut bpe_tokens: Vec<Option<Vec<u8>>> = ranks.iter().cloned().map(Some).collect();
    bpe_tokens.extend(specials.iter().map(|_| None));
    let model = BpeModel::from_ranks(&bpe_tokens, true);
    let pre = PreTokenizer::new(PreKind::Llama3)?;
    let mut texts: Vec<String> = ranks.iter().map(|b| crate::bytelevel::encode(b)).collect();
    let mut attrs = vec![attr::NORMAL; n_ranks];
    let mut pieces = ranks;
    for s in &specials {
        texts.push(s.clone());
        attrs.push(attr::CONTROL);
        pieces.push(s.as_bytes().to_vec());
    }
    let find = |name: &str| {
        specials
            .iter()
            .position(|s| s == name)
            .map(|p| (n_ranks + p) as u32)
    };
    let mut special = SpecialTokens {
        bos: find("<|begin_of_text|>"),
        eos: find("<|end_of_text|>"),
        eot: find("<|eot_id|>"),
        pad: None,
        unk: None,
        eog: vec![],
        add_bos: true,
        add_eos: false,
    };
    let extra: Vec<u32> = find("<|eom_id|>").into_iter().collect();
    special.finish_eog(&extra);
    Ok(CoreTokenizer::new(
        texts,
        attrs,
        pieces,
        Engine::Bpe {
            model: Box::new(model),
            pre,
        },
        special,
        format!(
            "tiktoken BPE (Llama 3 pre-tokenizer), {} ranks + {} special tokens",
            n_ranks,
            specials.len()
        ),
    ))
}

/// Load a tiktoken file (split with the Llama 3 pre-tokenizer). Specials: `special_tokens.json`
/// beside it (`{"128000": "<|begin_of_text|>", ...}`) if present, else Llama 3's 256 when the
/// file has Llama 3's 128,000 ranks, else none.
pub fn load(path: &Path) -> Result<CoreTokenizer> {
    let data = std::fs::read(path).map_err(|error| TokenizerError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let ranks = parse_ranks(path, &data)?;
    let sibling = path.with_file_name("special_tokens.json");
    let specials = if sibling.is_file() {
        read_special_tokens_json(&sibling, ranks.len())?
    } else if ranks.len() == 128_000 {
        // Llama 3's rank file: its 256 special tokens follow the ranks.
        llama3_special_tokens()
    } else {
        Vec::new()
    };
    from_ranks(ranks, specials)
}

/// Read `{"<id>": "<spelling>", ...}` whose ids must be `first_id..first_id+n` contiguous.
pub fn read_special_tokens_json(path: &Path, first_id: usize) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|error| TokenizerError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let map: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&text).map_err(|e| {
            TokenizerError::format(path, format!("expected {{\"id\": \"token\"}}: {e}"))
        })?;
    let mut v: Vec<(usize, String)> = Vec::new();
    for (k, s) in map {
        let id: usize = k
            .parse()
            .map_err(|_| TokenizerError::format(path, format!("key `{k}` is not an id")))?;
        v.push((id, s));
    }
    v.sort();
    for (i, (id, _)) in v.iter().enumerate() {
        if *id != first_id + i {
            return Err(TokenizerError::format(
                path,
                format!("special ids must be contiguous from {first_id}; found {id}"),
            ));
        }
    }
    Ok(v.into_iter().map(|(_, s)| s).collect())
}
