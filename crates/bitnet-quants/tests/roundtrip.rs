//! encode → decode round trips for every ternary format, on pseudo-random trits.

use bitnet_quants::*;

/// splitmix64: a fixed pseudo-random sequence.
fn trits(n: usize, seed: u64) -> Vec<i8> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) % 3) as i8 - 1
        })
        .collect()
}

fn sample(rows: usize, cols: usize, seed: u64) -> Ternary {
    Ternary {
        rows,
        cols,
        trits: trits(rows * cols, seed),
        scale: 0.0341,
    }
}

#[test]
fn i2s_round_trip() {
    for (rows, cols) in [(1, 128), (3, 256), (8, 384), (5, 640)] {
        let t = sample(rows, cols, rows as u64);
        let bytes = encode_i2s(&t).unwrap();
        assert_eq!(bytes.len(), rows * cols / 4 + 32);
        assert_eq!(
            ternary_from_ggml(GgmlType::I2S, &bytes, rows, cols).unwrap(),
            t
        );
        assert_eq!(
            dequantize(GgmlType::I2S, &bytes, rows * cols).unwrap(),
            t.to_f32()
        );
    }
}

#[test]
fn tq_round_trips() {
    for (rows, cols) in [(1, 256), (3, 512), (4, 1024)] {
        let t = sample(rows, cols, 7 + rows as u64);
        // TQ stores fp16 scales: the decoded scale is fp16(scale).
        let mut want = t.clone();
        want.scale = f16_bits_to_f32(f32_to_f16_bits(t.scale));
        for ty in [GgmlType::Tq1_0, GgmlType::Tq2_0] {
            let bytes = encode_ternary(ty, &t).unwrap();
            assert_eq!(
                bytes.len() as u64,
                ty.data_size(&[cols as u64, rows as u64]).unwrap()
            );
            assert_eq!(
                ternary_from_ggml(ty, &bytes, rows, cols).unwrap(),
                want,
                "{ty}"
            );
            assert_eq!(
                dequantize(ty, &bytes, rows * cols).unwrap(),
                want.to_f32(),
                "{ty}"
            );
        }
    }
}

#[test]
fn tq1_every_byte_pattern_of_five_trits() {
    // All 243 combinations of five trits appear in position 0..4 of qs groups.
    let mut t = Ternary {
        rows: 243,
        cols: 256,
        trits: vec![0; 243 * 256],
        scale: 1.0,
    };
    for v in 0..243usize {
        for k in 0..5 {
            let digit = (v / 3usize.pow(4 - k as u32)) % 3;
            for base in [0usize, 160, 240] {
                if base == 240 && k == 4 {
                    continue;
                }
                let stride = match base {
                    0 => 32,
                    160 => 16,
                    _ => 4,
                };
                t.trits[v * 256 + base + stride * k] = digit as i8 - 1;
            }
        }
    }
    let bytes = encode_tq1_0(&t).unwrap();
    assert_eq!(
        ternary_from_ggml(GgmlType::Tq1_0, &bytes, 243, 256).unwrap(),
        t
    );
}

#[test]
fn hf_round_trip() {
    for (rows, cols) in [(4, 1), (8, 3), (128, 64), (20, 7)] {
        let t = sample(rows, cols, 99 + cols as u64);
        let p = pack_hf(&t).unwrap();
        assert_eq!(p.len(), rows / 4 * cols);
        assert_eq!(ternary_from_hf_packed(&p, rows, cols, t.scale).unwrap(), t);
    }
}

#[test]
fn absmean_of_dequantized_ternary_gives_back_the_trits() {
    let t = sample(16, 256, 5);
    let back = ternarize_absmean(&t.to_f32(), 16, 256).unwrap();
    assert_eq!(back.trits, t.trits);
}
