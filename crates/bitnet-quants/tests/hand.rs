//! Hand-computed blocks: expected bytes/values derived by hand from the layouts in
//! shared/data/bitnetcpp/tiny/MANIFEST.md and llama.cpp's ggml-quants.c, not from this crate.

use bitnet_quants::*;

fn f32s(xs: &[f32]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn i2s_one_block() {
    // Elements 0, 32, 64, 96 = +1, -1, 0, +1 → byte 0 = 0b10_00_01_10 = 0x86; all others 0 → 0x55.
    let mut data = vec![0x55u8; 32];
    data[0] = 0x86;
    // Element 31 (byte 31, bits 7:6) = -1 and element 127 (byte 31, bits 1:0) = +1 → 0b00_01_01_10.
    data[31] = 0x16;
    data.extend_from_slice(&0.5f32.to_le_bytes());
    data.extend_from_slice(&[0u8; 28]);
    let t = ternary_from_ggml(GgmlType::I2S, &data, 1, 128).unwrap();
    let mut want = vec![0i8; 128];
    want[0] = 1;
    want[32] = -1;
    want[96] = 1;
    want[31] = -1;
    want[127] = 1;
    assert_eq!(t.trits, want);
    assert_eq!(t.scale, 0.5);
    let f = dequantize(GgmlType::I2S, &data, 128).unwrap();
    assert_eq!(
        (f[0], f[32], f[64], f[31], f[127]),
        (0.5, -0.5, 0.0, -0.5, 0.5)
    );
    assert_eq!(encode_i2s(&t).unwrap(), data);
}

#[test]
fn i2s_code_3_is_refused() {
    let mut data = vec![0x55u8; 32 + 32];
    data[5] = 0x57; // bits 1:0 = 3 → element 96 + 5
    let e = ternary_from_ggml(GgmlType::I2S, &data, 1, 128).unwrap_err();
    assert!(
        e.to_string().contains("code 3") && e.to_string().contains("101"),
        "{e}"
    );
    assert!(dequantize(GgmlType::I2S, &data, 128).is_err());
}

#[test]
fn tq2_0_one_block() {
    // elem 0 = +1, 32 = -1 → qs[0] = 2 | 0<<2 | 1<<4 | 1<<6 = 0x52
    // elem 128 = -1 → qs[32] = 0 | 1<<2 | 1<<4 | 1<<6 = 0x54
    // elem 255 = +1 → qs[63] = 1 | 1<<2 | 1<<4 | 2<<6 = 0x95
    let mut data = vec![0x55u8; 64];
    data[0] = 0x52;
    data[32] = 0x54;
    data[63] = 0x95;
    data.extend_from_slice(&0x3C00u16.to_le_bytes()); // d = 1.0
    let t = ternary_from_ggml(GgmlType::Tq2_0, &data, 1, 256).unwrap();
    let mut want = vec![0i8; 256];
    want[0] = 1;
    want[32] = -1;
    want[128] = -1;
    want[255] = 1;
    assert_eq!(t.trits, want);
    assert_eq!(t.scale, 1.0);
    assert_eq!(encode_tq2_0(&t).unwrap(), data);
}

#[test]
fn tq1_0_one_block() {
    // All-zero trits (codes 1): 5 digits → 121 → ceil(121·256/243) = 128; qh 4 digits + 0 → 120 → 127.
    // elem 0 = +1: 2·81+27+9+3+1 = 202 → ceil(202·256/243) = 213.
    // elem 240 = -1: (0,1,1,1,0) → 39 → ceil(39·256/243) = 42.
    let mut data = vec![128u8; 48];
    data.extend_from_slice(&[127u8; 4]);
    data[0] = 213;
    data[48] = 42;
    data.extend_from_slice(&0x3800u16.to_le_bytes()); // d = 0.5
    let t = ternary_from_ggml(GgmlType::Tq1_0, &data, 1, 256).unwrap();
    let mut want = vec![0i8; 256];
    want[0] = 1;
    want[240] = -1;
    assert_eq!(t.trits, want);
    assert_eq!(t.scale, 0.5);
    assert_eq!(encode_tq1_0(&t).unwrap(), data);
    let f = dequantize(GgmlType::Tq1_0, &data, 256).unwrap();
    assert_eq!((f[0], f[1], f[240]), (0.5, 0.0, -0.5));
}

#[test]
fn tq_inconsistent_scales_are_refused_but_zero_blocks_may_differ() {
    let mut block = vec![0x55u8; 64];
    block[0] = 0x56; // elem 0 = +1
    let mut a = block.clone();
    a.extend_from_slice(&0x3C00u16.to_le_bytes());
    let mut zero = vec![0x55u8; 64];
    zero.extend_from_slice(&0u16.to_le_bytes());
    let mut b = block.clone();
    b.extend_from_slice(&0x3800u16.to_le_bytes());
    // blocks: a (d=1), zero (d=0), a (d=1) → fine
    let ok = [a.clone(), zero.clone(), a.clone()].concat();
    let t = ternary_from_ggml(GgmlType::Tq2_0, &ok, 3, 256).unwrap();
    assert_eq!(t.scale, 1.0);
    // a (d=1), b (d=0.5) → error naming both blocks
    let bad = [a.clone(), b].concat();
    let e = ternary_from_ggml(GgmlType::Tq2_0, &bad, 2, 256)
        .unwrap_err()
        .with_tensor("blk.0.attn_q.weight");
    let msg = e.to_string();
    assert!(
        msg.contains("blk.0.attn_q.weight") && msg.contains("block 1"),
        "{msg}"
    );
    // dequantize accepts per-block d
    let f = dequantize(GgmlType::Tq2_0, &bad, 512).unwrap();
    assert_eq!((f[0], f[256]), (1.0, 0.5));
}

#[test]
fn q8_0_one_block() {
    let mut data = 0x3800u16.to_le_bytes().to_vec(); // d = 0.5
    let qs: Vec<i8> = (0..32).map(|i| (i as i8 - 16) * 8).collect(); // -128 .. 120
    data.extend(qs.iter().map(|&q| q as u8));
    let f = dequantize(GgmlType::Q8_0, &data, 32).unwrap();
    let want: Vec<f32> = qs.iter().map(|&q| q as f32 * 0.5).collect();
    assert_eq!(f, want);
    assert_eq!(f[0], -64.0);
}

#[test]
fn q6_k_one_block() {
    // ql[0] = 0x21, qh[0] = 0b11_10_01_00, ql[32] = 0x43, everything else 0; scales[i] = i + 1
    // (scales 8..15 negative); d = 2.0.
    let mut b = vec![0u8; 210];
    b[0] = 0x21;
    b[32] = 0x43;
    b[128] = 0b1110_0100;
    for i in 0..16 {
        b[192 + i] = if i < 8 {
            i as u8 + 1
        } else {
            (-(i as i8)) as u8
        };
    }
    b[208..210].copy_from_slice(&0x4000u16.to_le_bytes());
    let f = dequantize(GgmlType::Q6K, &b, 256).unwrap();
    // y[0]  = d·sc[0]·((0x1 | 0<<4) − 32) = 2·1·(−31)
    // y[32] = d·sc[2]·((0x3 | 1<<4) − 32) = 2·3·(−13)
    // y[64] = d·sc[4]·((0x2 | 2<<4) − 32) = 2·5·2
    // y[96] = d·sc[6]·((0x4 | 3<<4) − 32) = 2·7·20
    assert_eq!((f[0], f[32], f[64], f[96]), (-62.0, -78.0, 20.0, 280.0));
    // y[1] = d·sc[0]·(0 − 32); y[16] uses sc[1]; second half y[128] uses sc[8] = -8.
    assert_eq!((f[1], f[16], f[128]), (-64.0, -128.0, 2.0 * -8.0 * -32.0));
}

#[test]
fn floats() {
    let x = [1.0f32, -2.5, 65504.0, 0.0];
    assert_eq!(dequantize(GgmlType::F32, &f32s(&x), 4).unwrap(), x);
    // f16: 1.0 = 0x3C00, -2.5 = 0xC100, 65504 = 0x7BFF
    let h: Vec<u8> = [0x3C00u16, 0xC100, 0x7BFF, 0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(dequantize(GgmlType::F16, &h, 4).unwrap(), x);
    assert_eq!(f32_to_f16_bytes(&x), h);
    // bf16: 1.0 = 0x3F80, -2.5 = 0xC020; 65504 rounds to 65536 = 0x4780
    let b: Vec<u8> = [0x3F80u16, 0xC020, 0x4780, 0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(f32_to_bf16_bytes(&x), b);
    assert_eq!(
        dequantize(GgmlType::Bf16, &b, 4).unwrap(),
        [1.0, -2.5, 65536.0, 0.0]
    );
    // ties round to even
    assert_eq!(f32_to_bf16_bits(1.0 + 2f32.powi(-8)), 0x3F80);
    assert_eq!(f32_to_bf16_bits(1.0 + 3.0 * 2f32.powi(-8)), 0x3F82);
}

#[test]
fn hf_packed_hand() {
    // out = 8, in = 2 → packed [2, 2]. Row o is in packed row o % 2 at bits 2·(o / 2).
    // Rows: 0:[+1,0] 1:[-1,0] 2:[0,0] 3:[0,+1] 4:[0,0] 5:[+1,+1] 6:[-1,-1] 7:[0,0]
    let trits: Vec<i8> = vec![1, 0, -1, 0, 0, 0, 0, 1, 0, 0, 1, 1, -1, -1, 0, 0];
    // packed[0][0]: rows 0,2,4,6 col 0 → codes 2,1,1,0 → 2 | 1<<2 | 1<<4 | 0<<6 = 0x16
    // packed[0][1]: rows 0,2,4,6 col 1 → 1,1,1,0 → 0x15
    // packed[1][0]: rows 1,3,5,7 col 0 → 0,1,2,1 → 0 | 4 | 32 | 64 = 0x64
    // packed[1][1]: rows 1,3,5,7 col 1 → 1,2,2,1 → 1 | 8 | 32 | 64 = 0x69
    let packed = vec![0x16u8, 0x15, 0x64, 0x69];
    let t = ternary_from_hf_packed(&packed, 8, 2, 0.25).unwrap();
    assert_eq!(t.trits, trits);
    assert_eq!(t.scale, 0.25);
    assert_eq!(pack_hf(&t).unwrap(), packed);
    assert!(ternary_from_hf_packed(&[0xFF, 0, 0, 0], 8, 2, 1.0).is_err());
    assert!(ternary_from_hf_packed(&packed, 6, 2, 1.0).is_err());
    assert!(ternary_from_hf_packed(&packed[..3], 8, 2, 1.0).is_err());
}

#[test]
fn absmean_matches_weightquant() {
    // mean|w| = 0.15 → s = 1/0.15; w·s = 2, -0.667, 0, 1.333 → 1, -1, 0, 1.
    let t = ternarize_absmean(&[0.3, -0.1, 0.0, 0.2], 1, 4).unwrap();
    assert_eq!(t.trits, [1, -1, 0, 1]);
    assert_eq!(t.scale, 1.0 / (1.0f32 / 0.15f32));
    // mean = 2 → s = 0.5: 1·0.5 = 0.5 rounds half to EVEN (0), 3·0.5 = 1.5 → 2 → clamp 1.
    let t = ternarize_absmean(&[1.0, 3.0, -1.0, -3.0], 2, 2).unwrap();
    assert_eq!(t.trits, [0, 1, 0, -1]);
    assert_eq!(t.scale, 2.0);
    // all zero: mean clamps to 1e-5.
    let t = ternarize_absmean(&[0.0; 4], 2, 2).unwrap();
    assert_eq!(t.trits, [0; 4]);
    assert_eq!(t.scale, 1.0 / (1.0f32 / 1e-5f32));
    assert!(ternarize_absmean(&[0.0; 3], 2, 2).is_err());
    assert!(ternarize_absmean(&[f32::NAN; 4], 2, 2).is_err());
}

#[test]
fn errors_name_type_and_sizes() {
    let e = dequantize(GgmlType::Q4K, &[0; 144], 256).unwrap_err();
    assert!(e.to_string().contains("Q4_K"), "{e}");
    let e = ternary_from_ggml(GgmlType::F16, &[0; 4], 1, 2).unwrap_err();
    assert!(e.to_string().contains("F16"), "{e}");
    let e = dequantize(GgmlType::Q8_0, &[0; 33], 32).unwrap_err();
    assert!(
        e.to_string().contains("34") && e.to_string().contains("33"),
        "{e}"
    );
    let e = ternary_from_ggml(GgmlType::Tq2_0, &[0; 66], 1, 128).unwrap_err();
    assert!(e.to_string().contains("256"), "{e}");
    let e = ternary_from_ggml(GgmlType::I2S, &[0; 40], 1, 128).unwrap_err();
    assert!(e.to_string().contains("64"), "{e}");
    assert!(ternary_from_ggml(GgmlType::I2S, &[], usize::MAX, 2).is_err());
    let bad = Ternary {
        rows: 1,
        cols: 128,
        trits: vec![2; 128],
        scale: 1.0,
    };
    assert!(encode_i2s(&bad).is_err());
}

#[test]
fn huge_element_counts_are_errors_not_overflows() {
    for ty in [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::Bf16,
        GgmlType::Q8_0,
        GgmlType::Q6K,
        GgmlType::Tq1_0,
        GgmlType::Tq2_0,
        GgmlType::I2S,
    ] {
        for n in [usize::MAX, usize::MAX / 2 + 1, usize::MAX - 255, 1 << 62] {
            assert!(dequantize(ty, &[0; 64], n).is_err(), "{ty} {n}");
        }
    }
    assert!(ternary_from_hf_packed(&[0; 4], usize::MAX - 3, 2, 1.0).is_err());
}
