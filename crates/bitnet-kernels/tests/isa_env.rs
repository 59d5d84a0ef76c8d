//! `BITNET_ISA` selection: the pure resolver for every case, and the real environment
//! override in this process (one test, so the variable is set before first use).

use bitnet_kernels::{active_isa, detected_isa, resolve_isa, Isa, TernaryMatrix};

#[test]
fn resolver_cases() {
    use Isa::*;
    assert_eq!(resolve_isa(None, Avx512), (Avx512, None));
    assert_eq!(resolve_isa(Some("auto"), Avx2), (Avx2, None));
    assert_eq!(resolve_isa(Some(" AVX2 "), Avx512), (Avx2, None));
    assert_eq!(resolve_isa(Some("scalar"), Avx512), (Scalar, None));
    // Forced but unavailable: fall back with a warning, never crash.
    let (isa, w) = resolve_isa(Some("avx512"), Avx2);
    assert_eq!(isa, Avx2);
    assert!(w.unwrap().contains("cannot run avx512"));
    let (isa, w) = resolve_isa(Some("avx512"), Scalar);
    assert_eq!(isa, Scalar);
    assert!(w.is_some());
    assert_eq!(resolve_isa(Some("amx"), Amx), (Amx, None));
    let (isa, w) = resolve_isa(Some("amx"), Avx512);
    assert_eq!(isa, Avx512);
    assert!(w.unwrap().contains("cannot run amx"));
    // Unknown value.
    let (isa, w) = resolve_isa(Some("neon"), Avx2);
    assert_eq!(isa, Avx2);
    assert!(w.unwrap().contains("not one of"));
}

#[test]
fn env_override_selects_scalar() {
    // SAFETY-free in edition 2021; no other test in this binary reads the variable.
    std::env::set_var("BITNET_ISA", "scalar");
    assert_eq!(active_isa(), Isa::Scalar);
    assert!(detected_isa() >= Isa::Scalar);
    // The plain entry points now run the scalar path and still give the contract's result.
    let w = TernaryMatrix::from_trits(2, 3, &[1, 0, -1, -1, 1, 1], 0.5).unwrap();
    let mut out = [0f32; 2];
    w.matvec(&[10, 20, 30], 2.0, &mut out);
    assert_eq!(out, [-5.0, 10.0]);
}
