//! The paged KV cache's bookkeeping: fixed-size blocks from one pool, reference counts so
//! that sequences share blocks, and a prefix cache that finds the blocks of a token prefix
//! computed before. The numbers themselves live in the backend; this only says which block
//! holds what.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{Hash, Hasher};

/// Identity of a full block's contents: the hash of its tokens and of every token before it.
pub type BlockHash = u64;

/// What a cached block holds, kept to rule out hash collisions.
#[derive(Clone, Debug, PartialEq, Eq)]
struct BlockKey {
    parent: Option<BlockHash>,
    tokens: Vec<u32>,
}

/// Hash of a full block of `tokens` following the block hashed `parent`.
pub fn block_hash(parent: Option<BlockHash>, tokens: &[u32]) -> BlockHash {
    let mut h = std::hash::DefaultHasher::new();
    parent.hash(&mut h);
    tokens.hash(&mut h);
    h.finish()
}

/// Allocator of KV blocks with reference counts and a least-recently-used prefix cache.
///
/// A block is *free* (no owner, no cached contents), *used* (reference count ≥ 1) or
/// *evictable* (count 0 but holding a cached prefix, reused on a prefix hit or taken, oldest
/// first, when no free block is left).
#[derive(Debug)]
pub struct BlockManager {
    block_size: usize,
    refs: Vec<u32>,
    free: VecDeque<u32>,
    /// Cached contents of a block, if registered.
    key: Vec<Option<(BlockHash, BlockKey)>>,
    cache: HashMap<BlockHash, u32>,
    /// Evictable blocks by the tick they became evictable.
    evictable: BTreeMap<u64, u32>,
    evict_tick: Vec<u64>,
    tick: u64,
    hits: u64,
}

impl BlockManager {
    /// `n_blocks` blocks of `block_size` positions, all free.
    pub fn new(n_blocks: usize, block_size: usize) -> Self {
        Self {
            block_size,
            refs: vec![0; n_blocks],
            free: (0..n_blocks as u32).collect(),
            key: vec![None; n_blocks],
            cache: HashMap::new(),
            evictable: BTreeMap::new(),
            evict_tick: vec![0; n_blocks],
            tick: 0,
            hits: 0,
        }
    }

    /// Positions per block.
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Blocks in the pool.
    pub fn total(&self) -> usize {
        self.refs.len()
    }

    /// Blocks that can be handed out now (free or evictable).
    pub fn available(&self) -> usize {
        self.free.len() + self.evictable.len()
    }

    /// Blocks owned by at least one sequence.
    pub fn used(&self) -> usize {
        self.total() - self.available()
    }

    /// Blocks holding a cached prefix (owned or evictable).
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// Prefix-cache blocks found so far.
    pub fn hits(&self) -> u64 {
        self.hits
    }

    /// Reference count of `block`.
    pub fn refs(&self, block: u32) -> u32 {
        self.refs[block as usize]
    }

    /// A block for a new owner (count 1), evicting the oldest cached one if none is free.
    pub fn allocate(&mut self) -> Option<u32> {
        let b = match self.free.pop_front() {
            Some(b) => b,
            None => {
                let (_, b) = self.evictable.pop_first()?;
                if let Some((h, _)) = self.key[b as usize].take() {
                    self.cache.remove(&h);
                }
                b
            }
        };
        self.refs[b as usize] = 1;
        Some(b)
    }

    /// One more owner of `block`.
    pub fn retain(&mut self, block: u32) {
        let i = block as usize;
        if self.refs[i] == 0 {
            self.evictable.remove(&self.evict_tick[i]);
        }
        self.refs[i] += 1;
    }

    /// One owner fewer; a block nobody owns becomes evictable (cached) or free.
    pub fn release(&mut self, block: u32) {
        let i = block as usize;
        debug_assert!(self.refs[i] > 0, "release of a free block {block}");
        self.refs[i] = self.refs[i].saturating_sub(1);
        if self.refs[i] == 0 {
            if self.key[i].is_some() {
                self.tick += 1;
                self.evict_tick[i] = self.tick;
                self.evictable.insert(self.tick, block);
            } else {
                self.free.push_back(block);
            }
        }
    }

    /// The cached block holding `tokens` after the block hashed `parent`, retained for the
    /// caller, and its hash.
    pub fn lookup(
        &mut self,
        parent: Option<BlockHash>,
        tokens: &[u32],
    ) -> Option<(u32, BlockHash)> {
        let h = block_hash(parent, tokens);
        let &b = self.cache.get(&h)?;
        match &self.key[b as usize] {
            Some((_, k)) if k.parent == parent && k.tokens == tokens => {}
            _ => return None,
        }
        self.retain(b);
        self.hits += 1;
        Some((b, h))
    }

    /// Record that `block` (full) holds `tokens` after the block hashed `parent`; returns its
    /// hash. A prefix already cached in another block keeps that block.
    pub fn register(&mut self, block: u32, parent: Option<BlockHash>, tokens: &[u32]) -> BlockHash {
        let h = block_hash(parent, tokens);
        if self.key[block as usize].is_none() && !self.cache.contains_key(&h) {
            self.cache.insert(h, block);
            self.key[block as usize] = Some((
                h,
                BlockKey {
                    parent,
                    tokens: tokens.to_vec(),
                },
            ));
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocate_release_and_counts() {
        let mut m = BlockManager::new(3, 4);
        let a = m.allocate().unwrap();
        let b = m.allocate().unwrap();
        let c = m.allocate().unwrap();
        assert_eq!((a, b, c), (0, 1, 2));
        assert_eq!(m.allocate(), None);
        assert_eq!(m.used(), 3);
        m.retain(b);
        m.release(b);
        assert_eq!(m.refs(b), 1);
        m.release(b);
        assert_eq!(m.available(), 1);
        assert_eq!(m.allocate(), Some(b));
    }

    #[test]
    fn prefix_cache_hits_and_lru_eviction() {
        let mut m = BlockManager::new(2, 2);
        let a = m.allocate().unwrap();
        let h = m.register(a, None, &[1, 2]);
        m.release(a);
        // Evictable, still found.
        assert_eq!(m.available(), 2);
        assert_eq!(m.lookup(None, &[1, 2]), Some((a, h)));
        assert_eq!(m.lookup(None, &[1, 3]), None);
        // The same tokens after another parent are another prefix.
        assert_eq!(m.lookup(Some(h), &[1, 2]), None);
        assert_eq!(m.refs(a), 1);
        m.release(a);
        // Two allocations: the free block first, then the cached one is evicted.
        let x = m.allocate().unwrap();
        assert_ne!(x, a);
        let y = m.allocate().unwrap();
        assert_eq!(y, a);
        assert_eq!(m.cached(), 0);
        m.release(y);
        assert_eq!(m.lookup(None, &[1, 2]), None);
    }
}
