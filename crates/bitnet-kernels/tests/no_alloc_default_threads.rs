//! Without any `set_num_threads` call, the default thread count is looked up once, so kernel
//! calls after warm-up still allocate nothing (single test: the counter is process-wide).

use bitnet_kernels::{num_threads, TernaryMatrix};
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
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn default_thread_count_does_not_allocate_per_call() {
    let (rows, cols) = (640, 2560);
    let trits: Vec<i8> = (0..rows * cols).map(|i| (i % 3) as i8 - 1).collect();
    let w = TernaryMatrix::from_trits(rows, cols, &trits, 1.0).unwrap();
    let xq = vec![3i8; cols];
    let mut out = vec![0f32; rows];
    w.matvec(&xq, 1.0, &mut out); // warm-up: pool start, thread-count lookup
    let before = ALLOCS.load(Ordering::SeqCst);
    for _ in 0..20 {
        w.matvec(&xq, 1.0, &mut out);
        assert!(num_threads() >= 1);
    }
    assert_eq!(ALLOCS.load(Ordering::SeqCst) - before, 0);
    // Row 0 is 1,-1,0 repeating... : Σ = 3·(#1 − #-1) over 2560 columns.
    let ones = (0..cols).filter(|i| i % 3 == 2).count() as i32;
    let neg = (0..cols).filter(|i| i % 3 == 0).count() as i32;
    assert_eq!(out[0], (3 * (ones - neg)) as f32);
}
