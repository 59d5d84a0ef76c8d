//! Batched passes over a paged KV cache: many sequences, each at its own position, in one
//! forward pass (the serving engine's step). Linear layers run once over all rows; attention
//! runs per sequence over its own KV blocks. Every token's numbers are exactly those of the
//! same sequence run alone through [`Model::forward`].

use crate::forward::{Paged, SegView};
use crate::state::shape_of;
use crate::{Model, ModelError, Result, State};

/// One sequence's part of a batched pass.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    /// Tokens to run (non-empty), at positions `pos..pos + tokens.len()`.
    pub tokens: &'a [u32],
    /// Position of the first token; positions `0..pos` must already be in the cache.
    pub pos: usize,
    /// Block table: position p lives in block `blocks[p / block_size]`; must cover
    /// `pos + tokens.len()` positions. Blocks written by this pass must not be shared with
    /// another segment of the same pass.
    pub blocks: &'a [u32],
    /// Whether this segment's last token gets a row of logits.
    pub logits: bool,
}

impl Model {
    /// Run every segment's tokens in one pass over `state`'s paged KV cache (see
    /// [`State::paged`]) and return the logits of the last token of each segment with
    /// `logits: true`, in order, `[k × vocab]`.
    pub fn forward_paged<'s>(
        &self,
        state: &'s mut State,
        segs: &[Segment<'_>],
    ) -> Result<&'s [f32]> {
        let c = &self.config;
        if state.shape != shape_of(c) {
            return Err(ModelError::StateMismatch(format!(
                "state {:?}, model {:?}",
                state.shape,
                shape_of(c)
            )));
        }
        let Some((n_blocks, shift)) = state.paging else {
            return Err(ModelError::Invalid(
                "forward_paged needs a paged state (State::paged)".into(),
            ));
        };
        let mut rows = 0usize;
        let mut wanted = 0usize;
        for (i, g) in segs.iter().enumerate() {
            if g.tokens.is_empty() {
                return Err(ModelError::EmptyInput);
            }
            if let Some((index, &token)) = g
                .tokens
                .iter()
                .enumerate()
                .find(|(_, &t)| t as usize >= c.vocab_size)
            {
                return Err(ModelError::TokenOutOfRange {
                    token,
                    index,
                    vocab: c.vocab_size,
                });
            }
            let end = g.pos + g.tokens.len();
            if end > state.context {
                return Err(ModelError::ContextOverflow {
                    start: g.pos,
                    end,
                    context: state.context,
                });
            }
            if g.blocks.len() << shift < end {
                return Err(ModelError::Invalid(format!(
                    "segment {i}: {} blocks of {} positions do not cover positions 0..{end}",
                    g.blocks.len(),
                    1usize << shift
                )));
            }
            if let Some(&b) = g.blocks.iter().find(|&&b| b as usize >= n_blocks) {
                return Err(ModelError::Invalid(format!(
                    "segment {i}: block {b} is outside the cache of {n_blocks} blocks"
                )));
            }
            rows += g.tokens.len();
            wanted += g.logits as usize;
        }
        if rows == 0 {
            return Err(ModelError::EmptyInput);
        }
        if rows > state.max_batch {
            return Err(ModelError::Invalid(format!(
                "a pass of {rows} tokens exceeds this state's batch of {}",
                state.max_batch
            )));
        }
        if wanted > state.logit_rows {
            return Err(ModelError::BatchTooLarge {
                n: wanted,
                logit_rows: state.logit_rows,
            });
        }
        let maps: Vec<Paged<'_>> = segs
            .iter()
            .map(|g| Paged {
                table: g.blocks,
                shift,
            })
            .collect();
        let mut views = Vec::with_capacity(segs.len());
        let mut row0 = 0;
        for (g, map) in segs.iter().zip(&maps) {
            views.push(SegView {
                row0,
                len: g.tokens.len(),
                pos: g.pos,
                map,
            });
            row0 += g.tokens.len();
        }
        let tokens: Vec<&[u32]> = segs.iter().map(|g| g.tokens).collect();
        self.forward_chunk(state, &views, &tokens);
        let last_rows: Vec<usize> = views
            .iter()
            .zip(segs)
            .filter(|(_, g)| g.logits)
            .map(|(v, _)| v.row0 + v.len - 1)
            .collect();
        self.head(state, last_rows);
        Ok(&state.logits[..wanted * c.vocab_size])
    }
}
