//! Host-side checks of the CUDA backend (no GPU needed): the layout round-trips, the host model
//! of the kernel's arithmetic gives the CPU kernels' exact outputs, and opening a device where
//! there is none is an error that says so.

use bitnet_cuda::{CudaError, Device, GpuTernary};
use bitnet_kernels::{Isa, TernaryMatrix};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn case(rows: usize, cols: usize, n: usize, seed: u64) {
    let mut rng = Rng(seed);
    let trits: Vec<i8> = (0..rows * cols)
        .map(|_| (rng.next() % 3) as i8 - 1)
        .collect();
    let xq: Vec<i8> = (0..n * cols).map(|_| rng.next() as i8).collect();
    let xs: Vec<f32> = (0..n).map(|i| 0.5 + i as f32 * 1.7).collect();
    let g = GpuTernary::from_trits(rows, cols, &trits, 0.8125).unwrap();
    assert_eq!(g.cols_pad % 64, 0);
    assert_eq!(g.to_trits(), trits, "{rows}x{cols} round trip");
    let cpu = TernaryMatrix::from_trits(rows, cols, &trits, 0.8125).unwrap();
    let mut want = vec![0f32; n * rows];
    cpu.matmul_with(Isa::Scalar, &xq, &xs, &mut want);
    let mut got = vec![f32::NAN; n * rows];
    g.matmul_host(&xq, &xs, &mut got);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&got), bits(&want), "{rows}x{cols} n={n}");
}

#[test]
fn layout_and_arithmetic_match_the_cpu_kernels() {
    for (i, &(r, c)) in [(1, 1), (3, 17), (16, 64), (33, 100), (40, 2560), (7, 6912)]
        .iter()
        .enumerate()
    {
        for n in [1, 3] {
            case(r, c, n, 11 + i as u64);
        }
    }
}

#[test]
fn bad_shapes_are_errors() {
    assert!(matches!(
        GpuTernary::from_trits(2, 3, &[0; 5], 1.0),
        Err(CudaError::Shape(_))
    ));
    let e = GpuTernary::from_trits(1, 2, &[0, 2], 1.0).unwrap_err();
    assert!(e.to_string().contains("trit 1 is 2"), "{e}");
}

#[test]
fn opening_a_device_never_panics() {
    match Device::open(0) {
        Ok(d) => eprintln!("CUDA device present: {}", d.describe()),
        Err(e) => {
            let m = e.to_string();
            assert!(
                matches!(e, CudaError::NoDriver(_) | CudaError::NoDevice(_)),
                "{m}"
            );
            eprintln!("no CUDA here, as expected on a CPU machine: {m}");
        }
    }
}

#[test]
fn stacked_matrices_keep_their_own_scales() {
    // q, k, v of one input as one matrix: each part's rows equal that matrix alone.
    let mut rng = Rng(5);
    let (cols, n) = (200, 2);
    let shapes = [(24, 0.5f32), (8, 1.25), (8, 3.0)];
    let xq: Vec<i8> = (0..n * cols).map(|_| rng.next() as i8).collect();
    let xs = [2.0f32, 0.75];
    let mut parts = Vec::new();
    let mut want_parts = Vec::new();
    for &(rows, scale) in &shapes {
        let trits: Vec<i8> = (0..rows * cols)
            .map(|_| (rng.next() % 3) as i8 - 1)
            .collect();
        parts.push(GpuTernary::from_trits(rows, cols, &trits, scale).unwrap());
        let cpu = TernaryMatrix::from_trits(rows, cols, &trits, scale).unwrap();
        let mut w = vec![0f32; n * rows];
        cpu.matmul_with(Isa::Scalar, &xq, &xs, &mut w);
        want_parts.push(w);
    }
    let refs: Vec<&GpuTernary> = parts.iter().collect();
    let stacked = GpuTernary::stack(&refs).unwrap();
    assert_eq!(stacked.rows, 40);
    let mut got = vec![0f32; n * 40];
    stacked.matmul_host(&xq, &xs, &mut got);
    for t in 0..n {
        let want: Vec<f32> = want_parts
            .iter()
            .zip(&shapes)
            .flat_map(|(w, &(rows, _))| w[t * rows..(t + 1) * rows].to_vec())
            .collect();
        assert_eq!(got[t * 40..(t + 1) * 40], want[..], "token {t}");
    }
    let other = GpuTernary::from_trits(1, 3, &[0, 1, -1], 1.0).unwrap();
    assert!(GpuTernary::stack(&[&parts[0], &other]).is_err());
}
