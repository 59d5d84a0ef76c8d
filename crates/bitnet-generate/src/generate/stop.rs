//! Stop-string detection over streamed text, holding back only what could still become a
//! stop string.

/// Result of feeding text to a [`StopMatcher`].
#[derive(Debug, PartialEq, Eq)]
pub struct Scan {
    /// Text that is now safe to emit (cannot be part of a stop string).
    pub emit: String,
    /// Index (into the stop list) of the stop string found, if any. When set, `emit` is the
    /// text up to the stop string and everything after it is dropped.
    pub stopped: Option<usize>,
}

/// Finds the earliest occurrence of any stop string in a stream of text chunks.
///
/// Invariant: `held` is the longest suffix of the not-yet-emitted text that is a proper
/// prefix of some stop string, so emitted text can never contain the start of a stop string
/// that completes later.
#[derive(Debug, Clone)]
pub struct StopMatcher {
    stops: Vec<String>,
    held: String,
}

impl StopMatcher {
    /// A matcher for `stops` (each non-empty; the caller validates).
    pub fn new(stops: &[String]) -> Self {
        Self {
            stops: stops.to_vec(),
            held: String::new(),
        }
    }

    /// Feeds a chunk of decoded text.
    pub fn push(&mut self, text: &str) -> Scan {
        self.held.push_str(text);
        if self.stops.is_empty() {
            return Scan {
                emit: std::mem::take(&mut self.held),
                stopped: None,
            };
        }
        // Earliest occurrence of any stop string (ties: the first in the list).
        let found = self
            .stops
            .iter()
            .enumerate()
            .filter_map(|(i, s)| self.held.find(s.as_str()).map(|at| (at, i)))
            .min();
        if let Some((at, index)) = found {
            let emit = self.held[..at].to_string();
            self.held.clear();
            return Scan {
                emit,
                stopped: Some(index),
            };
        }
        // Hold back the longest suffix that could still grow into a stop string.
        let keep_from = self
            .held
            .char_indices()
            .map(|(i, _)| i)
            .find(|&i| {
                let tail = &self.held[i..];
                self.stops.iter().any(|s| s.starts_with(tail))
            })
            .unwrap_or(self.held.len());
        let emit = self.held[..keep_from].to_string();
        self.held.drain(..keep_from);
        Scan {
            emit,
            stopped: None,
        }
    }

    /// End of stream without a stop: returns the held-back text.
    pub fn flush(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(stops: &[&str], chunks: &[&str]) -> (Vec<String>, Option<usize>, String) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut m = StopMatcher::new(&stops);
        let mut out = Vec::new();
        for c in chunks {
            let scan = m.push(c);
            out.push(scan.emit);
            if scan.stopped.is_some() {
                return (out, scan.stopped, String::new());
            }
        }
        let rest = m.flush();
        (out, None, rest)
    }

    #[test]
    fn stop_spanning_chunks_emits_text_before_it_only() {
        let (out, stopped, _) = feed(&["o wo"], &["Hel", "lo ", "wor", "ld"]);
        assert_eq!(out, ["Hel", "l", ""]);
        assert_eq!(stopped, Some(0));
    }

    #[test]
    fn false_start_is_released() {
        // The trailing "l" of "Hel" and then "lo" could start "lo!"; " world" breaks it.
        let (out, stopped, rest) = feed(&["lo!"], &["Hel", "lo", " world"]);
        assert_eq!(out, ["He", "l", "lo world"]);
        assert_eq!((stopped, rest.as_str()), (None, ""));
        // Held text still pending at the end is flushed.
        let (out, stopped, rest) = feed(&["lo!"], &["Hel", "lo"]);
        assert_eq!(out, ["He", "l"]);
        assert_eq!((stopped, rest.as_str()), (None, "lo"));
    }

    #[test]
    fn overlapping_prefixes() {
        // "aab" inside "aaab": after "aaa" one 'a' is safe, "aa" must be held.
        let (out, stopped, _) = feed(&["aab"], &["a", "a", "a", "b"]);
        assert_eq!(out, ["", "", "a", ""]);
        assert_eq!(stopped, Some(0));
    }

    #[test]
    fn earliest_stop_wins_and_multibyte_boundaries() {
        let (out, stopped, _) = feed(&["world", "é!"], &["café! world"]);
        assert_eq!(out, ["caf"]);
        assert_eq!(stopped, Some(1));
        // "é" held (could start "é!"), released when "x" follows.
        let (out, stopped, rest) = feed(&["é!"], &["café", "x"]);
        assert_eq!(out, ["caf", "éx"]);
        assert_eq!((stopped, rest.as_str()), (None, ""));
    }

    #[test]
    fn stop_at_very_start() {
        let (out, stopped, _) = feed(&["\n\n"], &["\n", "\nmore"]);
        assert_eq!(out, ["", ""]);
        assert_eq!(stopped, Some(0));
    }
}
