//! GPT-2's reversible byte ↔ printable-character mapping used by byte-level BPE vocabularies
//! (`Ġ` = space, `Ċ` = newline, ...).

use std::sync::OnceLock;

/// `BYTE_TO_CHAR[b]` is the character that stands for byte `b` in a byte-level vocabulary.
fn byte_to_char_table() -> &'static [char; 256] {
    static T: OnceLock<[char; 256]> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = ['\0'; 256];
        let mut n = 0u32;
        for b in 0..256u32 {
            let printable = (0x21..=0x7E).contains(&b)
                || (0xA1..=0xAC).contains(&b)
                || (0xAE..=0xFF).contains(&b);
            t[b as usize] = if printable {
                char::from_u32(b).unwrap_or('\0')
            } else {
                let c = char::from_u32(256 + n).unwrap_or('\0');
                n += 1;
                c
            };
        }
        t
    })
}

/// The character standing for one byte.
pub fn byte_to_char(b: u8) -> char {
    byte_to_char_table()[b as usize]
}

/// `CHAR_TO_BYTE[c]` for c < 324: the byte character `c` stands for, or -1.
fn char_to_byte_table() -> &'static [i16; 324] {
    static T: OnceLock<[i16; 324]> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = [-1i16; 324];
        for b in 0..=255u8 {
            t[byte_to_char(b) as usize] = b as i16;
        }
        t
    })
}

/// The byte a character stands for, if it is one of the 256 mapped characters.
pub fn char_to_byte(c: char) -> Option<u8> {
    let t = char_to_byte_table();
    match t.get(c as usize) {
        Some(&b) if b >= 0 => Some(b as u8),
        _ => None,
    }
}

/// Decode a byte-level token string to its bytes; `None` if a character is not a mapped byte.
pub fn decode(s: &str) -> Option<Vec<u8>> {
    s.chars().map(char_to_byte).collect()
}

/// Encode bytes as a byte-level string.
pub fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| byte_to_char(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_chars() {
        // From GPT-2's bytes_to_unicode: space → Ġ (U+0120), newline → Ċ (U+010A), tab → ĉ (U+0109).
        assert_eq!(byte_to_char(b' '), 'Ġ');
        assert_eq!(byte_to_char(b'\n'), 'Ċ');
        assert_eq!(byte_to_char(b'\t'), 'ĉ');
        assert_eq!(byte_to_char(b'a'), 'a');
        for b in 0..=255u8 {
            assert_eq!(char_to_byte(byte_to_char(b)), Some(b));
        }
        assert_eq!(char_to_byte('€'), None);
    }
}
