//! Agreement with llama.cpp's gguf-py (the `gguf` PyPI package): the fixture
//! tests/fixtures/gguf-py-ref.gguf was written by scripts/make_quant_fixtures.py, whose `X.ref`
//! tensors are gguf-py's own dequantizations and whose `tern.*` tensors are gguf-py's
//! quantizations of ternary data.

use bitnet_gguf::{GgmlType, GgufFile};
use bitnet_quants::*;

fn fixture() -> GgufFile {
    GgufFile::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/gguf-py-ref.gguf"
    ))
    .unwrap()
}

fn f32_tensor(f: &GgufFile, name: &str) -> Vec<f32> {
    let (info, bytes) = f.tensor_bytes(name).unwrap();
    assert_eq!(info.ggml_type, GgmlType::F32);
    dequantize(GgmlType::F32, bytes, info.n_elements() as usize).unwrap()
}

fn bits(xs: &[f32]) -> Vec<u32> {
    xs.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn dequantize_matches_gguf_py() {
    let f = fixture();
    for (name, ty) in [
        ("f16", GgmlType::F16),
        ("bf16", GgmlType::Bf16),
        ("q8_0", GgmlType::Q8_0),
        ("q6_k", GgmlType::Q6K),
        ("tq1_0", GgmlType::Tq1_0),
        ("tq2_0", GgmlType::Tq2_0),
    ] {
        let (info, bytes) = f.tensor_bytes(name).unwrap();
        assert_eq!(info.ggml_type, ty, "{name}");
        let ours = dequantize(ty, bytes, info.n_elements() as usize).unwrap();
        let want = f32_tensor(&f, &format!("{name}.ref"));
        assert_eq!(ours.len(), want.len(), "{name}");
        assert_eq!(bits(&ours), bits(&want), "{name} differs from gguf-py");
    }
}

#[test]
fn float_encoders_match_numpy_and_gguf_py() {
    let f = fixture();
    let src = f32_tensor(&f, "src");
    assert_eq!(f32_to_f16_bytes(&src), f.tensor_bytes("f16").unwrap().1);
    assert_eq!(f32_to_bf16_bytes(&src), f.tensor_bytes("bf16").unwrap().1);
}

#[test]
fn ternary_encoders_match_gguf_py_quantizer() {
    let f = fixture();
    let src = f32_tensor(&f, "tern.src");
    let (rows, cols) = (4, 256);
    let scale = src.iter().fold(0f32, |m, x| m.max(x.abs()));
    let t = Ternary {
        rows,
        cols,
        trits: src.iter().map(|&x| (x / scale).round() as i8).collect(),
        scale,
    };
    assert_eq!(t.to_f32(), src);
    for (name, ty) in [
        ("tern.tq1_0", GgmlType::Tq1_0),
        ("tern.tq2_0", GgmlType::Tq2_0),
    ] {
        let (_, bytes) = f.tensor_bytes(name).unwrap();
        assert_eq!(encode_ternary(ty, &t).unwrap(), bytes, "{name}");
        let back = ternary_from_ggml(ty, bytes, rows, cols).unwrap();
        assert_eq!(back.trits, t.trits, "{name}");
        assert_eq!(
            back.scale,
            f16_bits_to_f32(f32_to_f16_bits(scale)),
            "{name}"
        );
    }
}
