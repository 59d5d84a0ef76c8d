//! Perplexity measured the way llama.cpp's `llama-perplexity` measures it, so that figures
//! compare with the field's: the whole text is tokenized once (with BOS), cut into chunks of
//! `ctx` tokens (the tail that does not fill a chunk is dropped), each chunk starts over at
//! position 0 with BOS in place of its first token, and only the second half of each chunk is
//! scored (position j's logits predict token j + 1 for `ctx/2 ≤ j < ctx − 1`, so every scored
//! token sees at least `ctx/2` tokens of context). PPL = exp(mean NLL); its standard error is
//! llama.cpp's `PPL · sqrt((E[nll²] − E[nll]²) / (N − 1))`.
//!
//! [`perplexity`] is generic over [`ChunkScorer`] (a model that returns logits for a chunk);
//! [`ModelScorer`] (feature `model`) is bitnet-model's `Model`.

/// A model that scores chunks: runs `tokens` from position 0 (a fresh sequence) and returns
/// the logits of positions `from..tokens.len()`, `[(tokens.len() − from) × vocab]`.
pub trait ChunkScorer {
    fn vocab(&self) -> usize;
    fn logits(&mut self, tokens: &[u32], from: usize) -> Result<Vec<f32>, String>;
}

/// What to measure.
#[derive(Clone, Debug)]
pub struct PerplexityConfig {
    /// Tokens per chunk (llama-perplexity's `-c`, default 512 there).
    pub ctx: usize,
    /// Put in place of each chunk's first token (llama.cpp does when the model adds BOS).
    pub bos: Option<u32>,
    /// Score at most this many chunks (`None`: every full chunk).
    pub max_chunks: Option<usize>,
}

/// The result over all scored tokens.
#[derive(Clone, Debug, PartialEq)]
pub struct Perplexity {
    pub chunks: usize,
    /// Tokens scored: `chunks · (ctx − 1 − ctx/2)`.
    pub scored: usize,
    /// Mean negative log-likelihood (nats per token).
    pub mean_nll: f64,
    pub ppl: f64,
    /// Standard error of `ppl` (0 when every scored token has the same NLL).
    pub ppl_stderr: f64,
}

/// Progress after each chunk.
#[derive(Clone, Debug)]
pub struct ChunkReport {
    /// 1-based.
    pub chunk: usize,
    pub of: usize,
    /// PPL over every token scored so far.
    pub running_ppl: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum PerplexityError {
    #[error("a chunk of {ctx} tokens is too short: it needs at least 4 (half of it is context)")]
    ContextTooSmall { ctx: usize },
    #[error(
        "the text has {tokens} tokens: at least 2 · ctx = {need} are needed for {ctx}-token \
         chunks (as llama-perplexity requires); use a longer text or a smaller --ctx"
    )]
    TooShort {
        tokens: usize,
        ctx: usize,
        need: usize,
    },
    #[error("token {token} at index {index} is outside the model's vocabulary of {vocab}")]
    TokenOutOfRange {
        token: u32,
        index: usize,
        vocab: usize,
    },
    #[error("scoring chunk {chunk}: {message}")]
    Model { chunk: usize, message: String },
    #[error("chunk {chunk}: the model returned {got} logits, expected {want}")]
    Shape {
        chunk: usize,
        got: usize,
        want: usize,
    },
    #[error("chunk {chunk}: non-finite logits at position {position}")]
    NonFinite { chunk: usize, position: usize },
}

/// `log Σ exp(row)`, in f64.
fn log_sum_exp(row: &[f32]) -> f64 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    max + row
        .iter()
        .map(|&l| (l as f64 - max).exp())
        .sum::<f64>()
        .ln()
}

/// `−log softmax(row)[target]`, in f64.
fn nll(row: &[f32], target: usize) -> f64 {
    log_sum_exp(row) - row[target] as f64
}

/// Perplexity of `tokens` (the whole text, tokenized with BOS) under `scorer`.
pub fn perplexity(
    scorer: &mut dyn ChunkScorer,
    tokens: &[u32],
    config: &PerplexityConfig,
    on_chunk: &mut dyn FnMut(&ChunkReport),
) -> Result<Perplexity, PerplexityError> {
    perplexity_rows(scorer, tokens, config, on_chunk, &mut |_, _| Ok(()))
}

/// Sees a scored position's logits and the token it predicts.
pub type RowObserver<'a> = dyn FnMut(&[f32], u32) -> Result<(), String> + 'a;

/// [`perplexity`], showing `on_row` every scored position's logits and the token it predicts,
/// in order (to save them as a KL base, or compare them with one).
pub fn perplexity_rows(
    scorer: &mut dyn ChunkScorer,
    tokens: &[u32],
    config: &PerplexityConfig,
    on_chunk: &mut dyn FnMut(&ChunkReport),
    on_row: &mut RowObserver<'_>,
) -> Result<Perplexity, PerplexityError> {
    let ctx = config.ctx;
    if ctx < 4 {
        return Err(PerplexityError::ContextTooSmall { ctx });
    }
    if tokens.len() < 2 * ctx {
        return Err(PerplexityError::TooShort {
            tokens: tokens.len(),
            ctx,
            need: 2 * ctx,
        });
    }
    let vocab = scorer.vocab();
    if let Some((index, &token)) = tokens
        .iter()
        .enumerate()
        .find(|(_, &t)| t as usize >= vocab)
    {
        return Err(PerplexityError::TokenOutOfRange {
            token,
            index,
            vocab,
        });
    }
    let mut n_chunks = tokens.len() / ctx;
    if let Some(m) = config.max_chunks {
        n_chunks = n_chunks.min(m.max(1));
    }
    let first = ctx / 2;
    let (mut sum, mut sum2, mut count) = (0f64, 0f64, 0usize);
    let mut chunk_tokens = vec![0u32; ctx];
    for c in 0..n_chunks {
        chunk_tokens.copy_from_slice(&tokens[c * ctx..(c + 1) * ctx]);
        if let Some(b) = config.bos {
            chunk_tokens[0] = b;
        }
        let logits =
            scorer
                .logits(&chunk_tokens, first)
                .map_err(|message| PerplexityError::Model {
                    chunk: c + 1,
                    message,
                })?;
        let want = (ctx - first) * vocab;
        if logits.len() != want {
            return Err(PerplexityError::Shape {
                chunk: c + 1,
                got: logits.len(),
                want,
            });
        }
        // Row r holds position first + r; it predicts the token after it (the original
        // text's, not the BOS substitute, which only ever sits at position 0).
        for j in first..ctx - 1 {
            let row = &logits[(j - first) * vocab..(j - first + 1) * vocab];
            let target = tokens[c * ctx + j + 1];
            on_row(row, target).map_err(|message| PerplexityError::Model {
                chunk: c + 1,
                message,
            })?;
            let v = nll(row, target as usize);
            if !v.is_finite() {
                return Err(PerplexityError::NonFinite {
                    chunk: c + 1,
                    position: j,
                });
            }
            sum += v;
            sum2 += v * v;
            count += 1;
        }
        on_chunk(&ChunkReport {
            chunk: c + 1,
            of: n_chunks,
            running_ppl: (sum / count as f64).exp(),
        });
    }
    let mean = sum / count as f64;
    let ppl = mean.exp();
    let var = sum2 / count as f64 - mean * mean;
    let ppl_stderr = if var > 0.0 && count > 1 {
        ppl * (var / (count - 1) as f64).sqrt()
    } else {
        0.0
    };
    Ok(Perplexity {
        chunks: n_chunks,
        scored: count,
        mean_nll: mean,
        ppl,
        ppl_stderr,
    })
}

/// `log softmax(row)` in f64, written into `out`.
pub fn log_softmax(row: &[f32], out: &mut [f64]) {
    let lse = log_sum_exp(row);
    for (o, &l) in out.iter_mut().zip(row) {
        *o = l as f64 - lse;
    }
}

/// KL divergence of a model's next-token distributions from a base's, position by position
/// (llama-perplexity's `--kl-divergence`): mean KL(base ‖ model), top-1 agreement, and both
/// perplexities over the same tokens.
#[derive(Clone, Debug, Default)]
pub struct KlDivergence {
    pub positions: usize,
    sum_kl: f64,
    sum_kl2: f64,
    same_top: usize,
    base_nll: f64,
    nll: f64,
}

impl KlDivergence {
    /// One position: the base's log-probabilities, the model's logits, the true next token.
    pub fn add(&mut self, base_logp: &[f32], logits: &[f32], target: u32, scratch: &mut Vec<f64>) {
        scratch.resize(logits.len(), 0.0);
        log_softmax(logits, scratch);
        let kl: f64 = base_logp
            .iter()
            .zip(scratch.iter())
            .map(|(&b, &m)| {
                let b = b as f64;
                if b == f64::NEG_INFINITY {
                    0.0
                } else {
                    b.exp() * (b - m)
                }
            })
            .sum();
        let top = |v: &mut dyn Iterator<Item = f64>| {
            v.enumerate()
                .fold(
                    (0, f64::NEG_INFINITY),
                    |a, (i, x)| if x > a.1 { (i, x) } else { a },
                )
                .0
        };
        let same =
            top(&mut base_logp.iter().map(|&b| b as f64)) == top(&mut scratch.iter().copied());
        self.positions += 1;
        self.sum_kl += kl;
        self.sum_kl2 += kl * kl;
        self.same_top += same as usize;
        self.base_nll -= base_logp[target as usize] as f64;
        self.nll -= scratch[target as usize];
    }

    pub fn mean_kl(&self) -> f64 {
        self.sum_kl / self.positions.max(1) as f64
    }

    /// Standard error of [`Self::mean_kl`].
    pub fn kl_stderr(&self) -> f64 {
        let n = self.positions as f64;
        if self.positions < 2 {
            return 0.0;
        }
        let var = (self.sum_kl2 / n - self.mean_kl().powi(2)).max(0.0);
        (var / (n - 1.0)).sqrt()
    }

    /// Fraction of positions where both pick the same most likely token.
    pub fn top1_agreement(&self) -> f64 {
        self.same_top as f64 / self.positions.max(1) as f64
    }

    /// `(base PPL, model PPL)` over the same tokens.
    pub fn ppls(&self) -> (f64, f64) {
        let n = self.positions.max(1) as f64;
        ((self.base_nll / n).exp(), (self.nll / n).exp())
    }
}

/// The base file of a KL comparison: a header (magic `BNLOGP01`, then little-endian u32s:
/// vocab, ctx, chunks, number of tokens; then those token ids), then every scored position's
/// log-probabilities as `vocab` little-endian f32 (float32, so that a comparison of two
/// nearly equal models measures them, not the storage; 20 chunks of 512 tokens of a
/// 128,256-token vocabulary take 2.6 GB).
pub mod base {
    use std::io::{self, Read, Write};

    const MAGIC: &[u8; 8] = b"BNLOGP01";

    /// What a base file says about the run that wrote it.
    #[derive(Clone, Debug, PartialEq)]
    pub struct Header {
        pub vocab: usize,
        pub ctx: usize,
        pub chunks: usize,
        /// The tokens the chunks were cut from (`chunks · ctx` of them).
        pub tokens: Vec<u32>,
    }

    pub fn write_header(w: &mut dyn Write, h: &Header) -> io::Result<()> {
        w.write_all(MAGIC)?;
        for v in [h.vocab, h.ctx, h.chunks, h.tokens.len()] {
            let v = u32::try_from(v)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too large"))?;
            w.write_all(&v.to_le_bytes())?;
        }
        for t in &h.tokens {
            w.write_all(&t.to_le_bytes())?;
        }
        Ok(())
    }

    /// One scored position: `log softmax(logits)` as f32.
    pub fn write_row(w: &mut dyn Write, logits: &[f32], scratch: &mut Vec<f64>) -> io::Result<()> {
        scratch.resize(logits.len(), 0.0);
        super::log_softmax(logits, scratch);
        let mut bytes = Vec::with_capacity(logits.len() * 4);
        for &v in scratch.iter() {
            bytes.extend_from_slice(&(v as f32).to_le_bytes());
        }
        w.write_all(&bytes)
    }

    fn bad(msg: String) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, msg)
    }

    /// Reads and checks a header; `file_len` (bytes) bounds what the counts may claim.
    pub fn read_header(r: &mut dyn Read, file_len: u64) -> io::Result<Header> {
        let mut magic = [0u8; 8];
        r.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(bad(
                "not a bitnet logits base file (no BNLOGP01 magic)".into()
            ));
        }
        let mut u = [0usize; 4];
        for v in &mut u {
            let mut b = [0u8; 4];
            r.read_exact(&mut b)?;
            *v = u32::from_le_bytes(b) as usize;
        }
        let [vocab, ctx, chunks, n] = u;
        let first = ctx / 2;
        // Every count as the file claims it, checked (u32 values: products fit in u128).
        let rows = chunks as u128 * ctx.saturating_sub(1 + first) as u128;
        let need = 24 + 4 * n as u128 + rows * vocab as u128 * 4;
        if vocab == 0
            || ctx < 4
            || n as u128 != chunks as u128 * ctx as u128
            || need != file_len as u128
        {
            return Err(bad(format!(
                "inconsistent base file: vocab {vocab}, ctx {ctx}, chunks {chunks}, {n} tokens need {need} bytes, the file has {file_len}"
            )));
        }
        let mut bytes = vec![0u8; 4 * n];
        r.read_exact(&mut bytes)?;
        let tokens = bytes
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok(Header {
            vocab,
            ctx,
            chunks,
            tokens,
        })
    }

    /// The next scored position's log-probabilities into `out` (`vocab` long).
    pub fn read_row(r: &mut dyn Read, out: &mut [f32]) -> io::Result<()> {
        let mut bytes = vec![0u8; out.len() * 4];
        r.read_exact(&mut bytes)?;
        for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
            *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        Ok(())
    }
}

#[cfg(feature = "model")]
pub use model_scorer::ModelScorer;

#[cfg(feature = "model")]
mod model_scorer {
    use bitnet_model::{Logits, Model, State};

    /// bitnet-model's `Model` as a [`super::ChunkScorer`]: each chunk starts over at position
    /// 0 of one reused state; the unscored first part runs as a prefill (`Logits::Last`), the
    /// scored part in passes of up to `max_batch` tokens with every row's logits.
    pub struct ModelScorer<'m> {
        model: &'m Model,
        state: State,
    }

    impl<'m> ModelScorer<'m> {
        /// For chunks of up to `ctx` tokens.
        pub fn new(model: &'m Model, ctx: usize) -> bitnet_model::Result<Self> {
            let batch = ctx.clamp(1, 256);
            let state = State::with_logit_rows(&model.config, ctx, batch, batch)?;
            Ok(ModelScorer { model, state })
        }
    }

    impl super::ChunkScorer for ModelScorer<'_> {
        fn vocab(&self) -> usize {
            self.model.config.vocab_size
        }

        fn logits(&mut self, tokens: &[u32], from: usize) -> Result<Vec<f32>, String> {
            let v = self.model.config.vocab_size;
            let mut out = Vec::with_capacity((tokens.len() - from) * v);
            if from > 0 {
                self.model
                    .forward(&mut self.state, &tokens[..from], 0, Logits::Last)
                    .map_err(|e| e.to_string())?;
            }
            let step = self.state.max_batch();
            let mut pos = from;
            while pos < tokens.len() {
                let end = (pos + step).min(tokens.len());
                let l = self
                    .model
                    .forward(&mut self.state, &tokens[pos..end], pos, Logits::All)
                    .map_err(|e| e.to_string())?;
                out.extend_from_slice(l);
                pos = end;
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Logits from a closure of (position, chunk tokens); records the chunks it saw.
    struct Fake<F: FnMut(usize, &[u32]) -> Vec<f32>> {
        vocab: usize,
        f: F,
        seen: Vec<Vec<u32>>,
    }

    impl<F: FnMut(usize, &[u32]) -> Vec<f32>> ChunkScorer for Fake<F> {
        fn vocab(&self) -> usize {
            self.vocab
        }
        fn logits(&mut self, tokens: &[u32], from: usize) -> Result<Vec<f32>, String> {
            self.seen.push(tokens.to_vec());
            Ok((from..tokens.len())
                .flat_map(|j| (self.f)(j, tokens))
                .collect())
        }
    }

    fn cfg(ctx: usize, bos: Option<u32>) -> PerplexityConfig {
        PerplexityConfig {
            ctx,
            bos,
            max_chunks: None,
        }
    }

    #[test]
    fn uniform_logits_give_the_vocabulary_size() {
        // Every token equally likely: NLL = ln 10 for each, PPL = 10, no spread.
        let mut m = Fake {
            vocab: 10,
            f: |_, _| vec![0.5; 10],
            seen: vec![],
        };
        let tokens: Vec<u32> = (0..25).map(|i| i % 10).collect();
        let p = perplexity(&mut m, &tokens, &cfg(8, Some(9)), &mut |_| {}).unwrap();
        // 25 tokens → 3 chunks of 8; each scores positions 4, 5, 6 → 9 tokens.
        assert_eq!((p.chunks, p.scored), (3, 9));
        assert!((p.ppl - 10.0).abs() < 1e-12, "{}", p.ppl);
        assert!((p.mean_nll - 10f64.ln()).abs() < 1e-12);
        assert_eq!(p.ppl_stderr, 0.0);
        // BOS replaces each chunk's first token; the text is cut at chunk boundaries.
        assert_eq!(m.seen[1], vec![9, 9, 0, 1, 2, 3, 4, 5]);
        assert_eq!(m.seen[2][1..], tokens[17..24]);
    }

    #[test]
    fn hand_computed_nll_and_standard_error() {
        // Vocabulary 2. The logits make the next token's probability 1/2 at even positions
        // and e/(1+e) at odd ones when it is token 1 (ln-odds 1), otherwise 1/(1+e).
        let tokens: Vec<u32> = vec![0, 1, 1, 0, 1, 1, 0, 0, 1, 0, 0, 1];
        let text = tokens.clone();
        let mut m = Fake {
            vocab: 2,
            f: |j, _: &[u32]| {
                if j % 2 == 0 {
                    vec![0.0, 0.0]
                } else {
                    vec![0.0, 1.0]
                }
            },
            seen: vec![],
        };
        let p = perplexity(&mut m, &tokens, &cfg(6, None), &mut |_| {}).unwrap();
        // Two chunks of 6, scored positions 3 and 4 of each: targets text[c·6 + j + 1].
        let l2 = std::f64::consts::LN_2;
        let e = std::f64::consts::E;
        let odd = |t: u32| {
            if t == 1 {
                -(e / (1.0 + e)).ln()
            } else {
                (1.0 + e).ln()
            }
        };
        let nlls = [odd(text[4]), l2, odd(text[10]), l2];
        let mean = nlls.iter().sum::<f64>() / 4.0;
        let var = nlls.iter().map(|v| v * v).sum::<f64>() / 4.0 - mean * mean;
        assert_eq!(p.scored, 4);
        assert!((p.mean_nll - mean).abs() < 1e-12);
        assert!((p.ppl - mean.exp()).abs() < 1e-12);
        assert!((p.ppl_stderr - mean.exp() * (var / 3.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn kl_divergence_hand_computed() {
        // Base p = (1/2, 1/4, 1/4); model q = softmax(0, 0, 0) = 1/3 each.
        // KL(p‖q) = 1/2 ln(3/2) + 2 · 1/4 ln(3/4); top-1: base 0, model 0 (first of equals).
        let base: Vec<f32> = [0.5f64, 0.25, 0.25].iter().map(|p| p.ln() as f32).collect();
        let mut kl = KlDivergence::default();
        let mut scratch = Vec::new();
        kl.add(&base, &[0.0, 0.0, 0.0], 1, &mut scratch);
        let want = 0.5 * 1.5f64.ln() + 0.5 * 0.75f64.ln();
        assert!((kl.mean_kl() - want).abs() < 1e-7, "{}", kl.mean_kl());
        assert_eq!(kl.top1_agreement(), 1.0);
        let (bp, mp) = kl.ppls();
        assert!(
            (bp - 4.0).abs() < 1e-5 && (mp - 3.0).abs() < 1e-9,
            "{bp} {mp}"
        );
        // The same distribution: KL 0. A model preferring token 2: top-1 disagrees.
        kl.add(
            &base,
            &[0.5f32.ln(), 0.25f32.ln(), 0.25f32.ln()],
            0,
            &mut scratch,
        );
        kl.add(&base, &[0.0, 0.0, 5.0], 0, &mut scratch);
        assert_eq!(kl.positions, 3);
        assert!((kl.top1_agreement() - 2.0 / 3.0).abs() < 1e-12);
        // A base file round-trips, and a truncated one is refused.
        let h = base::Header {
            vocab: 3,
            ctx: 4,
            chunks: 1,
            tokens: vec![1, 2, 0, 1],
        };
        let mut buf = Vec::new();
        base::write_header(&mut buf, &h).unwrap();
        base::write_row(&mut buf, &[0.0, 0.0, 0.0], &mut scratch).unwrap();
        let len = buf.len() as u64;
        let mut r = &buf[..];
        assert_eq!(base::read_header(&mut r, len).unwrap(), h);
        let mut row = [0f32; 3];
        base::read_row(&mut r, &mut row).unwrap();
        assert!((row[1] - (1.0f32 / 3.0).ln()).abs() < 1e-7);
        let e = base::read_header(&mut &buf[..], len - 4).unwrap_err();
        assert!(e.to_string().contains("inconsistent"), "{e}");
        // Counts that overflow any product are refused before anything is allocated.
        let mut evil = b"BNLOGP01".to_vec();
        evil.extend([0xff; 16]);
        let e = base::read_header(&mut &evil[..], 24).unwrap_err();
        assert!(e.to_string().contains("inconsistent"), "{e}");
    }

    #[test]
    fn running_ppl_is_reported_per_chunk_and_limits_hold() {
        let mut m = Fake {
            vocab: 4,
            f: |_, _| vec![0.0; 4],
            seen: vec![],
        };
        let tokens = vec![1u32; 40];
        let mut reports = vec![];
        let c = PerplexityConfig {
            ctx: 8,
            bos: None,
            max_chunks: Some(2),
        };
        let p = perplexity(&mut m, &tokens, &c, &mut |r| reports.push(r.clone())).unwrap();
        assert_eq!(p.chunks, 2);
        assert_eq!(reports.len(), 2);
        assert_eq!((reports[1].chunk, reports[1].of), (2, 2));
        assert!((reports[0].running_ppl - 4.0).abs() < 1e-12);
        let e = perplexity(&mut m, &tokens[..15], &cfg(8, None), &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("at least 2 · ctx = 16"), "{e}");
        let e = perplexity(&mut m, &tokens, &cfg(3, None), &mut |_| {}).unwrap_err();
        assert!(matches!(e, PerplexityError::ContextTooSmall { ctx: 3 }));
        let mut bad = tokens.clone();
        bad[5] = 4;
        let e = perplexity(&mut m, &bad, &cfg(8, None), &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("index 5"), "{e}");
    }
}
