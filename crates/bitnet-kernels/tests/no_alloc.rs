//! The decode-loop kernels allocate nothing after warm-up (counting global allocator).
//! Single test in this binary so no other test allocates concurrently.

use bitnet_kernels::{
    available_isas, quantize_activations_with, set_num_threads, DenseMatrix, TernaryMatrix,
};
use half::f16;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn decode_kernels_allocate_nothing_after_warmup() {
    let (rows, cols, n) = (640, 2560, 5);
    let trits: Vec<i8> = (0..rows * cols).map(|i| (i % 3) as i8 - 1).collect();
    let w = TernaryMatrix::from_trits(rows, cols, &trits, 0.5).unwrap();
    let head = DenseMatrix::F16 {
        rows: 1000,
        cols,
        data: (0..1000 * cols)
            .map(|i| f16::from_f32((i % 7) as f32 - 3.0))
            .collect(),
    };
    let head_q8 = head.to_q8();
    let x: Vec<f32> = (0..n * cols)
        .map(|i| ((i * 37) % 101) as f32 - 50.0)
        .collect();
    let mut xq = vec![0i8; n * cols];
    let mut scales = vec![0f32; n];
    let mut out = vec![0f32; n * rows];
    let mut logits = vec![0f32; 1000];
    set_num_threads(2);
    let isas = available_isas();

    let mut run = |check: bool| {
        for &isa in &isas {
            let before = ALLOCS.load(Ordering::SeqCst);
            for _ in 0..3 {
                for t in 0..n {
                    scales[t] = quantize_activations_with(
                        isa,
                        &x[t * cols..(t + 1) * cols],
                        &mut xq[t * cols..(t + 1) * cols],
                    );
                }
                w.matvec_with(isa, &xq[..cols], scales[0], &mut out[..rows]);
                w.matmul_with(isa, &xq, &scales, &mut out);
                {
                    let (a, b) = out.split_at_mut(rows);
                    let mut outs = [a, &mut b[..rows]];
                    TernaryMatrix::matmul_many_with(
                        isa,
                        &[&w, &w],
                        &xq[..cols],
                        &scales[..1],
                        &mut outs,
                    );
                }
                head.matvec_with(isa, &x[..cols], &mut logits);
                head_q8.matvec_with(isa, &x[..cols], &mut logits);
            }
            let after = ALLOCS.load(Ordering::SeqCst);
            if check {
                assert_eq!(after - before, 0, "{isa}: {} allocations", after - before);
            }
        }
    };
    run(false); // warm-up: starts the pool, grows per-thread scratch
    run(true);
    // Results are real: the first row of the matmul equals an independent dot product.
    let dot: i32 = trits[..cols]
        .iter()
        .zip(&xq[..cols])
        .map(|(&a, &b)| a as i32 * b as i32)
        .sum();
    assert_eq!(out[0], dot as f32 / scales[0] * 0.5);
}
