//! Byte-level BPE by merge ranks (tiktoken and llama.cpp's `gpt2` vocabularies).
//!
//! Symbols are byte strings identified by ids: ids below `n_vocab` are vocabulary tokens, ids
//! above are intermediate strings that a merge list produces but the vocabulary lacks. A word
//! (one pre-token, raw bytes) starts as one symbol per byte; the adjacent pair with the lowest
//! rank merges first (ties: leftmost), exactly as llama.cpp's `llm_tokenizer_bpe_session` and
//! tiktoken's `byte_pair_merge` do.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::fxhash::FxHashMap;

/// A ranked merge table over byte-string symbols.
pub struct BpeModel {
    /// Number of real tokens; symbol ids `>= n_vocab` are virtual intermediates.
    n_vocab: usize,
    /// Bytes of each virtual symbol, index `id - n_vocab`.
    virtual_bytes: Vec<Vec<u8>>,
    /// Bytes → symbol id (vocabulary tokens first; a virtual id only where no token has them).
    lookup: FxHashMap<Vec<u8>, u32>,
    /// Symbol of each single byte.
    byte_sym: [u32; 256],
    /// (left, right) → (rank, merged symbol).
    merges: FxHashMap<(u32, u32), (u32, u32)>,
    /// Emit a whole pre-token as one token when the vocabulary has it (tiktoken, Llama 3).
    ignore_merges: bool,
}

/// A queued merge: (rank, left position, right position, left symbol, right symbol).
type Candidate = Reverse<(u32, usize, usize, u32, u32)>;

/// Reusable buffers for [`BpeModel::encode_word`]: `syms[i]` is the symbol at position i,
/// `prev`/`next` link the live positions, `heap` holds candidate merges.
#[derive(Default)]
pub struct BpeScratch {
    syms: Vec<u32>,
    prev: Vec<usize>,
    next: Vec<usize>,
    heap: BinaryHeap<Candidate>,
}

const NONE: usize = usize::MAX;

impl BpeModel {
    /// Build from vocabulary byte strings (`tokens[id]`, `None` for tokens that are not plain
    /// byte strings, e.g. specials) and merges as byte-string pairs in rank order.
    pub fn from_merges(
        tokens: &[Option<Vec<u8>>],
        merges: &[(Vec<u8>, Vec<u8>)],
        ignore_merges: bool,
    ) -> BpeModel {
        let mut m = BpeModel::empty(tokens, ignore_merges);
        for (rank, (l, r)) in merges.iter().enumerate() {
            let li = m.intern(l);
            let ri = m.intern(r);
            let mut cat = l.clone();
            cat.extend_from_slice(r);
            let ci = m.intern(&cat);
            m.merges.entry((li, ri)).or_insert((rank as u32, ci));
        }
        m
    }

    /// Build tiktoken-style: the rank of a pair is the rank (id) of the concatenation, for every
    /// split of every token into two tokens.
    pub fn from_ranks(tokens: &[Option<Vec<u8>>], ignore_merges: bool) -> BpeModel {
        let mut m = BpeModel::empty(tokens, ignore_merges);
        for (id, t) in tokens.iter().enumerate() {
            let Some(t) = t else { continue };
            for split in 1..t.len() {
                let (Some(&l), Some(&r)) = (m.lookup.get(&t[..split]), m.lookup.get(&t[split..]))
                else {
                    continue;
                };
                if (l as usize) < m.n_vocab && (r as usize) < m.n_vocab {
                    m.merges.entry((l, r)).or_insert((id as u32, id as u32));
                }
            }
        }
        m
    }

    fn empty(tokens: &[Option<Vec<u8>>], ignore_merges: bool) -> BpeModel {
        let mut lookup = FxHashMap::default();
        for (id, t) in tokens.iter().enumerate() {
            if let Some(t) = t {
                // llama.cpp: a later duplicate overwrites an earlier one.
                lookup.insert(t.clone(), id as u32);
            }
        }
        let mut m = BpeModel {
            n_vocab: tokens.len(),
            virtual_bytes: Vec::new(),
            lookup,
            byte_sym: [0; 256],
            merges: FxHashMap::default(),
            ignore_merges,
        };
        for b in 0..=255u8 {
            m.byte_sym[b as usize] = m.intern(&[b]);
        }
        m
    }

    fn intern(&mut self, bytes: &[u8]) -> u32 {
        if let Some(&id) = self.lookup.get(bytes) {
            return id;
        }
        let id = (self.n_vocab + self.virtual_bytes.len()) as u32;
        self.virtual_bytes.push(bytes.to_vec());
        self.lookup.insert(bytes.to_vec(), id);
        id
    }

    /// The vocabulary token whose bytes are exactly `bytes`.
    pub fn token_of(&self, bytes: &[u8]) -> Option<u32> {
        self.lookup
            .get(bytes)
            .copied()
            .filter(|&id| (id as usize) < self.n_vocab)
    }

    fn push_symbol(&self, sym: u32, out: &mut Vec<u32>) {
        if (sym as usize) < self.n_vocab {
            out.push(sym);
        } else if let Some(bytes) = self.virtual_bytes.get(sym as usize - self.n_vocab) {
            // llama.cpp: a final symbol that is no token is emitted byte by byte, dropping
            // bytes that have no token either.
            for &b in bytes {
                let s = self.byte_sym[b as usize];
                if (s as usize) < self.n_vocab {
                    out.push(s);
                }
            }
        }
    }

    /// Append the tokens of one pre-token (raw bytes) to `out`.
    pub fn encode_word(&self, word: &[u8], out: &mut Vec<u32>, s: &mut BpeScratch) {
        if word.is_empty() {
            return;
        }
        if self.ignore_merges {
            if let Some(id) = self.token_of(word) {
                out.push(id);
                return;
            }
        }
        if word.len() == 1 {
            self.push_symbol(self.byte_sym[word[0] as usize], out);
            return;
        }
        let n = word.len();
        s.syms.clear();
        s.prev.clear();
        s.next.clear();
        s.heap.clear();
        for (i, &b) in word.iter().enumerate() {
            s.syms.push(self.byte_sym[b as usize]);
            s.prev.push(if i == 0 { NONE } else { i - 1 });
            s.next.push(if i + 1 == n { NONE } else { i + 1 });
        }
        for i in 0..n - 1 {
            self.push_pair(s, i, i + 1);
        }
        while let Some(Reverse((_, left, right, ls, rs))) = s.heap.pop() {
            // Stale: a side was merged away or changed since this pair was queued.
            if s.syms[left] != ls || s.syms[right] != rs || s.next[left] != right {
                continue;
            }
            let Some(&(_, merged)) = self.merges.get(&(ls, rs)) else {
                continue;
            };
            s.syms[left] = merged;
            s.syms[right] = u32::MAX;
            let after = s.next[right];
            s.next[left] = after;
            s.next[right] = NONE;
            if after != NONE {
                s.prev[after] = left;
            }
            let before = s.prev[left];
            if before != NONE {
                self.push_pair(s, before, left);
            }
            if after != NONE {
                self.push_pair(s, left, after);
            }
        }
        let mut i = 0;
        while i != NONE {
            self.push_symbol(s.syms[i], out);
            i = s.next[i];
        }
    }

    fn push_pair(&self, s: &mut BpeScratch, left: usize, right: usize) {
        let (ls, rs) = (s.syms[left], s.syms[right]);
        if let Some(&(rank, _)) = self.merges.get(&(ls, rs)) {
            s.heap.push(Reverse((rank, left, right, ls, rs)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(v: &[&str]) -> Vec<Option<Vec<u8>>> {
        v.iter().map(|s| Some(s.as_bytes().to_vec())).collect()
    }

    #[test]
    fn ranks_merge_lowest_first() {
        // Hand-worked: "abc" with ranks ab=3, bc=4, abc=5 → ab first, then abc.
        let t = toks(&["a", "b", "c", "ab", "bc", "abc"]);
        let m = BpeModel::from_ranks(&t, false);
        let mut out = vec![];
        m.encode_word(b"abc", &mut out, &mut BpeScratch::default());
        assert_eq!(out, vec![5]);
        // "bcab": pairs bc(4), ca(-), ab(3) → ab first, then bc: [bc, ab].
        let mut out = vec![];
        m.encode_word(b"bcab", &mut out, &mut BpeScratch::default());
        assert_eq!(out, vec![4, 3]);
    }

    #[test]
    fn merges_list_and_ignore_merges() {
        // Merges a+b then ab+c; "abc" is a token reachable only through the merges.
        let t = toks(&["a", "b", "c", "ab", "abc", "bc"]);
        let merges = vec![
            (b"b".to_vec(), b"c".to_vec()),
            (b"a".to_vec(), b"b".to_vec()),
            (b"ab".to_vec(), b"c".to_vec()),
        ];
        let m = BpeModel::from_merges(&t, &merges, false);
        let mut out = vec![];
        // b+c has rank 0, so "abc" → [a, bc] and ab+c never applies.
        m.encode_word(b"abc", &mut out, &mut BpeScratch::default());
        assert_eq!(out, vec![0, 5]);
        let m = BpeModel::from_merges(&t, &merges, true);
        let mut out = vec![];
        m.encode_word(b"abc", &mut out, &mut BpeScratch::default());
        assert_eq!(out, vec![4]);
    }
}
