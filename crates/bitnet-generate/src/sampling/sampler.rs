//! The [`Sampler`]: preallocated scratch, seeded RNG, and the stage chain documented in
//! [`super`].

use super::config::SamplerConfig;
use super::penalties::Penalties;
use super::rng::{fresh_seed, Rng};
use super::select::{all_candidates, by_logit_desc, top_k_candidates, top_p_cut};
use super::SamplingError;

/// One surviving token of the final distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Token id.
    pub id: u32,
    /// Its logit after bias and penalties (before temperature).
    pub logit: f32,
    /// Its final probability (after every filter, temperature and softmax); the candidates'
    /// probabilities sum to 1.
    pub p: f32,
}

/// Samples one token per step from a logits vector. Build once per vocabulary; every buffer is
/// allocated in [`Sampler::new`], so [`Sampler::sample`] never allocates.
#[derive(Debug, Clone)]
pub struct Sampler {
    config: SamplerConfig,
    /// Logit bias as `(token, bias)`, sorted by token id.
    bias: Vec<(u32, f32)>,
    penalties: Penalties,
    vocab_size: usize,
    seed: u64,
    rng: Rng,
    /// Occurrence counts for the penalties, `[vocab_size]`, all zero between calls.
    counts: Vec<u32>,
    /// Surviving candidates of the current step, capacity `vocab_size`.
    cands: Vec<Candidate>,
}

impl Sampler {
    /// A sampler for a vocabulary of `vocab_size` tokens. Fails on an out-of-range setting or
    /// a logit-bias token outside the vocabulary.
    pub fn new(config: SamplerConfig, vocab_size: usize) -> Result<Self, SamplingError> {
        if vocab_size == 0 {
            return Err(SamplingError::EmptyVocab);
        }
        if u32::try_from(vocab_size - 1).is_err() {
            return Err(SamplingError::InvalidConfig {
                field: "vocab_size",
                reason: format!("{vocab_size} tokens do not fit u32 ids"),
            });
        }
        config.validate(vocab_size)?;
        let mut bias: Vec<(u32, f32)> = config.logit_bias.iter().map(|(&t, &b)| (t, b)).collect();
        bias.sort_unstable_by_key(|&(t, _)| t);
        let penalties = Penalties {
            repeat: config.repeat_penalty,
            frequency: config.frequency_penalty,
            presence: config.presence_penalty,
            last_n: config.repeat_last_n,
        };
        let seed = config.seed.unwrap_or_else(fresh_seed);
        Ok(Self {
            config,
            bias,
            penalties,
            vocab_size,
            seed,
            rng: Rng::new(seed),
            counts: vec![0; vocab_size],
            cands: Vec::with_capacity(vocab_size),
        })
    }

    /// The settings this sampler was built with.
    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// The seed in use (the drawn one when the config had `seed: None`), for reproducing a run.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The vocabulary size this sampler was built for.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Restarts the random sequence from `seed`.
    pub fn reseed(&mut self, seed: u64) {
        self.seed = seed;
        self.rng = Rng::new(seed);
    }

    /// Samples the next token from `logits` (`[vocab_size]`, modified in place by the logit
    /// bias and penalties). `history` is the token sequence so far (prompt and generated), of
    /// which the penalties look at the last `repeat_last_n`. Does not allocate.
    pub fn sample(&mut self, logits: &mut [f32], history: &[u32]) -> Result<u32, SamplingError> {
        self.build(logits, history)?;
        if let [only] = self.cands.as_slice() {
            return Ok(only.id);
        }
        let u = self.rng.next_f64();
        let mut cum = 0.0f64;
        for c in &self.cands {
            cum += f64::from(c.p);
            if u < cum {
                return Ok(c.id);
            }
        }
        // Rounding left the total a hair under u: the last candidate takes the remainder.
        self.cands
            .last()
            .map(|c| c.id)
            .ok_or(SamplingError::NoCandidates)
    }

    /// The final distribution [`Sampler::sample`] would draw from for these inputs, sorted by
    /// descending probability (ties: lower id first). Applies bias and penalties to `logits`
    /// in place exactly like `sample`, and does not advance the RNG.
    pub fn probabilities(
        &mut self,
        logits: &mut [f32],
        history: &[u32],
    ) -> Result<&[Candidate], SamplingError> {
        self.build(logits, history)?;
        self.cands.sort_unstable_by(by_logit_desc);
        Ok(&self.cands)
    }

    /// Runs stages 1–8 (except the draw), leaving the survivors with probabilities in `cands`.
    fn build(&mut self, logits: &mut [f32], history: &[u32]) -> Result<(), SamplingError> {
        if logits.len() != self.vocab_size {
            return Err(SamplingError::VocabMismatch {
                expected: self.vocab_size,
                got: logits.len(),
            });
        }
        // 1. Logit bias.
        for &(t, b) in &self.bias {
            logits[t as usize] += b;
        }
        // 2. Penalties.
        if self.config.penalties_active() {
            self.penalties.apply(logits, history, &mut self.counts);
        }
        self.cands.clear();
        // 3. Greedy.
        if self.config.is_greedy() {
            let (mut id, mut logit) = (usize::MAX, f32::NEG_INFINITY);
            for (i, &l) in logits.iter().enumerate() {
                // Strict `>`: the first (lowest) id wins ties; NaN and -inf never win.
                if l > logit {
                    (id, logit) = (i, l);
                }
            }
            if id == usize::MAX {
                return Err(SamplingError::NoCandidates);
            }
            self.cands.push(Candidate {
                id: id as u32,
                logit,
                p: 1.0,
            });
            return Ok(());
        }
        // Candidates: every token with a logit above -inf (NaN fails the test); with top-k
        // (4., k = 0: off) only the k best, selected in the same pass.
        let k = self.config.top_k;
        if k > 0 && k < logits.len() {
            top_k_candidates(logits, k, &mut self.cands);
        } else {
            all_candidates(logits, &mut self.cands);
        }
        if self.cands.is_empty() {
            return Err(SamplingError::NoCandidates);
        }
        let max = self
            .cands
            .iter()
            .map(|c| c.logit)
            .fold(f32::NEG_INFINITY, f32::max);
        // 5 + 6. Top-p, then min-p. Both keep a descending-logit prefix and min-p's threshold
        // depends only on the (never removed) top logit, so filtering by min-p first and then
        // cutting the sorted survivors by top-p — with top-p's softmax normalised over the
        // set *before* min-p, as in the chain — gives the same set while sorting fewer tokens.
        let top_p = self.config.top_p;
        let top_p_total: f64 = if top_p < 1.0 {
            self.cands
                .iter()
                .map(|c| f64::from((c.logit - max).exp()))
                .sum()
        } else {
            0.0
        };
        let min_p = self.config.min_p;
        if min_p > 0.0 {
            let threshold = max + min_p.ln();
            self.cands.retain(|c| c.logit >= threshold);
        }
        if top_p < 1.0 {
            top_p_cut(&mut self.cands, max, top_p_total, top_p);
        }
        // 7 + 8. Temperature and softmax: p ∝ exp((logit - max) / T).
        let t = self.config.temperature;
        let mut total = 0.0f64;
        for c in &mut self.cands {
            c.p = ((c.logit - max) / t).exp();
            total += f64::from(c.p);
        }
        for c in &mut self.cands {
            c.p = (f64::from(c.p) / total) as f32;
        }
        Ok(())
    }
}
