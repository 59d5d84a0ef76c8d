//! The real files in shared/data/bitnetcpp/tiny: bitnet.cpp's I2_S GGUF, gguf-py's TQ2_0/TQ1_0
//! GGUFs and the HF bf16 master they were made from. Expected values from its MANIFEST.md.

use bitnet_gguf::{GgmlType, GgufFile};
use bitnet_quants::*;
use bitnet_testdata::shared_dir;

/// MANIFEST.md: (GGUF name, HF name, I2_S scale bits, TQ d fp16 bits).
const MATRICES: [(&str, &str, u32, u16); 14] = [
    (
        "blk.0.ffn_down.weight",
        "model.layers.0.mlp.down_proj.weight",
        0x3cc600d6,
        0x2630,
    ),
    (
        "blk.0.ffn_gate.weight",
        "model.layers.0.mlp.gate_proj.weight",
        0x3d0c8528,
        0x2864,
    ),
    (
        "blk.0.ffn_up.weight",
        "model.layers.0.mlp.up_proj.weight",
        0x3d0c5f56,
        0x2863,
    ),
    (
        "blk.0.attn_k.weight",
        "model.layers.0.self_attn.k_proj.weight",
        0x3d0cf730,
        0x2868,
    ),
    (
        "blk.0.attn_output.weight",
        "model.layers.0.self_attn.o_proj.weight",
        0x3d0ca944,
        0x2865,
    ),
    (
        "blk.0.attn_q.weight",
        "model.layers.0.self_attn.q_proj.weight",
        0x3d0c9faa,
        0x2865,
    ),
    (
        "blk.0.attn_v.weight",
        "model.layers.0.self_attn.v_proj.weight",
        0x3d0c1bd0,
        0x2861,
    ),
    (
        "blk.1.ffn_down.weight",
        "model.layers.1.mlp.down_proj.weight",
        0x3cc5e858,
        0x262f,
    ),
    (
        "blk.1.ffn_gate.weight",
        "model.layers.1.mlp.gate_proj.weight",
        0x3d0c8372,
        0x2864,
    ),
    (
        "blk.1.ffn_up.weight",
        "model.layers.1.mlp.up_proj.weight",
        0x3d0c49f9,
        0x2862,
    ),
    (
        "blk.1.attn_k.weight",
        "model.layers.1.self_attn.k_proj.weight",
        0x3d0c1f78,
        0x2861,
    ),
    (
        "blk.1.attn_output.weight",
        "model.layers.1.self_attn.o_proj.weight",
        0x3d0cab8c,
        0x2865,
    ),
    (
        "blk.1.attn_q.weight",
        "model.layers.1.self_attn.q_proj.weight",
        0x3d0c6182,
        0x2863,
    ),
    (
        "blk.1.attn_v.weight",
        "model.layers.1.self_attn.v_proj.weight",
        0x3d0bee1c,
        0x285f,
    ),
];

struct Files {
    i2s: GgufFile,
    tq2: GgufFile,
    tq1: GgufFile,
    master: Vec<u8>,
}

fn open() -> Option<Files> {
    let d = shared_dir()?.join("data/bitnetcpp/tiny");
    Some(Files {
        i2s: GgufFile::open(d.join("model-i2_s.gguf")).unwrap(),
        tq2: GgufFile::open(d.join("model-tq2_0.gguf")).unwrap(),
        tq1: GgufFile::open(d.join("model-tq1_0.gguf")).unwrap(),
        master: std::fs::read(d.join("model.safetensors")).unwrap(),
    })
}

fn ternary(f: &GgufFile, name: &str, ty: GgmlType) -> (Ternary, Vec<u8>) {
    let (info, bytes) = f.tensor_bytes(name).unwrap();
    assert_eq!(info.ggml_type, ty, "{name}");
    let (cols, rows) = (info.dims[0] as usize, info.dims[1] as usize);
    let t = ternary_from_ggml(ty, bytes, rows, cols)
        .map_err(|e| e.with_tensor(name))
        .unwrap();
    (t, bytes.to_vec())
}

#[test]
fn i2s_tq2_tq1_hold_identical_trits_and_manifest_scales() {
    let Some(fs) = open() else { return };
    for (name, _, i2s_bits, d_bits) in MATRICES {
        let (a, _) = ternary(&fs.i2s, name, GgmlType::I2S);
        let (b, _) = ternary(&fs.tq2, name, GgmlType::Tq2_0);
        let (c, _) = ternary(&fs.tq1, name, GgmlType::Tq1_0);
        assert_eq!(a.scale.to_bits(), i2s_bits, "{name} I2_S scale");
        assert_eq!(b.scale, f16_bits_to_f32(d_bits), "{name} TQ2_0 d");
        assert_eq!(c.scale, f16_bits_to_f32(d_bits), "{name} TQ1_0 d");
        assert_eq!(
            f32_to_f16_bits(a.scale),
            d_bits,
            "{name}: d = fp16(I2_S scale)"
        );
        assert_eq!(a.trits, b.trits, "{name}: I2_S vs TQ2_0 trits");
        assert_eq!(a.trits, c.trits, "{name}: I2_S vs TQ1_0 trits");
        let nz = a.trits.iter().filter(|&&t| t != 0).count() as f64 / a.len() as f64;
        assert!((0.59..0.61).contains(&nz), "{name}: nonzero share {nz}");
    }
}

#[test]
fn encoders_reproduce_the_real_files_bytes() {
    let Some(fs) = open() else { return };
    for (name, ..) in MATRICES {
        let (a, i2s_bytes) = ternary(&fs.i2s, name, GgmlType::I2S);
        // Codes and scale must match bit for bit. The last 28 bytes are NOT always zero in
        // bitnet.cpp's output (llama-quantize leaves them uninitialized: 4 of these 14 tensors
        // carry leftover bytes there), so they are not compared; we write zeros.
        let enc = encode_i2s(&a).unwrap();
        let m = a.len() / 4 + 4;
        assert_eq!(enc.len(), i2s_bytes.len(), "{name}");
        let first = enc[..m]
            .iter()
            .zip(&i2s_bytes[..m])
            .position(|(x, y)| x != y);
        assert!(first.is_none(), "{name}: I2_S bytes differ at {first:?}");
        assert!(enc[m..].iter().all(|&b| b == 0), "{name}");
        // gguf-py quantized the f32 values (code-1)·scale: d = fp16(max|w|) = fp16(scale).
        let (_, tq2_bytes) = ternary(&fs.tq2, name, GgmlType::Tq2_0);
        let (_, tq1_bytes) = ternary(&fs.tq1, name, GgmlType::Tq1_0);
        assert!(
            encode_tq2_0(&a).unwrap() == tq2_bytes,
            "{name}: TQ2_0 bytes"
        );
        assert!(
            encode_tq1_0(&a).unwrap() == tq1_bytes,
            "{name}: TQ1_0 bytes"
        );
        // dequantize agrees with the trit view
        let (info, bytes) = fs.tq1.tensor_bytes(name).unwrap();
        let deq = dequantize(GgmlType::Tq1_0, bytes, info.n_elements() as usize).unwrap();
        let want: Vec<f32> = a
            .trits
            .iter()
            .map(|&t| t as f32 * f16_bits_to_f32(f32_to_f16_bits(a.scale)))
            .collect();
        assert_eq!(deq, want, "{name}");
    }
}

#[test]
fn absmean_of_hf_master_gives_the_i2s_trits_and_scales() {
    let Some(fs) = open() else { return };
    let st = safetensors::SafeTensors::deserialize(&fs.master).unwrap();
    for (name, hf, i2s_bits, _) in MATRICES {
        let view = st.tensor(hf).unwrap();
        assert_eq!(view.dtype(), safetensors::Dtype::BF16, "{hf}");
        let (rows, cols) = (view.shape()[0], view.shape()[1]);
        let w = dequantize(GgmlType::Bf16, view.data(), rows * cols).unwrap();
        let t = ternarize_absmean(&w, rows, cols).unwrap();
        let (a, _) = ternary(&fs.i2s, name, GgmlType::I2S);
        assert_eq!((t.rows, t.cols), (a.rows, a.cols), "{name}");
        assert_eq!(t.trits, a.trits, "{name}: absmean trits vs I2_S");
        // The I2_S scale is torch's f32 mean|W|; ours is 1/(1/mean): within 1 ulp.
        let ulps = (t.scale.to_bits() as i64 - i2s_bits as i64).abs();
        assert!(
            ulps <= 1,
            "{name}: scale {} vs I2_S {} ({ulps} ulp)",
            t.scale,
            f32::from_bits(i2s_bits)
        );
    }
}
