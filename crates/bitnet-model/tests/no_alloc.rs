//! Decoding a token allocates nothing: every buffer lives in the State.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bitnet_model::{Logits, Model};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn decode_does_not_allocate() {
    let Some(s) = common::shared() else { return };
    for path in [
        s.join("data/real-models/bitllama2c-tinystories-3m"),
        s.join("data/bitnetcpp/tiny/model-i2_s.gguf"),
    ] {
        let model = Model::load(&path).unwrap();
        let mut state = model.new_state(64).unwrap();
        model
            .forward(&mut state, &[1, 5, 9], 0, Logits::Last)
            .unwrap();
        // Warm-up decode (lets a kernel thread pool start), then count.
        model.forward(&mut state, &[7], 3, Logits::Last).unwrap();
        ALLOCS.store(0, Ordering::SeqCst);
        COUNTING.store(true, Ordering::SeqCst);
        for (i, t) in [11u32, 12, 13, 14, 15].into_iter().enumerate() {
            model
                .forward(&mut state, &[t], 4 + i, Logits::Last)
                .unwrap();
        }
        COUNTING.store(false, Ordering::SeqCst);
        let n = ALLOCS.load(Ordering::SeqCst);
        assert_eq!(
            n,
            0,
            "{}: {n} allocations in 5 decode steps",
            path.display()
        );
    }
}
