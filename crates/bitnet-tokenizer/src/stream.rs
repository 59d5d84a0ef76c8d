//! Incremental, UTF-8-safe detokenization for streaming output.

use crate::Tokenizer;

/// Turns a stream of token ids into text pieces. Bytes of a multi-byte character split across
/// tokens are held back until the character is complete; bytes that can never become valid
/// UTF-8 are emitted as U+FFFD.
#[derive(Debug, Default, Clone)]
pub struct StreamDecoder {
    /// Bytes not yet emitted (an incomplete UTF-8 sequence at the end).
    pending: Vec<u8>,
    /// Strip one leading space from the very first emitted byte (SentencePiece dummy prefix).
    strip_leading_space: bool,
    /// Whether anything has been seen yet.
    started: bool,
    render_special: bool,
}

impl StreamDecoder {
    /// A decoder. `strip_leading_space`: drop a leading space of the first piece (use
    /// `tok.strips_leading_space()` when decoding from the start of a text, false when
    /// continuing after a prompt). `render_special`: show control tokens as their text.
    pub fn new(strip_leading_space: bool, render_special: bool) -> StreamDecoder {
        StreamDecoder {
            pending: Vec::new(),
            strip_leading_space,
            started: false,
            render_special,
        }
    }

    /// Feed one token; returns the text that became complete (possibly empty).
    pub fn push(&mut self, tok: &dyn Tokenizer, id: u32) -> String {
        let piece = tok.token_to_piece(id, self.render_special);
        self.push_bytes(&piece)
    }

    /// Feed raw bytes; returns the text that became complete.
    pub fn push_bytes(&mut self, mut piece: &[u8]) -> String {
        if !self.started && !piece.is_empty() {
            self.started = true;
            if self.strip_leading_space && piece[0] == b' ' {
                piece = &piece[1..];
            }
        }
        self.pending.extend_from_slice(piece);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    break;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // SAFETY-free: the prefix up to `valid` is valid UTF-8 by definition.
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // Incomplete sequence at the end: keep it for the next token.
                        None => {
                            self.pending.drain(..valid);
                            break;
                        }
                        // Invalid bytes: replace them and go on.
                        Some(n) => {
                            out.push('\u{FFFD}');
                            self.pending.drain(..valid + n);
                        }
                    }
                }
            }
        }
        out
    }

    /// Flush what is held back (an incomplete character becomes U+FFFD).
    pub fn finish(&mut self) -> String {
        let s = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        s
    }

    /// Whether bytes are held back.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_back_split_character() {
        let mut d = StreamDecoder::new(false, false);
        // "é" = C3 A9, "🦙" = F0 9F A6 99.
        assert_eq!(d.push_bytes(b"a\xC3"), "a");
        assert!(d.has_pending());
        assert_eq!(d.push_bytes(b"\xA9\xF0\x9F"), "é");
        assert_eq!(d.push_bytes(b"\xA6"), "");
        assert_eq!(d.push_bytes(b"\x99!"), "🦙!");
        assert!(!d.has_pending());
        // Invalid byte is replaced, not held.
        assert_eq!(d.push_bytes(b"\xFFx"), "\u{FFFD}x");
        assert_eq!(d.push_bytes(b"\xE2\x82"), "");
        assert_eq!(d.finish(), "\u{FFFD}");
    }

    #[test]
    fn strips_first_space_only() {
        let mut d = StreamDecoder::new(true, false);
        assert_eq!(d.push_bytes(b" Hello"), "Hello");
        assert_eq!(d.push_bytes(b" world"), " world");
    }
}
