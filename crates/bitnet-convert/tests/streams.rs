//! The streaming writers against independent writers/readers: the GGUF stream must equal
//! bitnet_gguf::GgufWriter's bytes; the safetensors stream must parse with the `safetensors` crate.

use bitnet_convert::gguf_stream::{gguf_file_size, write_gguf_streaming, GgufTensorPlan};
use bitnet_convert::safetensors_stream::{write_safetensors_streaming, StTensorPlan};
use bitnet_convert::ConvertError;
use bitnet_gguf::{GgmlType, GgufWriter, Value};

#[test]
fn gguf_stream_equals_gguf_writer() {
    let meta: Vec<(String, Value)> = vec![
        ("general.architecture".into(), Value::String("x".into())),
        ("a.u32".into(), Value::U32(7)),
        ("a.f32".into(), Value::F32(1.5)),
        ("a.bool".into(), Value::Bool(true)),
        (
            "a.arr".into(),
            Value::Array(bitnet_gguf::Array::String(vec!["p".into(), "qq".into()])),
        ),
    ];
    let tensors = vec![
        (
            GgufTensorPlan {
                name: "t0".into(),
                dims: vec![3],
                ggml_type: GgmlType::F32,
            },
            vec![1u8; 12],
        ),
        (
            GgufTensorPlan {
                name: "t1".into(),
                dims: vec![256, 2],
                ggml_type: GgmlType::Tq2_0,
            },
            vec![2u8; 132],
        ),
        (
            GgufTensorPlan {
                name: "t2".into(),
                dims: vec![128, 1],
                ggml_type: GgmlType::I2S,
            },
            vec![3u8; 64],
        ),
    ];
    let mut w = GgufWriter::new();
    for (k, v) in &meta {
        w.add_kv(k.clone(), v.clone());
    }
    for (p, d) in &tensors {
        w.add_tensor(p.name.clone(), &p.dims, p.ggml_type, d.clone())
            .unwrap();
    }
    let want = w.to_bytes();
    let plans: Vec<GgufTensorPlan> = tensors.iter().map(|t| t.0.clone()).collect();
    let mut got = Vec::new();
    write_gguf_streaming(&mut got, &meta, &plans, |i, out| {
        out.write_all(&tensors[i].1)
            .map_err(|e| ConvertError::io("x".as_ref(), e))
    })
    .unwrap();
    assert_eq!(got, want);
    assert_eq!(gguf_file_size(&meta, &plans).unwrap(), got.len() as u64);
    // A generator writing the wrong size is an error naming the tensor.
    let e = write_gguf_streaming(&mut Vec::new(), &meta, &plans, |_, out| {
        out.write_all(&[0; 5])
            .map_err(|e| ConvertError::io("x".as_ref(), e))
    })
    .unwrap_err();
    assert!(e.to_string().contains("t0"), "{e}");
}

#[test]
fn safetensors_stream_parses() {
    let plans = vec![
        StTensorPlan {
            name: "b".into(),
            dtype: "BF16",
            shape: vec![2, 3],
            nbytes: 12,
        },
        StTensorPlan {
            name: "a".into(),
            dtype: "U8",
            shape: vec![5],
            nbytes: 5,
        },
    ];
    let data = [vec![7u8; 12], vec![9u8; 5]];
    let mut out = Vec::new();
    write_safetensors_streaming(&mut out, &plans, &[("format", "pt")], |i, w| {
        w.write_all(&data[i])
            .map_err(|e| ConvertError::io("x".as_ref(), e))
    })
    .unwrap();
    let header_len = u64::from_le_bytes(out[..8].try_into().unwrap());
    assert_eq!(header_len % 8, 0);
    let st = safetensors::SafeTensors::deserialize(&out).unwrap();
    let b = st.tensor("b").unwrap();
    assert_eq!(
        (b.dtype(), b.shape(), b.data()),
        (safetensors::Dtype::BF16, &[2usize, 3][..], &data[0][..])
    );
    let a = st.tensor("a").unwrap();
    assert_eq!(
        (a.dtype(), a.data()),
        (safetensors::Dtype::U8, &data[1][..])
    );
    let (_, meta) = safetensors::SafeTensors::read_metadata(&out).unwrap();
    assert_eq!(
        meta.metadata()
            .as_ref()
            .and_then(|m| m.get("format"))
            .map(String::as_str),
        Some("pt")
    );
}
