//! Sampler settings, named and defaulted as in llama.cpp's `common_params_sampling`.

use std::collections::HashMap;

use super::SamplingError;

/// Sampling settings. Field names and defaults follow llama.cpp (`--temp`, `--top-k`, ...).
///
/// A setting at its "off" value skips that stage entirely:
/// `top_k == 0`, `top_p >= 1`, `min_p <= 0`, `repeat_penalty == 1`,
/// `frequency_penalty == 0`, `presence_penalty == 0`, `repeat_last_n == 0` (all penalties off).
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerConfig {
    /// Softmax temperature applied last, to the surviving candidates. `<= 0` means greedy:
    /// after logit bias and penalties, the highest logit wins (ties → lowest token id).
    pub temperature: f32,
    /// Keep only the `top_k` highest logits; `0` = off. Default 40.
    pub top_k: usize,
    /// Nucleus: keep the smallest prefix (by descending probability) whose cumulative
    /// probability is `>= top_p`; `1.0` = off. Default 0.95. Must be in `[0, 1]`.
    pub top_p: f32,
    /// Keep tokens whose probability is at least `min_p` × the top token's probability;
    /// `0.0` = off. Default 0.05. Must be in `[0, 1]`.
    pub min_p: f32,
    /// Repetition penalty (llama.cpp/transformers/CTRL): for each token seen in the window a
    /// positive logit is divided by it, a non-positive logit multiplied by it. `1.0` = off.
    pub repeat_penalty: f32,
    /// How many of the most recent history tokens the penalties look at:
    /// `0` = penalties off, `-1` = the whole history. Default 64.
    pub repeat_last_n: i32,
    /// OpenAI frequency penalty: `logit -= count × frequency_penalty` (count in the window).
    pub frequency_penalty: f32,
    /// OpenAI presence penalty: `logit -= presence_penalty` for every token seen in the window.
    pub presence_penalty: f32,
    /// Added to a token's logit before anything else; `f32::NEG_INFINITY` bans the token.
    pub logit_bias: HashMap<u32, f32>,
    /// RNG seed; `None` draws a fresh seed (see [`super::Sampler::seed`] to read it back).
    pub seed: Option<u64>,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        Self {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            logit_bias: HashMap::new(),
            seed: None,
        }
    }
}

impl SamplerConfig {
    /// Greedy decoding (temperature 0) with every other stage at its llama.cpp default.
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            ..Self::default()
        }
    }

    /// A configuration with every filter and penalty off and temperature 1: pure sampling
    /// from `softmax(logits)`.
    pub fn neutral() -> Self {
        Self {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            // Penalties are off (1.0 / 0.0) and there is no bias or seed by default.
            ..Self::default()
        }
    }

    /// True when this configuration decodes greedily (`temperature <= 0`).
    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0
    }

    /// True when any penalty stage would change logits.
    pub(crate) fn penalties_active(&self) -> bool {
        self.repeat_last_n != 0
            && (self.repeat_penalty != 1.0
                || self.frequency_penalty != 0.0
                || self.presence_penalty != 0.0)
    }

    /// Checks every field against its documented range, for a vocabulary of `vocab_size`.
    pub fn validate(&self, vocab_size: usize) -> Result<(), SamplingError> {
        let bad =
            |field: &'static str, reason: String| SamplingError::InvalidConfig { field, reason };
        if self.temperature.is_nan() {
            return Err(bad("temperature", "is NaN".into()));
        }
        if !(0.0..=1.0).contains(&self.top_p) {
            return Err(bad("top_p", format!("{} is outside [0, 1]", self.top_p)));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return Err(bad("min_p", format!("{} is outside [0, 1]", self.min_p)));
        }
        if !(self.repeat_penalty.is_finite() && self.repeat_penalty > 0.0) {
            return Err(bad(
                "repeat_penalty",
                format!("{} must be finite and > 0", self.repeat_penalty),
            ));
        }
        if self.repeat_last_n < -1 {
            return Err(bad(
                "repeat_last_n",
                format!("{} must be >= -1 (-1 = whole history)", self.repeat_last_n),
            ));
        }
        if !self.frequency_penalty.is_finite() {
            return Err(bad("frequency_penalty", "is not finite".into()));
        }
        if !self.presence_penalty.is_finite() {
            return Err(bad("presence_penalty", "is not finite".into()));
        }
        for (&id, &bias) in &self.logit_bias {
            if id as usize >= vocab_size {
                return Err(bad(
                    "logit_bias",
                    format!("token id {id} is outside the vocabulary of {vocab_size} tokens"),
                ));
            }
            if bias.is_nan() || bias == f32::INFINITY {
                return Err(bad(
                    "logit_bias",
                    format!("bias {bias} for token {id} must be finite or -inf"),
                ));
            }
        }
        Ok(())
    }
}

/// Parses one llama.cpp `--logit-bias` value, `TOKEN_ID(+|-)BIAS`: `15043+1` adds 1 to
/// token 15043's logit, `15043-1.5` subtracts 1.5, `15043-inf` bans the token.
pub fn parse_logit_bias(s: &str) -> Result<(u32, f32), SamplingError> {
    let bad = |why: &str| SamplingError::InvalidConfig {
        field: "logit_bias",
        reason: format!("{s:?}: {why} (expected TOKEN_ID+BIAS or TOKEN_ID-BIAS, e.g. 15043-inf)"),
    };
    let s_trim = s.trim();
    let at = s_trim
        .find(['+', '-'])
        .ok_or_else(|| bad("no + or - sign"))?;
    let (id, rest) = s_trim.split_at(at);
    let id: u32 = id.trim().parse().map_err(|_| bad("bad token id"))?;
    let value: f32 = rest[1..]
        .trim()
        .parse()
        .map_err(|_| bad("bad bias value"))?;
    if value.is_nan() {
        return Err(bad("bias is NaN"));
    }
    let bias = if rest.starts_with('-') { -value } else { value };
    if bias == f32::INFINITY {
        return Err(bad("+inf is not allowed (use a large finite value)"));
    }
    Ok((id, bias))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logit_bias_syntax_of_llama_cpp() {
        assert_eq!(parse_logit_bias("15043+1"), Ok((15043, 1.0)));
        assert_eq!(parse_logit_bias("15043-1.5"), Ok((15043, -1.5)));
        assert_eq!(parse_logit_bias("7-inf"), Ok((7, f32::NEG_INFINITY)));
        assert_eq!(parse_logit_bias(" 2+0.25 "), Ok((2, 0.25)));
        for bad in ["15043", "x+1", "1+", "1+abc", "1+inf", "-1+2", "1-nan"] {
            assert!(
                matches!(
                    parse_logit_bias(bad),
                    Err(SamplingError::InvalidConfig {
                        field: "logit_bias",
                        ..
                    })
                ),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn defaults_are_llama_cpp_and_greedy_detection() {
        assert!(SamplerConfig::greedy().is_greedy());
        assert!(!SamplerConfig::default().is_greedy());
        assert!(!SamplerConfig::default().penalties_active());
        let c = SamplerConfig {
            repeat_penalty: 1.1,
            repeat_last_n: 0,
            ..SamplerConfig::default()
        };
        assert!(!c.penalties_active());
    }
}
