//! Token attributes and the split of text around special-token spell-outs (llama.cpp's
//! `tokenizer_st_partition`).

/// Token attribute bits (llama.cpp's `llama_token_attr`).
pub mod attr {
    /// An ordinary token.
    pub const NORMAL: u32 = 1 << 1;
    /// The unknown token.
    pub const UNKNOWN: u32 = 1 << 0;
    /// A control token (BOS, EOS, chat markers): not text.
    pub const CONTROL: u32 = 1 << 3;
    /// A user-defined token: matched in text before BPE, even in raw user text.
    pub const USER_DEFINED: u32 = 1 << 2;
    /// An unused token.
    pub const UNUSED: u32 = 1 << 4;
    /// A byte-fallback token `<0xXX>`.
    pub const BYTE: u32 = 1 << 5;
    /// Whitespace left of this token is swallowed when it is matched.
    pub const LSTRIP: u32 = 1 << 7;
    /// Whitespace right of this token is swallowed when it is matched.
    pub const RSTRIP: u32 = 1 << 8;

    /// Attribute bits for a GGUF `tokenizer.ggml.token_type` value (1 normal, 2 unknown,
    /// 3 control, 4 user-defined, 5 unused, 6 byte; anything else: undefined = 0).
    pub fn from_gguf_type(t: i64) -> u32 {
        match t {
            1 => NORMAL,
            2 => UNKNOWN,
            3 => CONTROL,
            4 => USER_DEFINED,
            5 => UNUSED,
            6 => BYTE,
            _ => 0,
        }
    }
}

/// A piece of the input after special tokens were cut out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fragment {
    /// Raw text, byte range into the input.
    Text(usize, usize),
    /// A special token.
    Token(u32),
}

fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
}

/// Cut `text` at every occurrence of the special tokens `specials` (id, spelling, attrs), in
/// the given order (longest spelling first). Control and unknown tokens are only considered
/// when `parse_special`; user-defined tokens always.
pub fn partition(text: &str, specials: &[(u32, &str, u32)], parse_special: bool) -> Vec<Fragment> {
    let mut frags = Vec::new();
    if text.is_empty() {
        return frags;
    }
    frags.push(Fragment::Text(0, text.len()));
    for &(id, spelling, a) in specials {
        if spelling.is_empty() {
            continue;
        }
        if !parse_special && (a & (attr::CONTROL | attr::UNKNOWN)) != 0 {
            continue;
        }
        if (a & (attr::CONTROL | attr::UNKNOWN | attr::USER_DEFINED)) == 0 {
            continue;
        }
        let mut out = Vec::with_capacity(frags.len());
        for f in frags {
            let Fragment::Text(mut start, end) = f else {
                out.push(f);
                continue;
            };
            while start < end {
                let Some(rel) = text[start..end].find(spelling) else {
                    break;
                };
                let m = start + rel;
                let mut left_end = m;
                if a & attr::LSTRIP != 0 {
                    while left_end > start && is_c_space(text.as_bytes()[left_end - 1]) {
                        left_end -= 1;
                    }
                }
                if left_end > start {
                    out.push(Fragment::Text(start, left_end));
                }
                out.push(Fragment::Token(id));
                start = m + spelling.len();
                if a & attr::RSTRIP != 0 {
                    while start < end && is_c_space(text.as_bytes()[start]) {
                        start += 1;
                    }
                }
            }
            if start < end {
                out.push(Fragment::Text(start, end));
            }
        }
        frags = out;
    }
    frags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_only_when_parsing() {
        let sp = [
            (9, "<|eot_id|>", attr::CONTROL),
            (5, "<u>", attr::USER_DEFINED),
        ];
        let t = "a<|eot_id|>b<u>c";
        assert_eq!(
            partition(t, &sp, true),
            vec![
                Fragment::Text(0, 1),
                Fragment::Token(9),
                Fragment::Text(11, 12),
                Fragment::Token(5),
                Fragment::Text(15, 16)
            ]
        );
        assert_eq!(
            partition(t, &sp, false),
            vec![
                Fragment::Text(0, 12),
                Fragment::Token(5),
                Fragment::Text(15, 16)
            ]
        );
    }

    #[test]
    fn rstrip_swallows_spaces() {
        let sp = [(3, "<x>", attr::CONTROL | attr::RSTRIP)];
        assert_eq!(
            partition("<x>  hi", &sp, true),
            vec![Fragment::Token(3), Fragment::Text(5, 7)]
        );
    }
}
