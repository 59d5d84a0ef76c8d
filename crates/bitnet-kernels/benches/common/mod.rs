//! The timing harness shared by the kernel benches (`harness = false`): a small PRNG, random
//! trits, environment knobs and the median/CPU-time timer.
#![allow(dead_code)] // each bench uses its own subset

use std::time::{Duration, Instant};

pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// A numeric environment knob (`BENCH_SECS`, `BENCH_ROUNDS`, ...) with a default.
pub fn env_f64(k: &str, d: f64) -> f64 {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

/// This thread's time on CPU in ns (Linux `/proc/thread-self/schedstat`), if readable.
pub fn cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Run `f` repeatedly for about `BENCH_SECS` (default 0.5) seconds; return the median wall seconds per call, or with
/// `BENCH_CLOCK=cpu` (single-threaded runs on a shared machine) the calling thread's mean CPU
/// seconds per call, which time-slicing by other processes does not inflate.
pub fn time<F: FnMut()>(mut f: F) -> f64 {
    f();
    let cpu_clock = std::env::var("BENCH_CLOCK").is_ok_and(|v| v == "cpu");
    let budget = Duration::from_secs_f64(env_f64("BENCH_SECS", 0.5));
    let start = Instant::now();
    let c0 = cpu_ns();
    let mut samples = Vec::new();
    while start.elapsed() < budget || samples.len() < 3 {
        let t = Instant::now();
        f();
        samples.push(t.elapsed().as_secs_f64());
    }
    if let (true, Some(c0), Some(c1)) = (cpu_clock, c0, cpu_ns()) {
        return (c1 - c0) as f64 * 1e-9 / samples.len() as f64;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

pub fn trits(rng: &mut Rng, n: usize) -> Vec<i8> {
    (0..n).map(|_| (rng.next() % 3) as i8 - 1).collect()
}
