//! The fuzz harnesses of fuzz/ (cargo-fuzz, nightly) as plain, fast, deterministic tests:
//! a few thousand pseudo-random mutations of real GGUF files through the GGUF parser and the
//! decoders, and random bytes/types/shapes through every decoder. Errors are expected; a
//! panic fails the test.

use bitnet_gguf::{GgufFile, GgufHeader};
use bitnet_quants::*;

/// splitmix64 stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One random edit: bit flip, byte set, a u32/u64 field overwritten with an extreme value,
/// truncation, insertion or deletion.
fn mutate(buf: &mut Vec<u8>, r: &mut Rng) {
    if buf.is_empty() {
        buf.push(r.next() as u8);
        return;
    }
    let at = r.below(buf.len());
    match r.below(7) {
        0 => buf[at] ^= 1 << r.below(8),
        1 => buf[at] = r.next() as u8,
        2 => {
            let v: u64 = [0, 1, u64::MAX, u32::MAX as u64, 1 << 40, 36, 35, 34, 30][r.below(9)];
            let w = if r.below(2) == 0 { 4 } else { 8 };
            for (k, b) in v.to_le_bytes()[..w].iter().enumerate() {
                if let Some(x) = buf.get_mut(at + k) {
                    *x = *b;
                }
            }
        }
        3 => buf.truncate(at),
        4 => buf.insert(at, r.next() as u8),
        5 => {
            buf.remove(at);
        }
        _ => {
            let len = r.below(16).min(buf.len() - at);
            buf[at..at + len].fill(0xFF);
        }
    }
}

/// What fuzz/fuzz_targets/gguf_header.rs does.
fn gguf_harness(data: &[u8]) {
    let _ = GgufHeader::parse(data, data.len() as u64);
    if let Ok(f) = GgufFile::from_bytes(data.to_vec()) {
        for info in f.tensors() {
            let bytes = f.tensor_data(info);
            let n = info.n_elements() as usize;
            let _ = dequantize(info.ggml_type, bytes, n);
            if info.dims.len() == 2 {
                let (cols, rows) = (info.dims[0] as usize, info.dims[1] as usize);
                let _ = ternary_from_ggml(info.ggml_type, bytes, rows, cols);
            }
        }
    }
}

/// What fuzz/fuzz_targets/quants_decode.rs does.
fn quants_harness(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let ty = GgmlType::from_id(data[0] as u32 % 40).unwrap_or(GgmlType::I2S);
    let rows = data[1] as usize % 9;
    let cols = (data[2] as usize % 5) * 128;
    let body = &data[4..];
    let _ = dequantize(ty, body, rows * cols);
    let _ = dequantize(ty, body, data[3] as usize * 32);
    match ternary_from_ggml(ty, body, rows, cols) {
        Ok(t) => {
            if let Ok(b) = encode_ternary(ty, &t) {
                let again = ternary_from_ggml(ty, &b, rows, cols);
                assert_eq!(again.map(|a| a.trits).ok(), Some(t.trits));
            }
        }
        Err(e) => {
            let _ = e.with_tensor("t").to_string();
        }
    }
    if rows.is_multiple_of(4) && cols > 0 {
        let _ = ternary_from_hf_packed(body, rows, cols, 1.0);
    }
}

#[test]
fn mutated_gguf_fixture_never_panics() {
    // gguf-py-ref.gguf (40 KB, committed): F32/F16/BF16/Q8_0/Q6_K/TQ1_0/TQ2_0 tensors.
    let orig = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/gguf-py-ref.gguf"
    ))
    .unwrap();
    gguf_harness(&orig);
    let mut r = Rng(1);
    let mut parsed = 0;
    for _ in 0..3000 {
        let mut buf = orig.clone();
        // Most edits land in the header (first ~1.7 KB), where the parser works.
        let header = 1800.min(buf.len());
        for _ in 0..1 + r.below(4) {
            if r.below(4) == 0 {
                mutate(&mut buf, &mut r);
            } else {
                let mut h = buf[..header.min(buf.len())].to_vec();
                mutate(&mut h, &mut r);
                let tail = buf.get(header..).unwrap_or(&[]).to_vec();
                buf = [h, tail].concat();
            }
        }
        parsed += GgufFile::from_bytes(buf.clone()).is_ok() as u32;
        gguf_harness(&buf);
    }
    // Some mutations must still parse (e.g. flips inside tensor data), or the test is vacuous.
    assert!(parsed > 100, "only {parsed} mutated files parsed");
}

#[test]
fn mutated_bitnetcpp_header_never_panics() {
    let Some(dir) = bitnet_testdata::shared_dir() else {
        return;
    };
    let path = dir.join("data/bitnetcpp/tiny/model-i2_s.gguf");
    let file = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // The header (metadata with a 1000-token vocabulary and merges, tensor infos) is the
    // first 31744 bytes; parse mutated headers against the real file length.
    let orig = file[..31744].to_vec();
    GgufHeader::parse(&orig, file.len() as u64).unwrap();
    let mut r = Rng(2);
    for _ in 0..2000 {
        let mut h = orig.clone();
        for _ in 0..1 + r.below(3) {
            mutate(&mut h, &mut r);
        }
        let _ = GgufHeader::parse(&h, file.len() as u64);
        let _ = GgufHeader::parse(&h, h.len() as u64);
    }
}

#[test]
fn random_bytes_through_every_decoder() {
    let mut r = Rng(3);
    let mut decoded = 0;
    for i in 0..4000 {
        let len = 4 + r.below(3000);
        let mut data: Vec<u8> = (0..len).map(|_| r.next() as u8).collect();
        // Steer a share of the cases to exactly the right size, so decoders run to the end.
        if i % 2 == 0 {
            let ty = GgmlType::from_id(data[0] as u32 % 40).unwrap_or(GgmlType::I2S);
            let (rows, cols) = (data[1] as usize % 9, (data[2] as usize % 5) * 128);
            if let Ok(size) = ty.data_size(&[cols as u64, rows as u64]) {
                data.resize(4 + size as usize, 0x55);
                if i % 4 == 0 {
                    make_valid_ternary(ty, &mut data[4..]);
                }
            }
        }
        quants_harness(&data);
        let ty = GgmlType::from_id(data[0] as u32 % 40).unwrap_or(GgmlType::I2S);
        let (rows, cols) = (data[1] as usize % 9, (data[2] as usize % 5) * 128);
        decoded +=
            (rows * cols > 0 && ternary_from_ggml(ty, &data[4..], rows, cols).is_ok()) as u32;
    }
    assert!(decoded > 100, "only {decoded} ternary decodes succeeded");
}

/// Random codes made valid: 2-bit code 3 → 2, and (TQ) every block's d set to 1.0.
fn make_valid_ternary(ty: GgmlType, body: &mut [u8]) {
    let fix = |b: &mut u8| {
        for s in [0, 2, 4, 6] {
            if (*b >> s) & 3 == 3 {
                *b &= !(1 << s);
            }
        }
    };
    match ty {
        GgmlType::I2S => body.iter_mut().for_each(fix),
        GgmlType::Tq2_0 => body.chunks_mut(66).for_each(|b| {
            b[..64].iter_mut().for_each(fix);
            b[64..].copy_from_slice(&[0x00, 0x3C]);
        }),
        GgmlType::Tq1_0 => body
            .chunks_mut(54)
            .for_each(|b| b[52..].copy_from_slice(&[0x00, 0x3C])),
        _ => {}
    }
}
