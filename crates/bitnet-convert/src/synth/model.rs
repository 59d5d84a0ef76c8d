//! The numbers of a synthetic model, generated tensor by tensor from (seed, tensor name).
//!
//! * Ternary matrices: trits ~40% 0 / 30% −1 / 30% +1; master weights `t · s_master` with
//!   `s_master = bf16(1/sqrt(0.6 · in_features))`, so a BitLinear output has unit variance.
//! * Norm weights: `bf16(1 + 0.1 · z)`, z approximately N(0, 1).
//! * Embeddings: `bf16(0.05 · z)`, with |v| < 2⁻¹⁴ flushed to 0 so every value is exact in
//!   f16 as well (the GGUF F16 embedding holds the same numbers as the HF bf16 one).
//!
//! Every format written from the same seed holds the same trits, norms and embeddings.

use bitnet_quants::{bf16_bits_to_f32, f32_to_bf16_bits, Ternary};

use super::rng::Stream;
use super::shape::{Norm, Proj, Shape, HF_EMBED};

/// Round to the nearest bf16 value (as f32).
fn bf16(x: f32) -> f32 {
    bf16_bits_to_f32(f32_to_bf16_bits(x))
}

/// One generated ternary matrix and the scales each format stores for it.
#[derive(Clone, Debug)]
pub struct SynthMatrix {
    /// Trits `[out, in]`; `scale` = `mean|W|` of the master weights in f32 (the I2_S scale).
    pub ternary: Ternary,
    /// Master scale: HF bf16 weights are exactly `t · s_master` (a bf16 value).
    pub s_master: f32,
}

impl SynthMatrix {
    /// `mean|W|` of the master weights, f32 (the I2_S scale; TQ d = fp16 of it).
    pub fn mean_abs(&self) -> f32 {
        self.ternary.scale
    }

    /// transformers' `weight_scale` of a packed checkpoint: bf16(1 / mean|W|), which divides.
    pub fn hf_weight_scale(&self) -> f32 {
        bf16(1.0f32 / self.ternary.scale)
    }
}

/// A synthetic model: shape and seed. Cheap; tensors are generated on demand.
#[derive(Clone, Debug)]
pub struct SynthModel {
    pub shape: Shape,
    pub seed: u64,
}

impl SynthModel {
    pub fn new(shape: Shape, seed: u64) -> SynthModel {
        SynthModel { shape, seed }
    }

    /// Master scale for a matrix with `in_features` inputs: bf16(1/sqrt(0.6·in)).
    pub fn master_scale(in_features: usize) -> f32 {
        bf16((1.0 / (0.6 * in_features as f64).sqrt()) as f32)
    }

    /// Layer `l`'s projection `p`.
    pub fn matrix(&self, l: usize, p: Proj) -> SynthMatrix {
        let (rows, cols) = p.dims(&self.shape);
        let mut trits = vec![0i8; rows * cols];
        Stream::new(self.seed, &p.hf_name(l)).trits(&mut trits);
        let nnz = trits.iter().filter(|&&t| t != 0).count();
        let s_master = Self::master_scale(cols);
        // Σ|W| = nnz · s_master exactly (s_master has 8 significant bits).
        let mean = if trits.is_empty() {
            0.0
        } else {
            (nnz as f64 * s_master as f64 / trits.len() as f64) as f32
        };
        SynthMatrix {
            ternary: Ternary {
                rows,
                cols,
                trits,
                scale: mean,
            },
            s_master,
        }
    }

    /// Layer `l`'s norm weights (`l` ignored for [`Norm::Final`]).
    pub fn norm(&self, l: usize, n: Norm) -> Vec<f32> {
        let s = Stream::new(self.seed, &n.hf_name(l));
        (0..n.width(&self.shape) as u64)
            .map(|i| bf16((1.0 + 0.1 * s.normal(i)) as f32))
            .collect()
    }

    /// Write the whole embedding table (`[vocab, hidden]` row-major) to `out`, 1024 rows at a
    /// time, each chunk encoded by `encode` (f32 → file bytes), so it never sits in memory.
    pub fn write_embedding(
        &self,
        out: &mut dyn std::io::Write,
        encode: impl Fn(&[f32]) -> Vec<u8>,
    ) -> std::io::Result<()> {
        const CHUNK: usize = 1024;
        let vocab = self.shape.vocab;
        for start in (0..vocab).step_by(CHUNK) {
            let rows = CHUNK.min(vocab - start);
            out.write_all(&encode(&self.embedding_rows(start, rows)))?;
        }
        Ok(())
    }

    /// Embedding rows `start .. start + count`, `[count, hidden]` row-major.
    pub fn embedding_rows(&self, start: usize, count: usize) -> Vec<f32> {
        let s = Stream::new(self.seed, HF_EMBED);
        let h = self.shape.hidden;
        (start * h..(start + count) * h)
            .map(|i| {
                let v = bf16((0.05 * s.normal(i as u64)) as f32);
                if v.abs() < 6.103_515_6e-5 {
                    0.0
                } else {
                    v
                }
            })
            .collect()
    }
}
