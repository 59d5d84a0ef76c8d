//! Shared helpers for the kernel tests: a deterministic generator and independent references.
#![allow(dead_code)]

/// xorshift64* — deterministic, dependency-free.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [-1, 1).
    pub fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    pub fn trit(&mut self) -> i8 {
        (self.next_u64() % 3) as i8 - 1
    }
    pub fn i8(&mut self) -> i8 {
        (self.next_u64() >> 56) as u8 as i8
    }
    pub fn trits(&mut self, n: usize) -> Vec<i8> {
        (0..n).map(|_| self.trit()).collect()
    }
    pub fn i8s(&mut self, n: usize) -> Vec<i8> {
        (0..n).map(|_| self.i8()).collect()
    }
    pub fn f32s(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f32()).collect()
    }
}

/// Independent reference straight from the contract: exact integer dot over row-major trits,
/// then `dot as f32 / x_scale * scale`.
pub fn ternary_ref(
    rows: usize,
    cols: usize,
    trits: &[i8],
    scale: f32,
    xq: &[i8],
    x_scales: &[f32],
) -> Vec<f32> {
    let n = x_scales.len();
    let mut out = vec![0f32; n * rows];
    for t in 0..n {
        let x = &xq[t * cols..(t + 1) * cols];
        for r in 0..rows {
            let dot: i64 = trits[r * cols..(r + 1) * cols]
                .iter()
                .zip(x)
                .map(|(&w, &v)| w as i64 * v as i64)
                .sum();
            out[t * rows + r] = dot as i32 as f32 / x_scales[t] * scale;
        }
    }
    out
}
