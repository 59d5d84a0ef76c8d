//! Wall-clock figures of one generation, in milliseconds (serialisable for `--json`).

use serde::Serialize;

/// Timings of one [`super::generate`] call. `load_ms` is the caller's (model loading happens
/// outside the loop); set it before printing.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timings {
    /// Model load time, filled in by the caller (0 when unknown).
    pub load_ms: f64,
    /// Tokens in the prompt batch.
    pub prompt_tokens: usize,
    /// Time of the batched prompt pass (prefill).
    pub prompt_ms: f64,
    /// Tokens generated (sampled), including a final stop token.
    pub generated_tokens: usize,
    /// Wall time from the end of the prefill to the end of generation: decode passes,
    /// sampling and detokenization.
    pub generation_ms: f64,
    /// Time inside the model's single-token decode passes.
    pub decode_ms: f64,
    /// Number of single-token decode passes (one fewer than the tokens generated: the last
    /// token is never fed back).
    pub decode_calls: usize,
    /// Time inside the sampler.
    pub sample_ms: f64,
}

fn per_second(n: usize, ms: f64) -> f64 {
    if ms > 0.0 {
        n as f64 * 1000.0 / ms
    } else {
        0.0
    }
}

impl Timings {
    /// Prompt processing speed (prefill tokens per second; 0 when nothing was measured).
    pub fn prompt_tokens_per_second(&self) -> f64 {
        per_second(self.prompt_tokens, self.prompt_ms)
    }

    /// Generation speed: generated tokens per second of generation wall time.
    pub fn generation_tokens_per_second(&self) -> f64 {
        per_second(self.generated_tokens, self.generation_ms)
    }

    /// A llama.cpp-like multi-line summary for stderr.
    pub fn summary(&self) -> String {
        format!(
            "load time   = {:10.2} ms\n\
             prompt eval = {:10.2} ms / {:5} tokens ({:8.2} tokens/s)\n\
             generation  = {:10.2} ms / {:5} tokens ({:8.2} tokens/s)\n\
             (decode {:.2} ms in {} passes, sampling {:.2} ms)",
            self.load_ms,
            self.prompt_ms,
            self.prompt_tokens,
            self.prompt_tokens_per_second(),
            self.generation_ms,
            self.generated_tokens,
            self.generation_tokens_per_second(),
            self.decode_ms,
            self.decode_calls,
            self.sample_ms,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        let t = Timings {
            prompt_tokens: 10,
            prompt_ms: 500.0,
            generated_tokens: 3,
            generation_ms: 1500.0,
            ..Timings::default()
        };
        assert_eq!(t.prompt_tokens_per_second(), 20.0);
        assert_eq!(t.generation_tokens_per_second(), 2.0);
        assert_eq!(Timings::default().generation_tokens_per_second(), 0.0);
        assert!(t.summary().contains("20.00 tokens/s"));
    }
}
