//! Vector helpers on every ISA path against f64 references.

mod common;

use bitnet_kernels::available_isas;
use bitnet_kernels::ops::{axpy_with, dot_with};
use common::Rng;

#[test]
fn dot_and_axpy_every_isa() {
    let mut rng = Rng(13);
    for n in [0usize, 1, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 128, 1000] {
        let a = rng.f32s(n);
        let b = rng.f32s(n);
        let want: f64 = a.iter().zip(&b).map(|(&x, &y)| x as f64 * y as f64).sum();
        let mag: f64 = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| (x as f64 * y as f64).abs())
            .sum();
        for isa in available_isas() {
            let got = dot_with(isa, &a, &b) as f64;
            assert!(
                (got - want).abs() <= 1e-5 * mag + 1e-30,
                "{isa} n={n}: {got} vs {want}"
            );
            let mut y = b.clone();
            axpy_with(isa, &mut y, 0.5, &a);
            for i in 0..n {
                // One rounding (fma) or two (mul, add): within 1 ulp-ish of the f64 value.
                let e = b[i] as f64 + 0.5 * a[i] as f64;
                assert!(
                    (y[i] as f64 - e).abs() <= 1e-6 * (e.abs() + 1.0),
                    "{isa} n={n} i={i}"
                );
            }
        }
    }
    // Hand-computed.
    for isa in available_isas() {
        assert_eq!(dot_with(isa, &[1.0, 2.0, 3.0], &[4.0, -5.0, 6.0]), 12.0);
        let mut y = [1.0f32, 1.0];
        axpy_with(isa, &mut y, 2.0, &[3.0, -1.0]);
        assert_eq!(y, [7.0, -1.0]);
    }
}
