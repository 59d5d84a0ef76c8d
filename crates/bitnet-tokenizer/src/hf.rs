//! Hugging Face `tokenizer.json` through the `tokenizers` crate.

use std::path::Path;

use crate::error::{Result, TokenizerError};
use crate::spm::parse_byte_token;
use crate::{Segment, SpecialTokens, Tokenizer};

/// A `tokenizer.json` tokenizer.
pub struct HfTokenizer {
    /// Special added tokens in the text are tokenized as plain text.
    plain: tokenizers::Tokenizer,
    /// Special added tokens in the text become their ids.
    parsing: tokenizers::Tokenizer,
    /// Bytes each id decodes to on its own (for streaming).
    pieces: Vec<Vec<u8>>,
    /// Ids of special added tokens (control tokens).
    specials: Vec<bool>,
    /// Vocabulary spellings per id.
    texts: Vec<String>,
    /// Spellings of the special added tokens.
    special_spellings: Vec<String>,
    strip_leading_space: bool,
    special: SpecialTokens,
    description: String,
}

fn hf_err(e: impl std::fmt::Display) -> TokenizerError {
    TokenizerError::Hf(e.to_string())
}

impl HfTokenizer {
    /// Load a `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<HfTokenizer> {
        let text = std::fs::read_to_string(path).map_err(|error| TokenizerError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| TokenizerError::format(path, format!("not JSON: {e}")))?;
        let parsing = tokenizers::Tokenizer::from_bytes(text.as_bytes())
            .map_err(|e| TokenizerError::format(path, format!("tokenizers: {e}")))?;
        let mut plain = parsing.clone();
        plain.set_encode_special_tokens(true);

        let decoder = json
            .get("decoder")
            .map(|d| d.to_string())
            .unwrap_or_default();
        let byte_level = decoder.contains("\"ByteLevel\"");
        let byte_fallback = json
            .pointer("/model/byte_fallback")
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
            || decoder.contains("\"ByteFallback\"");
        let metaspace = decoder.contains("\"Metaspace\"")
            || decoder.contains("\\u2581")
            || decoder.contains('▁');
        let strip_leading_space = (decoder.contains("\"Strip\"")
            && decoder.contains("\"start\":1"))
            || (decoder.contains("\"Metaspace\"")
                && !decoder.contains("\"prepend_scheme\":\"never\"")
                && !decoder.contains("\"add_prefix_space\":false"));

        let n = parsing.get_vocab_size(true);
        let added = parsing.get_added_tokens_decoder();
        let mut pieces = Vec::with_capacity(n);
        let mut specials = vec![false; n];
        let mut texts = Vec::with_capacity(n);
        let mut special_spellings = Vec::new();
        for id in 0..n as u32 {
            let t = parsing.id_to_token(id).unwrap_or_default();
            let piece = if let Some(a) = added.get(&id) {
                if a.special {
                    specials[id as usize] = true;
                    special_spellings.push(a.content.clone());
                }
                a.content.as_bytes().to_vec()
            } else if byte_level {
                crate::bytelevel::decode(&t).unwrap_or_else(|| t.as_bytes().to_vec())
            } else if let (true, Some(b)) = (byte_fallback, parse_byte_token(&t)) {
                vec![b]
            } else if metaspace {
                t.replace('▁', " ").into_bytes()
            } else {
                t.as_bytes().to_vec()
            };
            pieces.push(piece);
            texts.push(t);
        }

        // Defaults: BOS is whatever the post-processor puts in front; EOS/EOT by spelling.
        let probe_plain = plain.encode("a", false).map_err(hf_err)?;
        let probe_special = plain.encode("a", true).map_err(hf_err)?;
        let (pi, si) = (probe_plain.get_ids(), probe_special.get_ids());
        let bos =
            (si.len() > pi.len() && !si.is_empty() && specials.get(si[0] as usize) == Some(&true))
                .then(|| si[0]);
        let find = |names: &[&str]| names.iter().find_map(|s| parsing.token_to_id(s));
        let bos_guess = bos.or_else(|| find(&["<|begin_of_text|>", "<s>", "<bos>"]));
        let eos = find(&[
            "<|end_of_text|>",
            "</s>",
            "<|endoftext|>",
            "<eos>",
            "<|im_end|>",
        ]);
        let eot = find(crate::gguf_vocab::EOT_SPELLINGS);
        let eog_extra: Vec<u32> = crate::gguf_vocab::EOG_SPELLINGS
            .iter()
            .filter_map(|s| parsing.token_to_id(s))
            .collect();
        let mut special = SpecialTokens {
            bos: bos_guess,
            eos,
            eot,
            pad: None,
            unk: find(&["<unk>", "<|unk|>", "[UNK]"]),
            eog: vec![],
            add_bos: bos.is_some(),
            add_eos: false,
        };
        special.finish_eog(&eog_extra);
        let model_type = json
            .pointer("/model/type")
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_string();
        Ok(HfTokenizer {
            plain,
            parsing,
            pieces,
            specials,
            texts,
            special_spellings,
            strip_leading_space,
            special,
            description: format!("HF tokenizer.json ({model_type}), {n} tokens"),
        })
    }

    /// Replace the special ids / add-BOS defaults (e.g. from a model folder's configs).
    pub fn set_special_tokens(&mut self, special: SpecialTokens) {
        self.special = special;
    }
}

impl Tokenizer for HfTokenizer {
    fn encode(&self, text: &str, add_bos: bool, parse_special: bool) -> Result<Vec<u32>> {
        let t = if parse_special {
            &self.parsing
        } else {
            &self.plain
        };
        let enc = t.encode_fast(text, false).map_err(hf_err)?;
        let mut out = Vec::with_capacity(enc.get_ids().len() + 1);
        if add_bos {
            if let Some(b) = self.special.bos {
                out.push(b);
            }
        }
        out.extend_from_slice(enc.get_ids());
        Ok(out)
    }

    fn encode_segments(&self, segments: &[Segment], add_bos: bool) -> Result<Vec<u32>> {
        let raw_has_special = segments.iter().any(|s| {
            !s.parse_special
                && self
                    .special_spellings
                    .iter()
                    .any(|sp| s.text.contains(sp.as_str()))
        });
        if !raw_has_special {
            // Same result as segment-aware encoding: encode the whole text at once.
            let text: String = segments.iter().map(|s| s.text.as_str()).collect();
            let parse = segments.iter().any(|s| s.parse_special);
            return self.encode(&text, add_bos, parse);
        }
        // A raw segment spells a special token: encode piece by piece (the tokenizers crate
        // cannot mix modes within one text).
        let mut out = Vec::new();
        for (i, s) in segments.iter().enumerate() {
            out.extend(self.encode(&s.text, add_bos && i == 0, s.parse_special)?);
        }
        Ok(out)
    }

    fn token_to_piece(&self, id: u32, render_special: bool) -> Vec<u8> {
        let i = id as usize;
        match (self.pieces.get(i), self.specials.get(i)) {
            (Some(_), Some(true)) if !render_special => Vec::new(),
            (Some(p), _) => p.clone(),
            _ => Vec::new(),
        }
    }

    fn strips_leading_space(&self) -> bool {
        self.strip_leading_space
    }

    fn decode(&self, ids: &[u32], render_special: bool) -> String {
        let ids: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|&i| (i as usize) < self.pieces.len())
            .collect();
        match self.parsing.decode(&ids, !render_special) {
            Ok(s) => s,
            // Fall back to the byte pieces (never fails).
            Err(_) => {
                let mut b = Vec::new();
                for &i in &ids {
                    b.extend(self.token_to_piece(i, render_special));
                }
                String::from_utf8_lossy(&b).into_owned()
            }
        }
    }

    fn vocab_size(&self) -> usize {
        self.pieces.len()
    }

    fn id_to_token(&self, id: u32) -> Option<String> {
        self.texts.get(id as usize).cloned()
    }

    fn token_to_id(&self, token: &str) -> Option<u32> {
        self.parsing.token_to_id(token)
    }

    fn is_special(&self, id: u32) -> bool {
        self.specials.get(id as usize).copied().unwrap_or(false)
    }

    fn special_tokens(&self) -> &SpecialTokens {
        &self.special
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}
