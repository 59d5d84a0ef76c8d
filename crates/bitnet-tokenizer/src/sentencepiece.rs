//! Loader for SentencePiece `tokenizer.model` files (protobuf `ModelProto`), BPE model type,
//! e.g. the Llama 2 / llama2.c tokenizers. Encoding runs on the shared SentencePiece engine.
//!
//! Supported normalizer features: `add_dummy_prefix`, `remove_extra_whitespaces`; spaces are
//! always escaped as `▁`; the precompiled Unicode normalization map is not applied (text is
//! used as given, which is exact for the `identity` rule and for already-NFKC text).

use std::path::Path;

use crate::core::{CoreTokenizer, Engine};
use crate::error::{Result, TokenizerError};
use crate::special::attr;
use crate::spm::{parse_byte_token, SpmModel};
use crate::SpecialTokens;

/// One protobuf field: number and value.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
    Fixed64,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            v |= ((b & 0x7F) as u64) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    /// Next field, `Ok(None)` at the end, `Err` on malformed input.
    fn next(&mut self) -> std::result::Result<Option<(u64, Field<'a>)>, String> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint().ok_or("truncated field key")?;
        let (num, wire) = (key >> 3, key & 7);
        let f = match wire {
            0 => Field::Varint(self.varint().ok_or("truncated varint")?),
            1 => {
                self.take(8)?;
                Field::Fixed64
            }
            2 => {
                let len = self.varint().ok_or("truncated length")? as usize;
                Field::Bytes(self.take(len)?)
            }
            5 => {
                let b = self.take(4)?;
                Field::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            w => return Err(format!("unsupported protobuf wire type {w} (field {num})")),
        };
        Ok(Some((num, f)))
    }

    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or("field runs past the end of the file")?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
}

/// Whether `head` looks like a serialized SentencePiece model (first field: a piece).
pub fn looks_like_sentencepiece(head: &[u8]) -> bool {
    head.first() == Some(&0x0A)
}

/// A parsed SentencePiece model: pieces, scores, types and the options we honour.
#[derive(Debug, Clone)]
pub struct SpModelProto {
    /// Piece spellings (`▁` for spaces, `<0xXX>` for byte pieces).
    pub pieces: Vec<String>,
    /// Scores.
    pub scores: Vec<f32>,
    /// Types (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte).
    pub types: Vec<i64>,
    /// TrainerSpec.model_type (1 unigram, 2 BPE, 3 word, 4 char).
    pub model_type: u64,
    /// Special ids (negative = none).
    pub unk_id: i64,
    pub bos_id: i64,
    pub eos_id: i64,
    pub pad_id: i64,
    /// NormalizerSpec options.
    pub add_dummy_prefix: bool,
    pub remove_extra_whitespaces: bool,
    pub escape_whitespaces: bool,
}

/// Parse a `ModelProto`.
pub fn parse(path: &Path, data: &[u8]) -> Result<SpModelProto> {
    let bad = |m: String| TokenizerError::format(path, format!("SentencePiece model: {m}"));
    let mut m = SpModelProto {
        pieces: vec![],
        scores: vec![],
        types: vec![],
        model_type: 1,
        unk_id: 0,
        bos_id: 1,
        eos_id: 2,
        pad_id: -1,
        add_dummy_prefix: true,
        remove_extra_whitespaces: true,
        escape_whitespaces: true,
    };
    let mut r = Reader { buf: data, pos: 0 };
    while let Some((num, f)) = r.next().map_err(bad)? {
        match (num, f) {
            (1, Field::Bytes(b)) => {
                let mut pr = Reader { buf: b, pos: 0 };
                let (mut piece, mut score, mut ty) = (None, 0.0f32, 1i64);
                while let Some((n, f)) = pr.next().map_err(bad)? {
                    match (n, f) {
                        (1, Field::Bytes(s)) => {
                            piece = Some(
                                std::str::from_utf8(s)
                                    .map_err(|_| bad("a piece is not UTF-8".into()))?
                                    .to_string(),
                            )
                        }
                        (2, Field::Fixed32(x)) => score = f32::from_bits(x),
                        (3, Field::Varint(x)) => ty = x as i64,
                        _ => {}
                    }
                }
                let idx = m.pieces.len();
                m.pieces
                    .push(piece.ok_or_else(|| bad(format!("piece {idx} has no text")))?);
                m.scores.push(score);
                m.types.push(ty);
            }
            (2, Field::Bytes(b)) => {
                let mut tr = Reader { buf: b, pos: 0 };
                while let Some((n, f)) = tr.next().map_err(bad)? {
                    if let Field::Varint(x) = f {
                        // int32 fields are sign-extended varints.
                        let v = x as i64 as i32 as i64;
                        match n {
                            3 => m.model_type = x,
                            40 => m.unk_id = v,
                            41 => m.bos_id = v,
                            42 => m.eos_id = v,
                            43 => m.pad_id = v,
                            _ => {}
                        }
                    }
                }
            }
            (3, Field::Bytes(b)) => {
                let mut nr = Reader { buf: b, pos: 0 };
                while let Some((n, f)) = nr.next().map_err(bad)? {
                    if let Field::Varint(x) = f {
                        match n {
                            3 => m.add_dummy_prefix = x != 0,
                            4 => m.remove_extra_whitespaces = x != 0,
                            5 => m.escape_whitespaces = x != 0,
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if m.pieces.is_empty() {
        return Err(bad("no pieces".into()));
    }
    Ok(m)
}

/// Load a SentencePiece `tokenizer.model`.
pub fn load(path: &Path) -> Result<CoreTokenizer> {
    let data = std::fs::read(path).map_err(|error| TokenizerError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let m = parse(path, &data)?;
    from_proto(path, m)
}

/// Build the tokenizer from a parsed model.
pub fn from_proto(path: &Path, m: SpModelProto) -> Result<CoreTokenizer> {
    if m.model_type != 2 {
        return Err(TokenizerError::Unsupported {
            path: path.to_path_buf(),
            msg: format!(
                "SentencePiece model type {} is not supported (only BPE = 2)",
                m.model_type
            ),
        });
    }
    let n = m.pieces.len();
    let attrs: Vec<u32> = m.types.iter().map(|&t| attr::from_gguf_type(t)).collect();
    let id = |v: i64| (v >= 0 && (v as usize) < n).then_some(v as u32);
    let pieces: Vec<Vec<u8>> = m
        .pieces
        .iter()
        .zip(&attrs)
        .map(|(p, &a)| {
            if a & attr::BYTE != 0 {
                if let Some(b) = parse_byte_token(p) {
                    return vec![b];
                }
            }
            p.replace('▁', " ").into_bytes()
        })
        .collect();
    let unk = id(m.unk_id);
    // SentencePiece merges only into normal, user-defined and unused pieces.
    let mut spm = SpmModel::new(
        &m.pieces,
        m.scores.clone(),
        |i| attrs[i] & (attr::NORMAL | attr::USER_DEFINED | attr::UNUSED) != 0,
        |i| attrs[i] & attr::BYTE != 0,
        unk,
    );
    spm.add_space_prefix = m.add_dummy_prefix;
    spm.remove_extra_whitespaces = m.remove_extra_whitespaces;
    let mut special = SpecialTokens {
        bos: id(m.bos_id),
        eos: id(m.eos_id),
        eot: None,
        pad: id(m.pad_id),
        unk,
        eog: vec![],
        add_bos: true,
        add_eos: false,
    };
    special.finish_eog(&[]);
    Ok(CoreTokenizer::new(
        m.pieces,
        attrs,
        pieces,
        Engine::Spm(Box::new(spm)),
        special,
        format!("SentencePiece BPE model, {n} pieces"),
    ))
}
