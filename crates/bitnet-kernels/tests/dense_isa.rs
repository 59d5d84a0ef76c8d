//! Dense GEMV (F32, F16, Q8 head) on every ISA path against independent f64 references.

mod common;

use bitnet_kernels::{available_isas, logit_divergence, DenseMatrix};
use common::Rng;
use half::f16;

fn f64_ref(rows: usize, cols: usize, w: &[f32], x: &[f32]) -> Vec<f64> {
    (0..rows)
        .map(|r| {
            (0..cols)
                .map(|c| w[r * cols + c] as f64 * x[c] as f64)
                .sum()
        })
        .collect()
}

/// |got − want| ≤ tol · Σ|w·x| per row (f32 accumulation error bound, loose constant).
fn assert_close(got: &[f32], want: &[f64], mag: &[f64], what: &str) {
    for (i, ((&g, &e), &m)) in got.iter().zip(want).zip(mag).enumerate() {
        let tol = 1e-5 * m + 1e-30;
        assert!(
            (g as f64 - e).abs() <= tol,
            "{what} row {i}: got {g}, want {e} (tol {tol})"
        );
    }
}

fn abs_mag(rows: usize, cols: usize, w: &[f32], x: &[f32]) -> Vec<f64> {
    (0..rows)
        .map(|r| {
            (0..cols)
                .map(|c| (w[r * cols + c] as f64 * x[c] as f64).abs())
                .sum()
        })
        .collect()
}

#[test]
fn f16_and_f32_gemv_every_isa() {
    let mut rng = Rng(3);
    for &(rows, cols) in &[
        (1, 1),
        (5, 7),
        (9, 31),
        (13, 33),
        (300, 100),
        (517, 2560),
        (64, 6912),
    ] {
        // F16-representable weights so F16 and F32 matrices hold the same values.
        let w16: Vec<f16> = (0..rows * cols).map(|_| f16::from_f32(rng.f32())).collect();
        let w: Vec<f32> = w16.iter().map(|v| v.to_f32()).collect();
        let x = rng.f32s(cols);
        let want = f64_ref(rows, cols, &w, &x);
        let mag = abs_mag(rows, cols, &w, &x);
        let m16 = DenseMatrix::F16 {
            rows,
            cols,
            data: w16,
        };
        let m32 = DenseMatrix::F32 {
            rows,
            cols,
            data: w.clone(),
        };
        for isa in available_isas() {
            let mut out = vec![f32::NAN; rows];
            m16.matvec_with(isa, &x, &mut out);
            assert_close(&out, &want, &mag, &format!("f16 {isa} {rows}x{cols}"));
            let mut out = vec![f32::NAN; rows];
            m32.matvec_with(isa, &x, &mut out);
            assert_close(&out, &want, &mag, &format!("f32 {isa} {rows}x{cols}"));
        }
    }
}

#[test]
fn dense_matmul_every_isa() {
    let mut rng = Rng(8);
    let (rows, cols, n) = (600, 37, 5);
    let w16: Vec<f16> = (0..rows * cols).map(|_| f16::from_f32(rng.f32())).collect();
    let w: Vec<f32> = w16.iter().map(|v| v.to_f32()).collect();
    let x = rng.f32s(n * cols);
    let m16 = DenseMatrix::F16 {
        rows,
        cols,
        data: w16,
    };
    let m32 = DenseMatrix::F32 {
        rows,
        cols,
        data: w.clone(),
    };
    let q8 = m32.to_q8();
    for isa in available_isas() {
        let (mut a, mut b, mut c) = (
            vec![0f32; n * rows],
            vec![0f32; n * rows],
            vec![0f32; n * rows],
        );
        m16.matmul_with(isa, &x, n, &mut a);
        m32.matmul_with(isa, &x, n, &mut b);
        q8.matmul_with(isa, &x, n, &mut c);
        for t in 0..n {
            let xt = &x[t * cols..(t + 1) * cols];
            let want = f64_ref(rows, cols, &w, xt);
            let mag = abs_mag(rows, cols, &w, xt);
            assert_close(
                &a[t * rows..(t + 1) * rows],
                &want,
                &mag,
                &format!("f16 mm {isa} t={t}"),
            );
            assert_close(
                &b[t * rows..(t + 1) * rows],
                &want,
                &mag,
                &format!("f32 mm {isa} t={t}"),
            );
            let mut single = vec![0f32; rows];
            q8.matvec_with(isa, xt, &mut single);
            assert_eq!(
                &c[t * rows..(t + 1) * rows],
                &single[..],
                "q8 mm {isa} t={t}"
            );
        }
    }
}

#[test]
fn dense_hand_computed_and_rows() {
    let m = DenseMatrix::F16 {
        rows: 2,
        cols: 3,
        data: [1.0f32, 2.0, 3.0, -1.0, 0.5, 0.0]
            .map(f16::from_f32)
            .to_vec(),
    };
    let mut out = [0f32; 2];
    m.matvec(&[1.0, 1.0, 2.0], &mut out);
    assert_eq!(out, [9.0, -0.5]);
    let mut row = [0f32; 3];
    m.row_into(1, &mut row);
    assert_eq!(row, [-1.0, 0.5, 0.0]);
    let mut outn = [0f32; 4];
    m.matmul(&[1.0, 1.0, 2.0, 0.0, 2.0, 0.0], 2, &mut outn);
    assert_eq!(outn, [9.0, -0.5, 4.0, 1.0]);
    assert_eq!(m.bytes(), 12);
}

/// Q8 reference from the definition: per-row absmax/127 scale, round half even, exact dot.
fn q8_ref(rows: usize, cols: usize, w: &[f32], x: &[f32]) -> Vec<f32> {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let xs = 127.0f32 / amax.max(1e-5);
    let xq: Vec<i32> = x
        .iter()
        .map(|&v| (v * xs).round_ties_even().clamp(-128.0, 127.0) as i32)
        .collect();
    (0..rows)
        .map(|r| {
            let row = &w[r * cols..(r + 1) * cols];
            let ra = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            if ra == 0.0 {
                return 0.0;
            }
            let s = ra / 127.0;
            let dot: i32 = row
                .iter()
                .zip(&xq)
                .map(|(&v, &q)| (v / s).round_ties_even().clamp(-127.0, 127.0) as i32 * q)
                .sum();
            dot as f32 / xs * s
        })
        .collect()
}

#[test]
fn q8_head_exact_every_isa() {
    let mut rng = Rng(11);
    for &(rows, cols) in &[
        (1, 0),
        (1, 1),
        (3, 5),
        (63, 7),
        (64, 64),
        (65, 130),
        (200, 2560),
    ] {
        let mut w = rng.f32s(rows * cols);
        if rows > 2 {
            w[cols..2 * cols].fill(0.0); // an all-zero row
        }
        let x = rng.f32s(cols);
        let m = DenseMatrix::F32 {
            rows,
            cols,
            data: w.clone(),
        }
        .to_q8();
        assert_eq!((m.rows(), m.cols()), (rows, cols));
        let want = q8_ref(rows, cols, &w, &x);
        for isa in available_isas() {
            let mut out = vec![f32::NAN; rows];
            m.matvec_with(isa, &x, &mut out);
            assert_eq!(out, want, "q8 {isa} {rows}x{cols}");
        }
        // Dequantized rows are within half a step of the original.
        let mut row = vec![0f32; cols];
        m.row_into(rows - 1, &mut row);
        let orig = &w[(rows - 1) * cols..];
        let step = orig.iter().fold(0f32, |a, v| a.max(v.abs())) / 127.0;
        for (a, b) in row.iter().zip(orig) {
            assert!((a - b).abs() <= 0.5 * step * 1.0001, "{a} vs {b}");
        }
    }
}

#[test]
fn q8_head_accuracy_is_measurable() {
    // Random head, random hidden states: the Q8 head's logits stay close to F16's.
    let (rows, cols) = (2000, 256);
    let mut rng = Rng(21);
    let w: Vec<f16> = (0..rows * cols)
        .map(|_| f16::from_f32(rng.f32() * 0.1))
        .collect();
    let f16m = DenseMatrix::F16 {
        rows,
        cols,
        data: w,
    };
    let q8 = f16m.to_q8();
    let (mut kl_sum, mut agree) = (0.0, 0);
    let n = 20;
    for _ in 0..n {
        let x: Vec<f32> = rng.f32s(cols).iter().map(|v| v * 4.0).collect();
        let (mut a, mut b) = (vec![0f32; rows], vec![0f32; rows]);
        f16m.matvec(&x, &mut a);
        q8.matvec(&x, &mut b);
        let (kl, same) = logit_divergence(&a, &b);
        kl_sum += kl;
        agree += same as usize;
    }
    let kl = kl_sum / n as f64;
    eprintln!("q8 vs f16 head: mean KL {kl:.2e}, top-1 agreement {agree}/{n}");
    assert!(kl < 1e-3, "mean KL {kl}");
    assert!(agree >= n - 2);
    // Identical logits → zero divergence; a swapped argmax is detected.
    assert_eq!(logit_divergence(&[1.0, 2.0], &[1.0, 2.0]), (0.0, true));
    let (kl, same) = logit_divergence(&[0.0, 2.0], &[2.0, 0.0]);
    assert!(!same && kl > 1.0);
}

/// The batched engine relies on it: a token's row of `matmul` is bit for bit what `matvec`
/// gives for that token alone, on every path, whatever the batch size (token tiles and
/// remainders) and column count (vector tails).
#[test]
fn dense_matmul_rows_are_bit_identical_to_matvec() {
    let mut rng = Rng(21);
    for (rows, cols) in [(300, 37), (70, 2563), (33, 16), (130, 256), (65, 1100)] {
        let w16: Vec<f16> = (0..rows * cols).map(|_| f16::from_f32(rng.f32())).collect();
        let m16 = DenseMatrix::F16 {
            rows,
            cols,
            data: w16.clone(),
        };
        let m32 = DenseMatrix::F32 {
            rows,
            cols,
            data: w16.iter().map(|v| v.to_f32()).collect(),
        };
        let mq8 = m32.to_q8();
        for n in [1usize, 2, 3, 4, 5, 8, 9, 17] {
            let x = rng.f32s(n * cols);
            for isa in available_isas() {
                for (m, what) in [(&m16, "f16"), (&m32, "f32"), (&mq8, "q8")] {
                    let mut all = vec![0f32; n * rows];
                    m.matmul_with(isa, &x, n, &mut all);
                    for t in 0..n {
                        let mut one = vec![0f32; rows];
                        m.matvec_with(isa, &x[t * cols..(t + 1) * cols], &mut one);
                        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert_eq!(
                            bits(&all[t * rows..(t + 1) * rows]),
                            bits(&one),
                            "{what} {isa} {rows}x{cols} n={n} t={t}"
                        );
                    }
                }
            }
        }
    }
}
