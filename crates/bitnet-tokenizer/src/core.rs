//! The shared tokenizer engine behind the tiktoken, SentencePiece and GGUF loaders: a
//! vocabulary with token attributes, special-token splitting, and either byte-level BPE or
//! SentencePiece BPE. Its behaviour follows llama.cpp's `llama_vocab::tokenize`.

use crate::bpe::{BpeModel, BpeScratch};
use crate::error::Result;
use crate::fxhash::FxHashMap;
use crate::pretok::PreTokenizer;
use crate::special::{attr, partition, Fragment};
use crate::spm::SpmModel;
use crate::{Segment, SpecialTokens, Tokenizer};

/// The segmentation algorithm of a [`CoreTokenizer`].
pub enum Engine {
    /// Byte-level BPE after a regex pre-tokenizer.
    Bpe {
        /// Merge table.
        model: Box<BpeModel>,
        /// Pre-tokenizer.
        pre: PreTokenizer,
    },
    /// SentencePiece BPE over `▁`-escaped text.
    Spm(Box<SpmModel>),
}

/// A vocabulary plus its segmentation engine.
pub struct CoreTokenizer {
    /// Spelling of each token as its source stores it.
    texts: Vec<String>,
    /// Attribute bits per token ([`attr`]).
    attrs: Vec<u32>,
    /// Bytes each token decodes to (for non-control tokens).
    pieces: Vec<Vec<u8>>,
    /// Spelling → id.
    text_to_id: FxHashMap<String, u32>,
    /// Control / user-defined / unknown tokens, longest spelling first.
    special_order: Vec<u32>,
    special: SpecialTokens,
    engine: Engine,
    description: String,
}

impl CoreTokenizer {
    /// Assemble a tokenizer. `texts`, `attrs` and `pieces` have one entry per id (`texts`
    /// decides the vocabulary size; missing attributes default to NORMAL, missing pieces to
    /// the spelling's bytes).
    pub fn new(
        texts: Vec<String>,
        mut attrs: Vec<u32>,
        mut pieces: Vec<Vec<u8>>,
        engine: Engine,
        special: SpecialTokens,
        description: String,
    ) -> CoreTokenizer {
        attrs.resize(texts.len(), attr::NORMAL);
        pieces.truncate(texts.len());
        for t in &texts[pieces.len()..] {
            pieces.push(t.as_bytes().to_vec());
        }
        let mut text_to_id = FxHashMap::default();
        for (i, t) in texts.iter().enumerate() {
            text_to_id.insert(t.clone(), i as u32);
        }
        let mut special_order: Vec<u32> = (0..texts.len() as u32)
            .filter(|&i| {
                attrs[i as usize] & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0
            })
            .collect();
        special_order.sort_by_key(|&i| std::cmp::Reverse(texts[i as usize].len()));
        CoreTokenizer {
            texts,
            attrs,
            pieces,
            text_to_id,
            special_order,
            special,
            engine,
            description,
        }
    }

    /// Replace the special ids / add-BOS defaults (e.g. from a model folder's configs).
    pub fn set_special_tokens(&mut self, special: SpecialTokens) {
        self.special = special;
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Attribute bits of a token (0 when out of range).
    pub fn attr(&self, id: u32) -> u32 {
        self.attrs.get(id as usize).copied().unwrap_or(0)
    }

    /// Set or clear attribute bits of one token (e.g. RSTRIP for Phi-3's specials).
    pub fn set_attr(&mut self, id: u32, bits: u32, on: bool) {
        if let Some(a) = self.attrs.get_mut(id as usize) {
            if on {
                *a |= bits;
            } else {
                *a &= !bits;
            }
        }
    }

    /// Ids in the special-token cache (control, user-defined, unknown).
    pub fn special_ids(&self) -> &[u32] {
        &self.special_order
    }

    fn encode_text(&self, text: &str, frags: &[Fragment], out: &mut Vec<u32>) -> Result<()> {
        match &self.engine {
            Engine::Bpe { model, pre } => {
                let mut scratch = BpeScratch::default();
                for f in frags {
                    match *f {
                        Fragment::Token(id) => out.push(id),
                        Fragment::Text(s, e) => {
                            let piece = &text[s..e];
                            for (a, b) in pre.split(piece)? {
                                model.encode_word(&piece.as_bytes()[a..b], out, &mut scratch);
                            }
                        }
                    }
                }
            }
            Engine::Spm(spm) => {
                let mut prev_special = true;
                for f in frags {
                    match *f {
                        Fragment::Token(id) => {
                            out.push(id);
                            prev_special = true;
                        }
                        Fragment::Text(s, e) => {
                            let raw = &text[s..e];
                            let collapsed;
                            let raw = if spm.remove_extra_whitespaces {
                                collapsed = SpmModel::collapse_spaces(raw);
                                collapsed.as_str()
                            } else {
                                raw
                            };
                            let mut t = String::with_capacity(raw.len() * 2 + 3);
                            if spm.add_space_prefix && prev_special {
                                t.push('▁');
                            }
                            for c in raw.chars() {
                                t.push(if c == ' ' { '▁' } else { c });
                            }
                            spm.encode_escaped(&t, out);
                            prev_special = false;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl CoreTokenizer {
    fn specials_list(&self) -> Vec<(u32, &str, u32)> {
        self.special_order
            .iter()
            .map(|&i| (i, self.texts[i as usize].as_str(), self.attrs[i as usize]))
            .collect()
    }
}

impl Tokenizer for CoreTokenizer {
    fn encode_segments(&self, segments: &[Segment], add_bos: bool) -> Result<Vec<u32>> {
        let specials = self.specials_list();
        let mut text = String::new();
        let mut frags: Vec<Fragment> = Vec::new();
        for seg in segments {
            let off = text.len();
            for f in partition(&seg.text, &specials, seg.parse_special) {
                let f = match f {
                    Fragment::Text(a, b) => Fragment::Text(a + off, b + off),
                    t => t,
                };
                // Adjacent text runs form one text, exactly as without the segment cut.
                match (frags.last_mut(), f) {
                    (Some(Fragment::Text(_, end)), Fragment::Text(a, b)) if *end == a => *end = b,
                    _ => frags.push(f),
                }
            }
            text.push_str(&seg.text);
        }
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_bos {
            if let Some(b) = self.special.bos {
                out.push(b);
            }
        }
        self.encode_text(&text, &frags, &mut out)?;
        Ok(out)
    }

    fn encode(&self, text: &str, add_bos: bool, parse_special: bool) -> Result<Vec<u32>> {
        let specials = self.specials_list();
        let frags = partition(text, &specials, parse_special);
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_bos {
            if let Some(b) = self.special.bos {
                out.push(b);
            }
        }
        self.encode_text(text, &frags, &mut out)?;
        Ok(out)
    }

    fn token_to_piece(&self, id: u32, render_special: bool) -> Vec<u8> {
        let i = id as usize;
        let Some(&a) = self.attrs.get(i) else {
            return Vec::new();
        };
        if a & (attr::CONTROL | attr::UNKNOWN) != 0 {
            return if render_special {
                self.texts[i].as_bytes().to_vec()
            } else {
                Vec::new()
            };
        }
        self.pieces[i].clone()
    }

    fn strips_leading_space(&self) -> bool {
        matches!(&self.engine, Engine::Spm(s) if s.add_space_prefix)
    }

    fn vocab_size(&self) -> usize {
        self.texts.len()
    }

    fn id_to_token(&self, id: u32) -> Option<String> {
        self.texts.get(id as usize).cloned()
    }

    fn token_to_id(&self, token: &str) -> Option<u32> {
        self.text_to_id.get(token).copied()
    }

    fn is_special(&self, id: u32) -> bool {
        self.attr(id) & (attr::CONTROL | attr::UNKNOWN) != 0
    }

    fn special_tokens(&self) -> &SpecialTokens {
        &self.special
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}
