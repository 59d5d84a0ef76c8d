//! The experimental base-3 layout (`experimental::Base3Matrix`): its AVX-512 GEMV and its
//! scalar reference give exactly the contract's result (independent reference over row-major
//! trits) and `TernaryMatrix`'s scalar path, bit for bit, on odd shapes and the 2B4T shapes.

mod common;

use bitnet_kernels::experimental::Base3Matrix;
use bitnet_kernels::{set_num_threads, Isa, TernaryMatrix};
use common::{ternary_ref, Rng};

fn check(rows: usize, cols: usize, seed: u64) {
    let mut rng = Rng(seed);
    let trits = rng.trits(rows * cols);
    let scale = 0.75 + rng.f32().abs();
    let mut xq = rng.i8s(cols);
    if cols > 0 {
        xq[0] = -128; // extremes of i8 are allowed
        xq[cols - 1] = 127;
    }
    let xs = 1.0 + 100.0 * rng.f32().abs();
    let want = ternary_ref(rows, cols, &trits, scale, &xq, &[xs]);
    let two_bit = TernaryMatrix::from_trits(rows, cols, &trits, scale).unwrap();
    let mut want2 = vec![f32::NAN; rows];
    two_bit.matvec_with(Isa::Scalar, &xq, xs, &mut want2);
    let w = Base3Matrix::from_trits(rows, cols, &trits, scale).unwrap();
    assert!(w.bytes() >= rows * cols / 5, "{rows}x{cols}: too few bytes");
    for isa in [Isa::Scalar, Isa::Avx512] {
        if isa == Isa::Avx512 && !isa.is_available() {
            println!("SKIPPED: AVX-512 VNNI not available on this CPU");
            continue;
        }
        let mut got = vec![f32::NAN; rows];
        w.matvec_with(isa, &xq, xs, &mut got);
        for (r, ((g, e), e2)) in got.iter().zip(&want).zip(&want2).enumerate() {
            assert_eq!(
                (g.to_bits(), g.to_bits()),
                (e.to_bits(), e2.to_bits()),
                "base-3 {isa}: {rows}x{cols} row {r}: got {g}, want {e} (2-bit scalar {e2})"
            );
        }
    }
}

#[test]
fn odd_shapes_match_reference() {
    let shapes = [
        (1, 1),
        (3, 0),
        (0, 7),
        (5, 19),
        (16, 20),
        (17, 21),
        (31, 40),
        (33, 59),
        (48, 100),
        (70, 333),
    ];
    for (i, &(r, c)) in shapes.iter().enumerate() {
        check(r, c, 100 + i as u64);
    }
}

#[test]
fn bitnet_2b4t_shapes_match_reference_threaded() {
    // Pool-dispatched (above the inline threshold) with 2 threads, as decode runs.
    set_num_threads(2);
    check(2560, 2560, 7);
    check(6912, 2560, 8);
    check(2560, 6912, 9);
}

#[test]
fn bad_input_is_an_error() {
    assert!(Base3Matrix::from_trits(2, 3, &[0; 5], 1.0).is_err());
    assert!(Base3Matrix::from_trits(1, 2, &[0, 2], 1.0).is_err());
    assert!(Base3Matrix::from_trits(1, 40000, &vec![0; 40000], 1.0).is_err());
}
