//! Tokenizers from the vocabulary embedded in a GGUF file (`tokenizer.ggml.*` keys), with
//! llama.cpp's semantics: `gpt2` = byte-level BPE with merges and a `tokenizer.ggml.pre`
//! pre-tokenizer; `llama` = SentencePiece with scores, token types and byte fallback.

use std::path::{Path, PathBuf};

use bitnet_gguf::{GgufFile, Value};

use crate::bpe::BpeModel;
use crate::core::{CoreTokenizer, Engine};
use crate::error::{Result, TokenizerError};
use crate::pretok::{PreKind, PreTokenizer};
use crate::special::attr;
use crate::spm::{parse_byte_token, SpmModel};
use crate::SpecialTokens;

/// Spellings llama.cpp treats as end-of-generation.
pub(crate) const EOG_SPELLINGS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "<|end_of_text|>",
    "<｜end▁of▁sentence｜>",
];
/// Spellings that serve as end-of-turn when the GGUF names none.
pub(crate) const EOT_SPELLINGS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<EOT>",
    "_<EOT>",
];

struct Kv<'a> {
    f: &'a GgufFile,
    path: PathBuf,
}

impl Kv<'_> {
    fn err(&self, key: &str, msg: impl Into<String>) -> TokenizerError {
        TokenizerError::GgufKey {
            path: self.path.clone(),
            key: key.to_string(),
            msg: msg.into(),
        }
    }
    fn opt_u32(&self, key: &str) -> Result<Option<u32>> {
        match self.f.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|x| u32::try_from(x).ok())
                .map(Some)
                .or_else(|| {
                    // -1 (as i32) means "no such token" for some writers.
                    v.as_i64().filter(|&x| x < 0).map(|_| None)
                })
                .ok_or_else(|| self.err(key, format!("expected a token id, found {v}"))),
        }
    }
    fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.f.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.err(key, format!("expected a bool, found {v}"))),
        }
    }
    fn opt_str(&self, key: &str) -> Result<Option<&str>> {
        match self.f.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| self.err(key, "expected a string")),
        }
    }
    fn str_array(&self, key: &str) -> Result<Option<Vec<&str>>> {
        match self.f.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_str_array()
                .map(Some)
                .ok_or_else(|| self.err(key, "expected an array of strings")),
        }
    }
}

/// Whether the GGUF has an embedded vocabulary.
pub fn has_vocab(f: &GgufFile) -> bool {
    f.get("tokenizer.ggml.model").is_some() && f.get("tokenizer.ggml.tokens").is_some()
}

/// Open a GGUF file and build its tokenizer.
pub fn load(path: &Path) -> Result<CoreTokenizer> {
    let f = GgufFile::open(path)?;
    from_gguf(&f)
}

/// Build the tokenizer of an open GGUF file.
pub fn from_gguf(f: &GgufFile) -> Result<CoreTokenizer> {
    let kv = Kv {
        f,
        path: f.path().to_path_buf(),
    };
    let model = kv.opt_str("tokenizer.ggml.model")?.ok_or_else(|| {
        kv.err(
            "tokenizer.ggml.model",
            "missing: this GGUF has no vocabulary",
        )
    })?;
    let tokens: Vec<String> = kv
        .str_array("tokenizer.ggml.tokens")?
        .ok_or_else(|| kv.err("tokenizer.ggml.tokens", "missing"))?
        .into_iter()
        .map(str::to_string)
        .collect();
    let n = tokens.len();
    if n == 0 {
        return Err(kv.err("tokenizer.ggml.tokens", "empty vocabulary"));
    }
    let types: Vec<i64> = match f.get("tokenizer.ggml.token_type") {
        None => vec![1; n],
        Some(v) => v
            .as_i64_array()
            .ok_or_else(|| kv.err("tokenizer.ggml.token_type", "expected an integer array"))?,
    };
    if types.len() != n {
        return Err(kv.err(
            "tokenizer.ggml.token_type",
            format!("{} entries for {n} tokens", types.len()),
        ));
    }
    let scores: Option<Vec<f32>> = match f.get("tokenizer.ggml.scores") {
        None => None,
        Some(v) => Some(
            v.as_f32_array()
                .ok_or_else(|| kv.err("tokenizer.ggml.scores", "expected a number array"))?,
        ),
    };
    if let Some(s) = &scores {
        if s.len() != n {
            return Err(kv.err(
                "tokenizer.ggml.scores",
                format!("{} entries for {n} tokens", s.len()),
            ));
        }
    }
    let mut attrs: Vec<u32> = types.iter().map(|&t| attr::from_gguf_type(t)).collect();
    let check_id = |key: &str, id: Option<u32>| -> Result<Option<u32>> {
        match id {
            Some(i) if i as usize >= n => Err(kv.err(
                key,
                format!("token id {i} is out of range (vocabulary size {n})"),
            )),
            other => Ok(other),
        }
    };
    let is_spm = match model {
        "llama" => true,
        "gpt2" => false,
        other => {
            return Err(TokenizerError::Unsupported {
                path: kv.path.clone(),
                msg: format!(
                    "tokenizer.ggml.model = `{other}` is not supported (supported: gpt2, llama)"
                ),
            })
        }
    };
    let pre_name = kv.opt_str("tokenizer.ggml.pre")?.unwrap_or("default");
    let pre_kind = if is_spm {
        None
    } else {
        Some(
            PreKind::from_gguf_name(pre_name).ok_or_else(|| TokenizerError::Unsupported {
                path: kv.path.clone(),
                msg: format!("tokenizer.ggml.pre = `{pre_name}` is not a supported pre-tokenizer"),
            })?,
        )
    };
    // Special ids: llama.cpp's defaults for SentencePiece vocabularies are bos 1, eos 2, unk 0.
    let get = |key: &str, default: Option<u32>| -> Result<Option<u32>> {
        let v = if f.get(key).is_some() {
            kv.opt_u32(key)?
        } else {
            default
        };
        check_id(key, v)
    };
    let spm_default = |i: u32| {
        if is_spm && (i as usize) < n {
            Some(i)
        } else {
            None
        }
    };
    let bos = get("tokenizer.ggml.bos_token_id", spm_default(1))?;
    let eos = get("tokenizer.ggml.eos_token_id", spm_default(2))?;
    let unk = get("tokenizer.ggml.unknown_token_id", spm_default(0))?;
    let pad = get("tokenizer.ggml.padding_token_id", None)?;
    let find = |names: &[&str]| -> Option<u32> {
        names
            .iter()
            .find_map(|nm| tokens.iter().position(|t| t == nm).map(|p| p as u32))
    };
    let eot = match get("tokenizer.ggml.eot_token_id", None)? {
        Some(e) => Some(e),
        None => find(EOT_SPELLINGS),
    };
    let llama3_like = pre_kind == Some(PreKind::Llama3);
    let add_bos = kv
        .opt_bool("tokenizer.ggml.add_bos_token")?
        .unwrap_or(is_spm || llama3_like);
    let add_eos = kv
        .opt_bool("tokenizer.ggml.add_eos_token")?
        .unwrap_or(false);
    // End-of-generation spellings become control tokens (llama.cpp does the same).
    let mut eog_extra = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if EOG_SPELLINGS.contains(&t.as_str()) {
            eog_extra.push(i as u32);
            attrs[i] |= attr::CONTROL;
        }
    }
    // Converters (bitnet.cpp's among them) may store BOS/EOS/UNK as NORMAL tokens; treat the
    // declared special ids as control tokens so they are not printed as text and chat
    // templates that spell them out get the ids.
    for id in [bos, eos, unk, eot, pad].into_iter().flatten() {
        let a = &mut attrs[id as usize];
        if *a & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) == 0 {
            *a = (*a & !attr::NORMAL) | attr::CONTROL;
        }
    }
    let mut special = SpecialTokens {
        bos,
        eos,
        eot,
        pad,
        unk,
        eog: vec![],
        add_bos,
        add_eos,
    };
    special.finish_eog(&eog_extra);

    let (pieces, engine, description) = if is_spm {
        let pieces: Vec<Vec<u8>> = tokens
            .iter()
            .zip(&attrs)
            .map(|(t, &a)| {
                if a & attr::BYTE != 0 {
                    if let Some(b) = parse_byte_token(t) {
                        return vec![b];
                    }
                }
                t.replace('▁', " ").into_bytes()
            })
            .collect();
        let mut spm = SpmModel::new(
            &tokens,
            scores.unwrap_or_else(|| vec![0.0; n]),
            |_| true,
            |i| attrs[i] & attr::BYTE != 0,
            unk,
        );
        spm.add_space_prefix = kv
            .opt_bool("tokenizer.ggml.add_space_prefix")?
            .unwrap_or(true);
        spm.remove_extra_whitespaces = kv
            .opt_bool("tokenizer.ggml.remove_extra_whitespaces")?
            .unwrap_or(false);
        (
            pieces,
            Engine::Spm(Box::new(spm)),
            format!("GGUF SentencePiece (llama) vocabulary, {n} tokens"),
        )
    } else {
        let merges_raw = kv
            .str_array("tokenizer.ggml.merges")?
            .ok_or_else(|| kv.err("tokenizer.ggml.merges", "missing (required for gpt2 BPE)"))?;
        let mut merges = Vec::with_capacity(merges_raw.len());
        for (i, m) in merges_raw.iter().enumerate() {
            // Split at the first space that is not the first character (llama.cpp).
            let sp = m
                .char_indices()
                .skip(1)
                .find(|&(_, c)| c == ' ')
                .map(|(p, _)| p)
                .ok_or_else(|| {
                    kv.err(
                        "tokenizer.ggml.merges",
                        format!("entry {i} `{m}` is not `left right`"),
                    )
                })?;
            let (l, r) = (&m[..sp], &m[sp + 1..]);
            let dec =
                |s: &str| crate::bytelevel::decode(s).unwrap_or_else(|| s.as_bytes().to_vec());
            merges.push((dec(l), dec(r)));
        }
        // Byte strings of tokens for merging: byte-level decodable spellings only.
        let bpe_tokens: Vec<Option<Vec<u8>>> =
            tokens.iter().map(|t| crate::bytelevel::decode(t)).collect();
        let pre_kind = pre_kind.unwrap_or(PreKind::Default);
        let model = BpeModel::from_merges(&bpe_tokens, &merges, pre_kind.ignore_merges());
        let pieces: Vec<Vec<u8>> = tokens
            .iter()
            .zip(&attrs)
            .zip(&bpe_tokens)
            .map(|((t, &a), b)| {
                if a & attr::USER_DEFINED != 0 {
                    t.as_bytes().to_vec()
                } else {
                    b.clone().unwrap_or_else(|| t.as_bytes().to_vec())
                }
            })
            .collect();
        (
            pieces,
            Engine::Bpe {
                model: Box::new(model),
                pre: PreTokenizer::new(pre_kind)?,
            },
            format!(
                "GGUF byte-level BPE (gpt2) vocabulary, {n} tokens, {} merges, pre-tokenizer `{pre_name}`",
                merges_raw.len()
            ),
        )
    };
    let mut tok = CoreTokenizer::new(tokens.clone(), attrs, pieces, engine, special, description);
    // llama.cpp: Phi-3 models swallow whitespace right of their special tokens.
    let name = kv
        .opt_str("general.name")?
        .unwrap_or("")
        .to_ascii_lowercase();
    if name.contains("phi-3") || name.contains("phi3") {
        for id in tok.special_ids().to_vec() {
            tok.set_attr(id, attr::RSTRIP, true);
        }
        for (t, on) in [
            ("</s>", true),
            ("<unk>", false),
            ("<s>", false),
            ("<|endoftext|>", false),
        ] {
            if let Some(p) = tokens.iter().position(|x| x == t) {
                tok.set_attr(p as u32, attr::RSTRIP, on);
            }
        }
    }
    Ok(tok)
}

/// The chat template stored in a GGUF (`tokenizer.chat_template`), if any.
pub fn chat_template(f: &GgufFile) -> Option<String> {
    match f.get("tokenizer.chat_template") {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}
