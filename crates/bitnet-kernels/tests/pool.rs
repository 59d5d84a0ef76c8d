//! The persistent pool: every task runs exactly once, nested and concurrent calls work, a
//! panicking task surfaces in the caller and the pool keeps working.

use bitnet_kernels::{num_threads, parallel_for, set_num_threads};
use std::sync::atomic::{AtomicUsize, Ordering};

#[test]
fn pool_behaviour() {
    // One test function: the pool and its thread count are process-global.
    for threads in [1, 2, 3] {
        set_num_threads(threads);
        assert_eq!(num_threads(), threads);
        for n in [1usize, 2, 7, 64, 1000] {
            for _ in 0..20 {
                let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                parallel_for(n, |i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
                assert!(
                    hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
                    "t={threads} n={n}"
                );
            }
        }
    }

    // Nested calls run serially inside the task instead of deadlocking.
    set_num_threads(2);
    let total = AtomicUsize::new(0);
    parallel_for(8, |_| {
        parallel_for(5, |j| {
            total.fetch_add(j, Ordering::Relaxed);
        });
    });
    assert_eq!(total.load(Ordering::Relaxed), 8 * 10);

    // Concurrent callers from several threads are serialised safely.
    std::thread::scope(|s| {
        for k in 0..4usize {
            s.spawn(move || {
                for _ in 0..200 {
                    let sum = AtomicUsize::new(0);
                    parallel_for(16, |i| {
                        sum.fetch_add(i * k, Ordering::Relaxed);
                    });
                    assert_eq!(sum.load(Ordering::Relaxed), 120 * k);
                }
            });
        }
    });

    // A panicking task panics the caller; the pool still works afterwards.
    let r = std::panic::catch_unwind(|| {
        parallel_for(32, |i| {
            if i == 17 {
                panic!("task 17 fails");
            }
        })
    });
    assert!(r.is_err());
    let count = AtomicUsize::new(0);
    parallel_for(100, |_| {
        count.fetch_add(1, Ordering::Relaxed);
    });
    assert_eq!(count.load(Ordering::Relaxed), 100);
}
