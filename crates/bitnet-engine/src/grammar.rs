//! Constrained decoding with llguidance (the grammar engine of llama.cpp, vLLM and SGLang):
//! a [`GrammarCompiler`] built once from the tokenizer turns a JSON schema, a Lark grammar
//! or a regex into a per-sequence [`Constraint`], which masks the logits before each draw so
//! that only tokens continuing a valid output can be sampled.

use std::sync::Arc;

use bitnet_tokenizer::Tokenizer;
use llguidance::api::TopLevelGrammar;
use llguidance::{Matcher, ParserFactory};
use toktrie::{TokEnv, TokRxInfo, TokTrie, TokenId, TokenizerEnv};

use crate::EngineError;

/// Our tokenizer as llguidance sees it: every token's bytes (control tokens behind the
/// special-token marker) and our encoder for forced text.
struct Env {
    trie: TokTrie,
    tokenizer: Arc<dyn Tokenizer>,
}

impl TokenizerEnv for Env {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    /// Our encoder when it spells exactly `s` (byte-level BPE does); otherwise (SentencePiece
    /// adds a leading space, invalid UTF-8 is not text) the trie's greedy tokenization, which
    /// always does.
    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        let vocab = self.trie.vocab_size() as u32;
        if let Ok(text) = std::str::from_utf8(s) {
            if let Ok(ids) = self.tokenizer.encode(text, false, false) {
                let spelled: Vec<u8> = ids
                    .iter()
                    .flat_map(|&i| self.tokenizer.token_to_piece(i, false))
                    .collect();
                if spelled == s && ids.iter().all(|&i| i < vocab) {
                    return ids;
                }
            }
        }
        self.trie.greedy_tokenize(s)
    }
}

/// Compiles grammars for one tokenizer and model vocabulary.
pub struct GrammarCompiler {
    factory: ParserFactory,
}

impl std::fmt::Debug for GrammarCompiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GrammarCompiler")
    }
}

impl GrammarCompiler {
    /// A compiler for `tokenizer` over a model of `vocab_size` logits; `eos` is the token that
    /// ends a finished output (the tokenizer's end of text or end of turn).
    pub fn new(
        tokenizer: Arc<dyn Tokenizer>,
        vocab_size: usize,
        eos: u32,
    ) -> Result<Self, EngineError> {
        let words: Vec<Vec<u8>> = (0..vocab_size as u32)
            .map(|id| {
                let plain = tokenizer.token_to_piece(id, false);
                if !plain.is_empty() {
                    return plain;
                }
                // Control tokens: their spelling behind the marker, so text never produces them.
                let special = tokenizer.token_to_piece(id, true);
                if special.is_empty() {
                    Vec::new()
                } else {
                    let mut w = vec![TokTrie::SPECIAL_TOKEN_MARKER];
                    w.extend(special);
                    w
                }
            })
            .collect();
        let info = TokRxInfo::new(vocab_size as u32, eos);
        let trie = TokTrie::from(&info, &words);
        let env: TokEnv = Arc::new(Env { trie, tokenizer });
        let mut factory =
            ParserFactory::new_simple(&env).map_err(|e| EngineError::Grammar(e.to_string()))?;
        factory.quiet();
        Ok(Self { factory })
    }

    /// A constraint from a JSON schema (`{"type": "object"}` for any JSON object). The output
    /// is laid out as Python's `json.dumps` does (`", "` and `": "`, no other whitespace)
    /// unless the schema's own `x-guidance` options say otherwise: free whitespace would let a
    /// model pad forever.
    pub fn json_schema(&self, mut schema: serde_json::Value) -> Result<Constraint, EngineError> {
        if let Some(o) = schema.as_object_mut() {
            o.entry("x-guidance").or_insert_with(|| {
                serde_json::json!({
                    "whitespace_flexible": false,
                    "item_separator": ", ",
                    "key_separator": ": ",
                })
            });
        }
        self.compile(TopLevelGrammar::from_json_schema(schema))
    }

    /// A constraint from a Lark grammar (llguidance's dialect).
    pub fn lark(&self, grammar: &str) -> Result<Constraint, EngineError> {
        self.compile(TopLevelGrammar::from_lark(grammar.to_string()))
    }

    /// A constraint from a regular expression over the output text.
    pub fn regex(&self, rx: &str) -> Result<Constraint, EngineError> {
        self.compile(TopLevelGrammar::from_regex(rx))
    }

    fn compile(&self, g: TopLevelGrammar) -> Result<Constraint, EngineError> {
        let parser = self
            .factory
            .create_parser(g)
            .map_err(|e| EngineError::Grammar(e.to_string()))?;
        let m = Matcher::new(Ok(parser));
        if let Some(e) = m.get_error() {
            return Err(EngineError::Grammar(e));
        }
        Ok(Constraint(m))
    }
}

/// The grammar state of one sequence.
#[derive(Clone)]
pub struct Constraint(Matcher);

impl std::fmt::Debug for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Constraint")
    }
}

impl Constraint {
    /// Set every logit the grammar forbids next to −∞.
    pub(crate) fn mask(&mut self, logits: &mut [f32]) -> Result<(), EngineError> {
        let allowed = self
            .0
            .compute_mask()
            .map_err(|e| EngineError::Grammar(e.to_string()))?;
        for (i, l) in logits.iter_mut().enumerate() {
            if !allowed.is_allowed(i as TokenId) {
                *l = f32::NEG_INFINITY;
            }
        }
        Ok(())
    }

    /// Advance over the sampled token.
    pub(crate) fn consume(&mut self, token: u32) -> Result<(), EngineError> {
        self.0
            .consume_token(token)
            .map_err(|e| EngineError::Grammar(e.to_string()))
    }

    /// Whether the output is complete and nothing more may follow.
    pub(crate) fn is_stopped(&self) -> bool {
        self.0.is_stopped()
    }

    /// A copy with its own state (for another choice of the same request).
    pub(crate) fn fork(&self) -> Self {
        Constraint(self.0.deep_clone())
    }
}
