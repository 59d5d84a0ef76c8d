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
    /// Longest mergeable piece in bytes (longer concatenations are never looked up).
    max_piece_len: usize,
}

/// Reusable buffers of one segment: symbol `i` is bytes `start[i]..start[i] + len[i]`
/// (`len` 0 = merged away), `prev`/`next` link live symbols (-1 = none).
#[derive(Default)]
struct Scratch {
    start: Vec<usize>,
    len: Vec<usize>,
    prev: Vec<isize>,
    next: Vec<isize>,
    heap: BinaryHeap<Bigram>,
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
        let mut max_piece_len = 0;
        for (id, p) in pieces.iter().enumerate() {
            if mergeable(id) {
                lookup.insert(p.as_bytes().to_vec(), id as u32);
                max_piece_len = max_piece_len.max(p.len());
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
            max_piece_len,
        }
    }

    fn score(&self, id: u32) -> f32 {
        self.scores.get(id as usize).copied().unwrap_or(0.0)
    }

    /// Tokenize text whose spaces are already escaped as `▁`.
    pub fn encode_escaped(&self, text: &str, out: &mut Vec<u32>) {
        let mut sc = Scratch::default();
        // Cut around characters that never merge; each segment is independent.
        let mut seg_start = 0;
        for (i, c) in text.char_indices() {
            if !self.mergeable_chars.contains_key(&c) {
                if i > seg_start {
                    self.encode_segment(&text[seg_start..i], out, &mut sc);
                }
                let end = i + c.len_utf8();
                self.encode_segment(&text[i..end], out, &mut sc);
                seg_start = end;
            }
        }
        if seg_start < text.len() {
            self.encode_segment(&text[seg_start..], out, &mut sc);
        }
    }

    /// Queue the merge of symbols `l` and `r` if their concatenation is a piece.
    fn try_add(&self, bytes: &[u8], sc: &mut Scratch, l: isize, r: isize) {
        if l < 0 || r < 0 {
            return;
        }
        let (l, r) = (l as usize, r as usize);
        let s = sc.start[l];
        let size = sc.len[l] + sc.len[r];
        if size > self.max_piece_len {
            return;
        }
        if let Some(&id) = self.lookup.get(&bytes[s..s + size]) {
            sc.heap.push(Bigram {
                score: self.score(id),
                left: l,
                right: r,
                size,
            });
        }
    }

    fn encode_segment(&self, text: &str, out: &mut Vec<u32>, sc: &mut Scratch) {
        let bytes = text.as_bytes();
        sc.start.clear();
        sc.len.clear();
        sc.prev.clear();
        sc.next.clear();
        sc.heap.clear();
        for (i, c) in text.char_indices() {
            sc.start.push(i);
            sc.len.push(c.len_utf8());
        }
        let n = sc.start.len();
        if n == 0 {
            return;
        }
        for i in 0..n as isize {
            sc.prev.push(i - 1);
            sc.next.push(if i + 1 == n as isize { -1 } else { i + 1 });
        }
        for i in 1..n {
            self.try_add(bytes, sc, i as isize - 1, i as isize);
        }
        while let Some(b) = sc.heap.pop() {
            if sc.len[b.left] == 0
                || sc.len[b.right] == 0
                || sc.len[b.left] + sc.len[b.right] != b.size
            {
                continue;
            }
            sc.len[b.left] += sc.len[b.right];
            sc.len[b.right] = 0;
            let after = sc.next[b.right];
            sc.next[b.left] = after;
            if after >= 0 {
                sc.prev[after as usize] = b.left as isize;
            }
            self.try_add(bytes, sc, sc.prev[b.left], b.left as isize);
            self.try_add(bytes, sc, b.left as isize, after);
        }
        let mut i: isize = 0;
        while i >= 0 {
            let iu = i as usize;
            let piece = &bytes[sc.start[iu]..sc.start[iu] + sc.len[iu]];
            if let Some(&id) = self.lookup.get(piece) {
                out.push(id);
            } else if piece
                .iter()
                .all(|&b| self.byte_tokens[b as usize].is_some())
            {
                out.extend(piece.iter().filter_map(|&b| self.byte_tokens[b as usize]));
            } else if let Some(u) = self.unk {
                out.push(u);
            }
            i = sc.next[iu];
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
