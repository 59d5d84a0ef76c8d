//! A persistent global thread pool for the kernels.
//!
//! `n` threads in total: the calling thread plus `n − 1` workers started once (on first use or
//! by [`set_num_threads`]). A parallel call publishes a job (a pointer to a closure on the
//! caller's stack), runs tasks itself, and waits until every worker has acknowledged the job.
//! Workers spin briefly between jobs (decode issues hundreds of calls per token) and then sleep
//! on a condition variable. Dispatching a job allocates nothing.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an idle worker spins before it sleeps.
const SPIN: Duration = Duration::from_micros(1000);

/// One parallel call: tasks `0..n_tasks` of the closure `f`.
struct Job {
    /// The caller's closure, lifetime erased; valid while the job is open or entered.
    f: *const (dyn Fn(usize) + Sync),
    n_tasks: usize,
    next: AtomicUsize,
    panicked: AtomicBool,
}

/// `state` packs the job generation (bits 33..), an "open" flag (bit 32) and the number of
/// workers inside the job (bits 0..32). A worker may only touch the job after entering it
/// (incrementing the count while the flag is set and the generation is the one it woke for);
/// the caller closes the job (clears the flag) only when the count is zero. So a worker that
/// wakes late never touches a finished job, and the caller never waits for sleeping workers.
const OPEN: u64 = 1 << 32;
const GEN_SHIFT: u32 = 33;
const ACTIVE_MASK: u64 = OPEN - 1;

struct Shared {
    state: AtomicU64,
    job: AtomicPtr<Job>,
    sleepers: AtomicUsize,
    shutdown: AtomicBool,
    lock: Mutex<()>,
    cvar: Condvar,
}

struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

static POOL: Mutex<Option<Pool>> = Mutex::new(None);
/// Requested thread count; 0 = not set yet (use the machine's parallelism).
static REQUESTED: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Set while this thread runs pool tasks: a nested parallel call runs serially.
    static IN_POOL: Cell<bool> = const { Cell::new(false) };
}

fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Set the number of threads (including the caller) used inside matvec/matmul. `0` means the
/// machine's available parallelism. Restarts the pool's workers if the count changes.
pub fn set_num_threads(n: usize) {
    let n = if n == 0 { default_threads() } else { n };
    REQUESTED.store(n, Ordering::SeqCst);
    let mut guard = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(pool) = guard.as_ref() {
        if pool.workers.len() + 1 == n {
            return;
        }
    }
    if let Some(old) = guard.take() {
        old.stop();
    }
    *guard = Some(Pool::start(n));
}

/// The number of threads (including the caller) kernels use: as set by [`set_num_threads`],
/// else the machine's available parallelism (looked up once: the lookup reads cgroup files
/// and allocates, which the decode loop must not).
pub fn num_threads() -> usize {
    match REQUESTED.load(Ordering::Relaxed) {
        0 => {
            let n = default_threads();
            // Keep an explicit set_num_threads that raced with us.
            match REQUESTED.compare_exchange(0, n, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => n,
                Err(set) => set,
            }
        }
        n => n,
    }
}

impl Pool {
    fn start(n: usize) -> Pool {
        let shared = Arc::new(Shared {
            state: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            sleepers: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            lock: Mutex::new(()),
            cvar: Condvar::new(),
        });
        let workers = (1..n)
            .map(|i| {
                let s = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("bitnet-kernel-{i}"))
                    .spawn(move || worker(&s))
                    .expect("cannot spawn a kernel worker thread")
            })
            .collect();
        Pool { shared, workers }
    }

    /// Publish a new generation (closed or open); the caller holds the POOL lock and no job
    /// is open, so no worker modifies `state` concurrently.
    fn publish(&self, open: bool) {
        let sh = &self.shared;
        let gen = (sh.state.load(Ordering::SeqCst) >> GEN_SHIFT) + 1;
        sh.state.store(
            (gen << GEN_SHIFT) | if open { OPEN } else { 0 },
            Ordering::SeqCst,
        );
        if sh.sleepers.load(Ordering::SeqCst) > 0 {
            let _l = sh.lock.lock().unwrap_or_else(|e| e.into_inner());
            sh.cvar.notify_all();
        }
    }

    fn stop(self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.publish(false);
        {
            let _l = self.shared.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.cvar.notify_all();
        }
        for w in self.workers {
            let _ = w.join();
        }
    }
}

fn worker(shared: &Shared) {
    IN_POOL.with(|c| c.set(true));
    let mut seen = 0u64;
    loop {
        // Wait for a new generation: spin, then sleep.
        let start = Instant::now();
        let mut spins = 0u32;
        let gen = loop {
            let g = shared.state.load(Ordering::Acquire) >> GEN_SHIFT;
            if g != seen {
                break g;
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) && start.elapsed() > SPIN {
                let mut l = shared.lock.lock().unwrap_or_else(|e| e.into_inner());
                shared.sleepers.fetch_add(1, Ordering::SeqCst);
                let g = loop {
                    let g = shared.state.load(Ordering::SeqCst) >> GEN_SHIFT;
                    if g != seen {
                        break g;
                    }
                    l = shared.cvar.wait(l).unwrap_or_else(|e| e.into_inner());
                };
                shared.sleepers.fetch_sub(1, Ordering::SeqCst);
                break g;
            }
            std::hint::spin_loop();
        };
        seen = gen;
        if shared.shutdown.load(Ordering::SeqCst) {
            return;
        }
        // Enter the job if it is still open for this generation.
        let mut s = shared.state.load(Ordering::Acquire);
        let entered = loop {
            if s >> GEN_SHIFT != gen || s & OPEN == 0 {
                break false;
            }
            match shared
                .state
                .compare_exchange_weak(s, s + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break true,
                Err(now) => s = now,
            }
        };
        if entered {
            // SAFETY: the job stays alive while this worker is counted in `state` (the caller
            // closes it only when the count is zero, and returns only after closing).
            let job = unsafe { &*shared.job.load(Ordering::Acquire) };
            run_tasks(job);
            shared.state.fetch_sub(1, Ordering::Release);
        }
    }
}

fn run_tasks(job: &Job) {
    // SAFETY: see `Job::f`: the closure outlives every use by an entered thread.
    let f = unsafe { &*job.f };
    loop {
        let i = job.next.fetch_add(1, Ordering::Relaxed);
        if i >= job.n_tasks {
            break;
        }
        if catch_unwind(AssertUnwindSafe(|| f(i))).is_err() {
            job.panicked.store(true, Ordering::SeqCst);
        }
    }
}

/// Guided self-scheduling of the items `0..total` over the pool: every thread repeatedly claims
/// `max(1, remaining / (2·threads))` items, so the first claims are large (few atomics) and the
/// last ones a single item, and the threads finish together; a thread that starts late simply
/// finds less (or nothing) left. `f(start, end)` is called with disjoint ranges covering
/// `0..total` exactly once. Allocates nothing.
pub fn guided_for<F: Fn(usize, usize) + Sync>(total: usize, f: F) {
    let threads = num_threads();
    let next = std::sync::atomic::AtomicUsize::new(0);
    parallel_for(threads, |_| loop {
        let mut cur = next.load(std::sync::atomic::Ordering::Relaxed);
        let (start, take) = loop {
            if cur >= total {
                return;
            }
            let take = ((total - cur) / (2 * threads)).max(1);
            match next.compare_exchange_weak(
                cur,
                cur + take,
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
            ) {
                Ok(_) => break (cur, take),
                Err(v) => cur = v,
            }
        };
        f(start, start + take);
    });
}

/// Run `f(0), f(1), .., f(n_tasks − 1)` on the pool (the caller takes part); returns when all
/// are done. Tasks are handed out dynamically, so a worker that is descheduled simply takes
/// none. A nested call from inside a task runs serially.
pub fn parallel_for<F: Fn(usize) + Sync>(n_tasks: usize, f: F) {
    if n_tasks == 0 {
        return;
    }
    if n_tasks == 1 || IN_POOL.with(|c| c.get()) || num_threads() == 1 {
        (0..n_tasks).for_each(f);
        return;
    }
    let mut guard = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        *guard = Some(Pool::start(num_threads()));
    }
    let Some(pool) = guard.as_ref() else {
        unreachable!()
    };
    if pool.workers.is_empty() {
        drop(guard);
        (0..n_tasks).for_each(f);
        return;
    }
    let shared = &pool.shared;
    let fref: &(dyn Fn(usize) + Sync) = &f;
    // SAFETY: only the lifetime is erased; the job is closed (no worker inside, none can
    // enter) before this function returns, so no worker touches `f` afterwards.
    let fptr: *const (dyn Fn(usize) + Sync + 'static) = unsafe {
        std::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), *const (dyn Fn(usize) + Sync)>(
            fref,
        )
    };
    let job = Job {
        f: fptr,
        n_tasks,
        next: AtomicUsize::new(0),
        panicked: AtomicBool::new(false),
    };
    shared
        .job
        .store(&job as *const Job as *mut Job, Ordering::SeqCst);
    pool.publish(true);
    IN_POOL.with(|c| c.set(true));
    run_tasks(&job);
    IN_POOL.with(|c| c.set(false));
    // Close: wait until no worker is inside, then clear the open flag atomically.
    let mut spins = 0u32;
    let mut s = shared.state.load(Ordering::Acquire);
    loop {
        if s & ACTIVE_MASK == 0 {
            match shared.state.compare_exchange_weak(
                s,
                s & !OPEN,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => {
                    s = now;
                    continue;
                }
            }
        }
        spins = spins.wrapping_add(1);
        if spins > 1 << 14 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
        s = shared.state.load(Ordering::Acquire);
    }
    shared.job.store(std::ptr::null_mut(), Ordering::Release);
    drop(guard);
    if job.panicked.load(Ordering::SeqCst) {
        panic!("a kernel task panicked");
    }
}

/// A raw pointer that may be shared with pool tasks writing disjoint ranges.
#[derive(Clone, Copy)]
pub(crate) struct SharedMut<T>(pub *mut T);
// SAFETY: users only write disjoint index ranges from different tasks (documented per use).
unsafe impl<T: Send> Send for SharedMut<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for SharedMut<T> {}

impl<T> SharedMut<T> {
    /// The sub-slice `start..start + len`.
    ///
    /// # Safety
    /// The range lies inside the original slice and no other task uses it concurrently.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice(&self, start: usize, len: usize) -> &mut [T] {
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(start), len) }
    }
}
