//! Repetition, frequency and presence penalties over a window of recent tokens.

/// Penalty settings, copied out of [`super::SamplerConfig`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Penalties {
    /// Divide positive / multiply non-positive logits of seen tokens (1 = off).
    pub repeat: f32,
    /// Subtracted once per occurrence in the window.
    pub frequency: f32,
    /// Subtracted once if the token occurs at all in the window.
    pub presence: f32,
    /// Window length: 0 = off, -1 = whole history.
    pub last_n: i32,
}

impl Penalties {
    /// The tokens the penalties look at: the last `last_n` entries of `history`.
    fn window<'h>(&self, history: &'h [u32]) -> &'h [u32] {
        match self.last_n {
            n if n < 0 => history,
            n => &history[history.len().saturating_sub(n as usize)..],
        }
    }

    /// Applies the penalties to `logits` in place, exactly as llama.cpp's penalties sampler:
    /// for each distinct token `t` with `count > 0` occurrences in the window,
    /// `logit = logit <= 0 ? logit * repeat : logit / repeat`, then
    /// `logit -= count * frequency + presence`.
    ///
    /// `counts` is scratch of length `logits.len()`, all zero on entry and on exit. History ids
    /// outside the vocabulary are ignored. No allocation.
    pub(crate) fn apply(&self, logits: &mut [f32], history: &[u32], counts: &mut [u32]) {
        let window = self.window(history);
        let vocab = logits.len().min(counts.len());
        // Pass 1: occurrence counts.
        for &t in window {
            if (t as usize) < vocab {
                counts[t as usize] += 1;
            }
        }
        // Pass 2: penalise each distinct token once (at its first occurrence), resetting the
        // count so later occurrences are skipped and the scratch is clean on exit.
        for &t in window {
            let i = t as usize;
            if i >= vocab || counts[i] == 0 {
                continue;
            }
            let count = counts[i];
            counts[i] = 0;
            let l = &mut logits[i];
            if *l <= 0.0 {
                *l *= self.repeat;
            } else {
                *l /= self.repeat;
            }
            *l -= count as f32 * self.frequency + self.presence;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_selection() {
        let p = |last_n| Penalties {
            repeat: 1.0,
            frequency: 0.0,
            presence: 0.0,
            last_n,
        };
        let h = [1u32, 2, 3, 4, 5];
        assert_eq!(p(2).window(&h), &[4, 5]);
        assert_eq!(p(10).window(&h), &h);
        assert_eq!(p(-1).window(&h), &h);
        assert_eq!(p(0).window(&h), &[] as &[u32]);
    }

    #[test]
    fn counts_scratch_is_clean_after_apply_and_out_of_vocab_ignored() {
        let p = Penalties {
            repeat: 2.0,
            frequency: 0.5,
            presence: 0.25,
            last_n: -1,
        };
        let mut logits = [1.0f32, -1.0, 4.0];
        let mut counts = [0u32; 3];
        p.apply(&mut logits, &[2, 2, 0, 7, 2], &mut counts);
        assert_eq!(counts, [0, 0, 0]);
        // token 0: once, positive: 1/2 - 0.5 - 0.25 = -0.25
        // token 1: unseen
        // token 2: three times, positive: 4/2 - 1.5 - 0.25 = 0.25
        assert_eq!(logits, [-0.25, -1.0, 0.25]);
    }
}
