//! Activation quantization: every path is bit-identical to the scalar formula.

mod common;

use bitnet_kernels::{
    available_isas, detected_isa, quantize_activations_with, quantize_scalar, rms_norm_quantize,
    Isa,
};
use common::Rng;

#[test]
fn reports_and_detects_isas() {
    let isas = available_isas();
    eprintln!("available ISAs: {isas:?}; detected {}", detected_isa());
    assert_eq!(isas[0], Isa::Scalar);
    assert!(isas.contains(&detected_isa()));
    // CI runners that must exercise AVX-512 set BITNET_EXPECT_ISA=avx512.
    if let Some(want) = std::env::var("BITNET_EXPECT_ISA")
        .ok()
        .and_then(|v| Isa::parse(&v))
    {
        assert!(isas.contains(&want), "expected {want} to be available");
    }
}

#[test]
fn quantize_bit_identical_every_isa() {
    let mut rng = Rng(9);
    for n in [0usize, 1, 7, 15, 16, 17, 31, 32, 33, 100, 2560, 6912] {
        for mag in [1e-7f32, 1.0, 3.7, 1e4] {
            let mut x: Vec<f32> = (0..n).map(|_| rng.f32() * mag).collect();
            // Exact ties at .5 after scaling: absmax 127 → s = 1.
            if n > 4 && mag == 3.7 {
                x[0] = 127.0;
                x[1] = 2.5;
                x[2] = -3.5;
                x[3] = 0.5;
            }
            let mut want = vec![0i8; n];
            let s_want = quantize_scalar(&x, &mut want);
            for isa in available_isas() {
                let mut got = vec![0i8; n];
                let s = quantize_activations_with(isa, &x, &mut got);
                assert_eq!(s.to_bits(), s_want.to_bits(), "{isa} n={n} mag={mag}");
                assert_eq!(got, want, "{isa} n={n} mag={mag}");
            }
        }
    }
}

#[test]
fn quantize_hand_computed_ties() {
    // absmax 127 → s = 1: ties round to even, −128 is reachable only by clamping (never here).
    let x = [127.0f32, 2.5, -3.5, 0.5, -0.5, 1.5, -127.0, 0.0];
    for isa in available_isas() {
        // Repeat to reach the vector body (32 elements).
        let xs: Vec<f32> = x.iter().cycle().take(64).copied().collect();
        let mut q = vec![0i8; 64];
        let s = quantize_activations_with(isa, &xs, &mut q);
        assert_eq!(s, 1.0);
        assert_eq!(&q[..8], &[127, 2, -4, 0, 0, 2, -127, 0], "{isa}");
        assert_eq!(&q[56..], &q[..8], "{isa}");
    }
}

#[test]
fn rms_norm_quantize_matches_two_passes() {
    // rms of [3, 4] = sqrt(12.5); y = x / sqrt(12.5 + eps) * w.
    let x = [3.0f32, 4.0];
    let w = [1.0f32, 0.5];
    let mut y = [0f32; 2];
    let mut q = [0i8; 2];
    let s = rms_norm_quantize(&x, &w, 0.0, &mut y, &mut q);
    let r = 12.5f32.sqrt();
    assert!((y[0] - 3.0 / r).abs() < 1e-6 && (y[1] - 2.0 / r).abs() < 1e-6);
    let mut q2 = [0i8; 2];
    assert_eq!(s, quantize_scalar(&y, &mut q2));
    assert_eq!(q, q2);
    assert_eq!(q[0], 127);
}
