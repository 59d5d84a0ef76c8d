//! The canonical ternary tensor and transformers' absmean ternarization.

use crate::QuantError;

/// A ternary weight matrix: every source format decodes to this.
///
/// `trits` is row-major `[rows, cols]` (`rows` = output features, `cols` = input features,
/// i.e. GGUF `[ne0 = cols, ne1 = rows]`), each −1, 0 or +1. The dequantized weight is
/// `trit · scale`: the scale always **multiplies**.
#[derive(Clone, Debug, PartialEq)]
pub struct Ternary {
    pub rows: usize,
    pub cols: usize,
    /// `[rows × cols]`, row-major, values in {−1, 0, +1}.
    pub trits: Vec<i8>,
    /// Multiplicative per-tensor scale.
    pub scale: f32,
}

impl Ternary {
    /// Number of elements, `rows · cols`.
    pub fn len(&self) -> usize {
        self.rows * self.cols
    }

    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Dequantized weights `trit · scale`, `[rows × cols]` row-major.
    pub fn to_f32(&self) -> Vec<f32> {
        self.trits.iter().map(|&t| t as f32 * self.scale).collect()
    }

    /// Check that the trit count matches the shape and every trit is −1, 0 or +1.
    pub fn validate(&self) -> Result<(), QuantError> {
        let n = self
            .rows
            .checked_mul(self.cols)
            .ok_or_else(|| QuantError::BadShape {
                format: "ternary".into(),
                reason: format!("{} × {} overflows", self.rows, self.cols),
            })?;
        if self.trits.len() != n {
            return Err(QuantError::BadShape {
                format: "ternary".into(),
                reason: format!(
                    "{} trits for a {} × {} matrix",
                    self.trits.len(),
                    self.rows,
                    self.cols
                ),
            });
        }
        if let Some((i, &t)) = self
            .trits
            .iter()
            .enumerate()
            .find(|(_, t)| !(-1..=1).contains(*t))
        {
            return Err(QuantError::InvalidTrit {
                value: t,
                index: i as u64,
            });
        }
        Ok(())
    }
}

/// Ternarize float master weights `w` (`[rows × cols]` row-major) exactly as transformers'
/// `WeightQuant` does in float32:
///
/// ```text
/// s = 1 / max(mean|W|, 1e-5);  t = clamp(round_half_even(w · s), −1, 1);  value = t / s
/// ```
///
/// The returned multiplicative scale is `1/s` in f32, so `t · scale` equals torch's `t / s`
/// bit for bit for t = ±1. `mean|W|` is summed in f64 and rounded once to f32 (torch sums in
/// f32 with its own reduction order, so the two can differ by one ulp on large tensors).
/// NaN or infinite weights are an error.
pub fn ternarize_absmean(w: &[f32], rows: usize, cols: usize) -> Result<Ternary, QuantError> {
    let n = rows
        .checked_mul(cols)
        .filter(|&n| n == w.len())
        .ok_or_else(|| QuantError::BadShape {
            format: "absmean ternarization".into(),
            reason: format!("{} weights for a {rows} × {cols} matrix", w.len()),
        })?;
    if let Some(i) = w.iter().position(|x| !x.is_finite()) {
        return Err(QuantError::BadShape {
            format: "absmean ternarization".into(),
            reason: format!("weight {i} is not finite ({})", w[i]),
        });
    }
    // Σ|w| in f64 with 8 interleaved accumulators (a fixed order: deterministic).
    let mut acc = [0f64; 8];
    let chunks = w.chunks_exact(8);
    let rest: f64 = chunks.remainder().iter().map(|&x| x.abs() as f64).sum();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x.abs() as f64;
        }
    }
    let sum = acc.iter().sum::<f64>() + rest;
    let mean = if n == 0 { 0.0 } else { (sum / n as f64) as f32 };
    let s = 1.0f32 / mean.max(1e-5);
    // clamp(round_half_even(y), -1, 1) is +1 exactly when y > 0.5 (0.5 rounds to even 0) and
    // -1 exactly when y < -0.5; y = w·s in f32 as torch computes it.
    let trits = w
        .iter()
        .map(|&x| {
            let y = x * s;
            (y > 0.5) as i8 - (y < -0.5) as i8
        })
        .collect();
    Ok(Ternary {
        rows,
        cols,
        trits,
        scale: 1.0f32 / s,
    })
}
