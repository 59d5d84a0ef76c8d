//! Token sampling: a llama.cpp-style chain over one step's logits.
//!
//! Order of operations (llama.cpp's default chain, `common/sampling.cpp`, with the stages this
//! crate implements):
//!
//! 1. **logit bias** — `logit[t] += bias[t]` (`-inf` bans `t`);
//! 2. **penalties** over the last `repeat_last_n` history tokens — repetition
//!    (`l > 0 ? l / r : l * r`), then frequency and presence (`l -= count·f + p`);
//! 3. if `temperature <= 0`: **greedy** — the highest logit wins, ties go to the lowest id;
//! 4. **top-k** — keep the `k` highest logits (ties broken towards lower ids);
//! 5. **top-p** — softmax over the survivors, keep the shortest descending prefix whose
//!    cumulative probability reaches `top_p` (the token that crosses `top_p` is kept);
//! 6. **min-p** — keep tokens with `p >= min_p · p_max` (i.e. `logit >= max + ln(min_p)`);
//! 7. **temperature** — divide the surviving logits by `T`;
//! 8. **softmax** and a **draw** with the sampler's own xoshiro256** generator.
//!
//! Tokens whose logit is `-inf` or NaN (after steps 1–2) are never candidates.

mod config;
mod penalties;
mod rng;
mod sampler;
mod select;

pub use config::{parse_logit_bias, SamplerConfig};
pub use rng::Rng;
pub use sampler::{Candidate, Sampler};

/// Errors from building a [`Sampler`] or sampling a token.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SamplingError {
    /// A [`SamplerConfig`] field is out of its range.
    #[error("invalid sampler setting `{field}`: {reason}")]
    InvalidConfig {
        /// The offending field's name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The sampler was built for a vocabulary of zero tokens.
    #[error("cannot sample from an empty vocabulary")]
    EmptyVocab,
    /// The logits slice does not have the vocabulary size the sampler was built for.
    #[error("logits have {got} entries but the sampler was built for a vocabulary of {expected}")]
    VocabMismatch {
        /// The sampler's vocabulary size.
        expected: usize,
        /// `logits.len()`.
        got: usize,
    },
    /// Every logit is `-inf` or NaN after logit bias and penalties: nothing can be sampled.
    #[error("no token can be sampled: every logit is -inf or NaN after logit bias and penalties")]
    NoCandidates,
}
