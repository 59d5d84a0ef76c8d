//! Prometheus metrics: request and token counters, engine gauges, latency histograms.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use bitnet_engine::EngineStats;

/// A histogram with fixed upper bounds (seconds).
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum: Mutex<f64>,
    count: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum: Mutex::new(0.0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, v: f64) {
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            if v <= *b {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Ok(mut s) = self.sum.lock() {
            *s += v;
        }
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{b}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let n = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {n}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum.lock().map(|s| *s).unwrap_or(0.0)
        );
        let _ = writeln!(out, "{name}_count {n}");
    }
}

const LATENCY: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The server's metrics.
pub struct Metrics {
    pub requests: AtomicU64,
    pub requests_failed: AtomicU64,
    pub prompt_tokens: AtomicU64,
    pub generation_tokens: AtomicU64,
    pub ttft: Histogram,
    pub itl: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: AtomicU64::new(0),
            requests_failed: AtomicU64::new(0),
            prompt_tokens: AtomicU64::new(0),
            generation_tokens: AtomicU64::new(0),
            ttft: Histogram::new(LATENCY),
            itl: Histogram::new(LATENCY),
        }
    }
}

impl Metrics {
    /// The Prometheus text exposition.
    pub fn render(&self, e: &EngineStats) -> String {
        let mut s = String::new();
        let counter = |s: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        let gauge = |s: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        counter(
            &mut s,
            "bitnet_requests_total",
            "Completion requests received.",
            ld(&self.requests),
        );
        counter(
            &mut s,
            "bitnet_requests_failed_total",
            "Requests answered with an error.",
            ld(&self.requests_failed),
        );
        counter(
            &mut s,
            "bitnet_prompt_tokens_total",
            "Prompt tokens of accepted requests.",
            ld(&self.prompt_tokens),
        );
        counter(
            &mut s,
            "bitnet_generation_tokens_total",
            "Tokens generated.",
            ld(&self.generation_tokens),
        );
        counter(
            &mut s,
            "bitnet_engine_steps_total",
            "Engine steps (batched forward passes).",
            e.steps,
        );
        counter(
            &mut s,
            "bitnet_prefix_cache_hit_blocks_total",
            "KV blocks taken from the prefix cache.",
            e.prefix_hit_blocks,
        );
        counter(
            &mut s,
            "bitnet_preemptions_total",
            "Sequences preempted (recomputed later) for lack of KV blocks.",
            e.preemptions,
        );
        gauge(
            &mut s,
            "bitnet_queue_depth",
            "Sequences waiting to start.",
            e.waiting as u64,
        );
        gauge(
            &mut s,
            "bitnet_running_sequences",
            "Sequences in the running batch.",
            e.running as u64,
        );
        gauge(
            &mut s,
            "bitnet_kv_blocks_used",
            "KV cache blocks owned by sequences.",
            e.blocks_used as u64,
        );
        gauge(
            &mut s,
            "bitnet_kv_blocks_total",
            "KV cache blocks in the pool.",
            e.blocks_total as u64,
        );
        gauge(
            &mut s,
            "bitnet_kv_blocks_cached",
            "KV cache blocks holding a cached prefix.",
            e.blocks_cached as u64,
        );
        self.ttft.render(
            "bitnet_time_to_first_token_seconds",
            "Time from request to its first token.",
            &mut s,
        );
        self.itl.render(
            "bitnet_inter_token_latency_seconds",
            "Time between consecutive tokens of a choice.",
            &mut s,
        );
        s
    }
}
