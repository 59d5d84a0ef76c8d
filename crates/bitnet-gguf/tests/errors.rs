//! Bad input gives a clear error, never a panic.

use bitnet_gguf::{GgmlType, GgufError, GgufFile, GgufWriter, Value};

fn sample() -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.add_kv("general.architecture", Value::String("bitnet-b1.58".into()));
    w.add_kv("a.list", Value::Array(bitnet_gguf::Array::U32(vec![1, 2])));
    w.add_tensor("t.weight", &[4, 2], GgmlType::F32, vec![0u8; 32])
        .unwrap();
    w.to_bytes()
}

#[test]
fn sample_parses() {
    let f = GgufFile::from_bytes(sample()).unwrap();
    assert_eq!(f.tensors()[0].name, "t.weight");
    assert_eq!(f.tensor_data(&f.tensors()[0]).len(), 32);
}

#[test]
fn truncated_anywhere_is_an_error() {
    let b = sample();
    for cut in 0..b.len() {
        let r = GgufFile::from_bytes(b[..cut].to_vec());
        assert!(r.is_err(), "cut at {cut} parsed");
    }
}

#[test]
fn truncated_tensor_data_names_tensor() {
    let mut b = sample();
    b.truncate(b.len() - 1);
    let e = GgufFile::from_bytes(b).unwrap_err().to_string();
    assert!(e.contains("t.weight") && e.contains("truncated"), "{e}");
}

#[test]
fn bad_magic() {
    let mut b = sample();
    b[0] = b'X';
    assert!(matches!(
        GgufFile::from_bytes(b),
        Err(GgufError::BadMagic(_))
    ));
}

#[test]
fn bad_version() {
    let mut b = sample();
    b[4] = 7;
    assert!(matches!(
        GgufFile::from_bytes(b),
        Err(GgufError::UnsupportedVersion(7))
    ));
}

#[test]
fn unknown_tensor_type_names_tensor() {
    let mut b = sample();
    // The type id follows name, n_dims and two dims; find it by searching for the name.
    let pos = b.windows(8).position(|w| w == b"t.weight").unwrap() + 8 + 4 + 16;
    b[pos..pos + 4].copy_from_slice(&39u32.to_le_bytes());
    let e = GgufFile::from_bytes(b).unwrap_err();
    assert!(
        matches!(&e, GgufError::UnknownTensorType { name, type_id: 39 } if name == "t.weight"),
        "{e}"
    );
}

#[test]
fn huge_counts_do_not_allocate() {
    let mut b = sample();
    b[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(GgufFile::from_bytes(b).is_err());
    let mut b = sample();
    b[16..24].copy_from_slice(&(1u64 << 60).to_le_bytes());
    assert!(GgufFile::from_bytes(b).is_err());
}

#[test]
fn wrong_size_tensor_rejected_by_writer() {
    let mut w = GgufWriter::new();
    let e = w
        .add_tensor("x", &[256, 2], GgmlType::Tq2_0, vec![0; 10])
        .err()
        .unwrap();
    assert!(e.to_string().contains("\"x\""), "{e}");
}
