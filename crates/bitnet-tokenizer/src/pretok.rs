//! Pre-tokenizers: split text into the pieces BPE runs on, with llama.cpp's regex lists.
//!
//! A list of regexes is applied in order: each one splits every piece from the previous step
//! into its matches and the unmatched text between them (both are kept), as llama.cpp's
//! `unicode_regex_split` does. Each regex sees only its piece, so `$` and look-arounds stop at
//! piece boundaries.

use fancy_regex::Regex;

use crate::error::{Result, TokenizerError};

/// Llama 3 / tiktoken cl100k-style split (llama.cpp's adapted form of the tokenizer.json regex).
pub const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// GPT-2's split.
pub const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";

/// Which regex list a BPE vocabulary uses (llama.cpp's `tokenizer.ggml.pre` names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreKind {
    Default,
    Llama3,
    DeepseekLlm,
    DeepseekCoder,
    Falcon,
    Starcoder,
    Gpt2,
    Qwen2,
}

impl PreKind {
    /// Map a `tokenizer.ggml.pre` value; `None` for names we do not implement.
    pub fn from_gguf_name(name: &str) -> Option<PreKind> {
        Some(match name {
            "default" => PreKind::Default,
            "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral"
            | "midm-2.0" | "lfm2" | "dbrx" | "smaug-bpe" => PreKind::Llama3,
            "deepseek-llm" => PreKind::DeepseekLlm,
            "deepseek-coder" => PreKind::DeepseekCoder,
            "falcon" => PreKind::Falcon,
            "starcoder" | "refact" | "command-r" | "smollm" | "codeshell" | "exaone"
            | "minerva-7b" => PreKind::Starcoder,
            "gpt-2" | "mpt" | "olmo" | "jais" | "trillion" => PreKind::Gpt2,
            "qwen2" | "stablelm2" | "hunyuan" => PreKind::Qwen2,
            _ => return None,
        })
    }

    /// Whether llama.cpp emits a whole pre-token that is in the vocabulary without merging.
    pub fn ignore_merges(self) -> bool {
        matches!(self, PreKind::Llama3)
    }

    fn patterns(self) -> Vec<&'static str> {
        match self {
            PreKind::Llama3 => vec![LLAMA3],
            // Some code points are written as escapes: their literal forms are NFC singletons
            // that editors silently replace, which would turn the ranges around.
            PreKind::DeepseekLlm => vec![
                "[\r\n]",
                "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\u{1F7D}ᾀ-ᾴᾶ-ᾼ\u{1FBE}ῂ-ῄῆ-ῌῐ-\u{1FD3}ῖ-\u{1FDB}ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u{2126}ℨ\u{212A}-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
                "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
                "\\s+$",
                "[一-龥ࠀ-一가-퟿]+",
                "\\p{N}+",
            ],
            PreKind::DeepseekCoder => vec![
                "[\r\n]",
                "\\s?\\p{L}+",
                "\\s?\\p{P}+",
                "[一-龥ࠀ-一가-퟿]+",
                "\\p{N}",
            ],
            PreKind::Falcon => vec![
                "[\\p{P}\\$\\+<=>\\^~\\|`]+",
                GPT2,
                "[0-9][0-9][0-9]",
            ],
            PreKind::Starcoder => vec!["\\p{N}", GPT2],
            PreKind::Gpt2 => vec![GPT2],
            PreKind::Qwen2 => vec![
                r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
            ],
            PreKind::Default => vec![
                "[\\p{P}\\$\\+<=>\\^~\\|]+",
                GPT2,
                "\\p{N}+",
                "[0-9][0-9][0-9]",
            ],
        }
    }
}

/// A compiled pre-tokenizer.
pub struct PreTokenizer {
    kind: PreKind,
    regexes: Vec<Regex>,
}

impl PreTokenizer {
    /// Compile the regex list of `kind`.
    pub fn new(kind: PreKind) -> Result<PreTokenizer> {
        let regexes = kind
            .patterns()
            .into_iter()
            .map(|p| Regex::new(p).map_err(|e| TokenizerError::Regex(format!("{p}: {e}"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(PreTokenizer { kind, regexes })
    }

    /// Which variant this is.
    pub fn kind(&self) -> PreKind {
        self.kind
    }

    /// Split `text` into pieces, returned as byte ranges `(start, end)` into `text`.
    pub fn split(&self, text: &str) -> Result<Vec<(usize, usize)>> {
        let mut pieces = vec![(0usize, text.len())];
        if text.is_empty() {
            return Ok(vec![]);
        }
        for re in &self.regexes {
            let mut next = Vec::with_capacity(pieces.len() * 2);
            for &(s, e) in &pieces {
                let piece = &text[s..e];
                let mut last = 0;
                for m in re.find_iter(piece) {
                    let m = m.map_err(|e| TokenizerError::Regex(e.to_string()))?;
                    if m.start() == m.end() {
                        continue;
                    }
                    if m.start() > last {
                        next.push((s + last, s + m.start()));
                    }
                    next.push((s + m.start(), s + m.end()));
                    last = m.end();
                }
                if last < piece.len() {
                    next.push((s + last, e));
                }
            }
            pieces = next;
        }
        Ok(pieces)
    }
}
