//! The streaming writer: the file it writes parses with the reader (tensors at the declared
//! alignment, bytes intact), and a tensor of the wrong size or a missing tensor is an error.

use bitnet_gguf::{GgmlType, GgufError, GgufFile, GgufLayout, GgufStreamWriter, TensorSpec, Value};

fn specs() -> Vec<TensorSpec> {
    vec![
        TensorSpec {
            name: "a".into(),
            dims: vec![3],
            ggml_type: GgmlType::F32,
        },
        TensorSpec {
            name: "b".into(),
            dims: vec![5],
            ggml_type: GgmlType::F32,
        },
    ]
}

#[test]
fn streamed_file_parses_with_alignment_64() {
    let meta = vec![("general.alignment".to_string(), Value::U32(64))];
    let layout = GgufLayout::new(&meta, &specs()).unwrap();
    // a: 12 bytes at 0; b: 20 bytes at the next multiple of 64.
    assert_eq!(layout.slots()[1].offset, 64);
    assert_eq!(layout.data_start() % 64, 0);
    let size = layout.file_size();
    let mut s = GgufStreamWriter::new(Vec::new(), layout, "mem").unwrap();
    s.write_tensor(&[1u8; 12]).unwrap();
    s.write_tensor(&[2u8; 20]).unwrap();
    let bytes = s.finish().unwrap();
    assert_eq!(bytes.len() as u64, size);
    let f = GgufFile::from_bytes(bytes).unwrap();
    assert_eq!(f.tensor_bytes("a").unwrap().1, &[1u8; 12]);
    assert_eq!(f.tensor_bytes("b").unwrap().1, &[2u8; 20]);
    assert_eq!(f.tensor("b").unwrap().offset, 64);
}

#[test]
fn wrong_size_and_missing_tensor_are_errors() {
    let layout = GgufLayout::new(&[], &specs()).unwrap();
    let mut s = GgufStreamWriter::new(Vec::new(), layout.clone(), "mem").unwrap();
    let e = s.write_tensor(&[0u8; 5]).unwrap_err();
    assert!(
        matches!(&e, GgufError::BadTensor { name, .. } if name == "a"),
        "{e}"
    );
    let mut s = GgufStreamWriter::new(Vec::new(), layout, "mem").unwrap();
    s.write_tensor(&[0u8; 12]).unwrap();
    assert!(s.finish().is_err());
}

#[test]
fn bad_dims_name_the_tensor() {
    let bad = TensorSpec {
        name: "q".into(),
        dims: vec![100],
        ggml_type: GgmlType::Tq2_0, // blocks of 256
    };
    let e = GgufLayout::new(&[], &[bad]).unwrap_err();
    assert!(e.to_string().contains("\"q\""), "{e}");
}
