//! SentencePiece-style BPE by piece scores (llama.cpp's `llm_tokenizer_spm_session`, which
//! matches SentencePiece's BPE model): start from UTF-8 characters, repeatedly merge the
//! adjacent pair whose concatenation is the highest-scoring piece (ties: leftmost); characters
//! left without a piece fall back to `<0xXX>` byte tokens, else to the unknown token.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::fxhash::FxHashMap;

/// The SentencePiece vocabulary in merge form.
pub struct SpmModel {
    /// Piece bytes (with `▁` for spaces) → id, for the pieces that may be produced by merging.
    lookup: FxHashMap<Vec<u8>, u32>,
    /// Score per id.
    scores: Vec<f32>,
    /// `<0xXX>` token per byte.
    byte_tokens: [Option<u32>; 256],
    /// The unknown token.
    unk: Option<u32>,
    /// Prepend a space to text that follows the start or a special token (dummy prefix).
    pub add_space_prefix: bool,
    /// Collapse runs of spaces and trim (SentencePiece's normalizer default).
    pub remove_extra_whitespaces: bool,
    /// Characters that occur in some mergeable piece of two or more characters. Any other
    /// character never takes part in a merge, so text can be cut around it without changing
    /// the result (a large speed-up on multi-line text).
    mergeable_chars: crate::fxhash::FxHashMap<char, ()>,
}

#[derive(PartialEq)]
struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    size: usize,
}
impl Eq for Bigram {}
impl Ord for Bigram {
    fn cmp(&self, o: &Self) -> Ordering {
        // Max-heap: higher score first, then smaller left index.
        self.score
            .total_cmp(&o.score)
            .then_with(|| o.left.cmp(&self.left))
    }
}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// Parse a `<0xXX>` byte-token spelling.
pub fn parse_byte_token(s: &str) -> Option<u8> {
    let hex = s.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

impl SpmModel {
    /// Build from piece spellings, scores, and which ids may be produced by merges.
    pub fn new(
        pieces: &[String],
        scores: Vec<f32>,
        mergeable: impl Fn(usize) -> bool,
        byte_ids: impl Fn(usize) -> bool,
        unk: Option<u32>,
    ) -> SpmModel {
        let mut lookup = FxHashMap::default();
        let mut byte_tokens = [None; 256];
        let mut mergeable_chars = FxHashMap::default();
        for (id, p) in pieces.iter().enumerate() {
            if mergeable(id) {
                lookup.insert(p.as_bytes().to_vec(), id as u32);
                if p.chars().nth(1).is_some() {
                    for c in p.chars() {
                        mergeable_chars.insert(c, ());
                    }
                }
            }
            if byte_ids(id) {
                if let Some(b) = parse_byte_token(p) {
                    byte_tokens[b as usize] = Some(id as u32);
                }
            }
        }
        SpmModel {
            lookup,
            scores,
            byte_tokens,
            unk,
            add_space_prefix: true,
            remove_extra_whitespaces: false,
            mergeable_chars,
        }
    }

    fn score(&self, id: u32) -> f32 {
        self.scores.get(id as usize).copied().unwrap_or(0.0)
    }

    /// Tokenize text whose spaces are already escaped as `▁`.
    pub fn encode_escaped(&self, text: &str, out: &mut Vec<u32>) {
        // Cut around characters that never merge; each segment is independent.
        let mut seg_start = 0;
        for (i, c) in text.char_indices() {
            if !self.mergeable_chars.contains_key(&c) {
                if i > seg_start {
                    self.encode_segment(&text[seg_start..i], out);
                }
                let end = i + c.len_utf8();
                self.encode_segment(&text[i..end], out);
                seg_start = end;
            }
        }
        if seg_start < text.len() {
            self.encode_segment(&text[seg_start..], out);
        }
    }

    fn encode_segment(&self, text: &str, out: &mut Vec<u32>) {
        let bytes = text.as_bytes();
        // Symbols: byte ranges [start[i], start[i] + len[i]); len 0 = merged away.
        let mut start: Vec<usize> = Vec::new();
        let mut len: Vec<usize> = Vec::new();
        for (i, c) in text.char_indices() {
            start.push(i);
            len.push(c.len_utf8());
        }
        let n = start.len();
        if n == 0 {
            return;
        }
        let mut prev: Vec<isize> = (0..n as isize).map(|i| i - 1).collect();
        let mut next: Vec<isize> = (0..n as isize)
            .map(|i| if i + 1 == n as isize { -1 } else { i + 1 })
            .collect();
        let mut heap = BinaryHeap::new();
        let try_add =
            |heap: &mut BinaryHeap<Bigram>, start: &[usize], len: &[usize], l: isize, r: isize| {
                if l < 0 || r < 0 {
                    return;
                }
                let (l, r) = (l as usize, r as usize);
                let s = start[l];
                let size = len[l] + len[r];
                if let Some(&id) = self.lookup.get(&bytes[s..s + size]) {
                    heap.push(Bigram {
                        score: self.score(id),
                        left: l,
                        right: r,
                        size,
                    });
                }
            };
        for i in 1..n {
            try_add(&mut heap, &start, &len, i as isize - 1, i as isize);
        }
        while let Some(b) = heap.pop() {
            if len[b.left] == 0 || len[b.right] == 0 || len[b.left] + len[b.right] != b.size {
                continue;
            }
            len[b.left] += len[b.right];
            len[b.right] = 0;
            next[b.left] = next[b.right];
            if next[b.right] >= 0 {
                prev[next[b.right] as usize] = b.left as isize;
            }
            try_add(&mut heap, &start, &len, prev[b.left], b.left as isize);
            try_add(&mut heap, &start, &len, b.left as isize, next[b.left]);
        }
        let mut i: isize = 0;
        while i >= 0 {
            let iu = i as usize;
            let piece = &bytes[start[iu]..start[iu] + len[iu]];
            if let Some(&id) = self.lookup.get(piece) {
                out.push(id);
            } else {
                let all_bytes: Option<Vec<u32>> = piece
                    .iter()
                    .map(|&b| self.byte_tokens[b as usize])
                    .collect();
                match (all_bytes, self.unk) {
                    (Some(ids), _) => out.extend(ids),
                    (None, Some(u)) => out.push(u),
                    (None, None) => {}
                }
            }
            i = next[iu];
        }
    }

    /// SentencePiece's whitespace normalization: collapse runs of spaces, trim both ends.
    pub fn collapse_spaces(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut prev_space = true;
        for c in text.chars() {
            if c == ' ' {
                if !prev_space {
                    out.push(' ');
                }
                prev_space = true;
            } else {
                out.push(c);
                prev_space = false;
            }
        }
        while out.ends_with(' ') {
            out.pop();
        }
        out
    }
}
