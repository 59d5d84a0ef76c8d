//! Metadata arrays: every element type (and nested arrays) written and read back exactly, bad
//! bool bytes refused, and large arrays kept compact — one byte per `u8` element, not one
//! 32-byte value each (a 16 Mi-element array used to be refused outright).

use bitnet_gguf::{Array, GgufFile, GgufWriter, Value, ValueType};

fn one_key(v: Value) -> GgufFile {
    let mut w = GgufWriter::new();
    w.add_kv("k", v);
    GgufFile::from_bytes(w.to_bytes()).unwrap()
}

#[test]
fn every_element_type_round_trips() {
    let arrays = vec![
        Array::U8(vec![0, 7, 255]),
        Array::I8(vec![-128, 0, 127]),
        Array::U16(vec![1, 65535]),
        Array::I16(vec![-32768, 5]),
        Array::U32(vec![u32::MAX, 3]),
        Array::I32(vec![i32::MIN, -1]),
        Array::F32(vec![1.5, -0.0, f32::INFINITY]),
        Array::Bool(vec![true, false, true]),
        Array::String(vec!["".into(), "é ✓".into(), "a b".into()]),
        Array::U64(vec![u64::MAX]),
        Array::I64(vec![i64::MIN, 9]),
        Array::F64(vec![std::f64::consts::PI]),
        Array::Array(vec![
            Array::U8(vec![1]),
            Array::String(vec!["x".into()]),
            Array::I32(vec![]),
        ]),
        Array::F32(vec![]),
    ];
    for a in arrays {
        let f = one_key(Value::Array(a.clone()));
        let got = f.get("k").unwrap().as_array().unwrap();
        assert_eq!(got, &a);
        assert_eq!(got.elem_type(), a.elem_type());
    }
    // Typed accessors read across element types the way the tokenizer loaders need.
    let f = one_key(Value::Array(Array::I32(vec![1, -2])));
    assert_eq!(f.get("k").unwrap().as_i64_array(), Some(vec![1, -2]));
    assert_eq!(f.get("k").unwrap().as_f32_array(), Some(vec![1.0, -2.0]));
    assert_eq!(f.get("k").unwrap().as_str_array(), None);
    let f = one_key(Value::Array(Array::String(vec!["a".into()])));
    assert_eq!(f.get("k").unwrap().as_str_array(), Some(vec!["a"]));
    assert_eq!(
        f.get("k").unwrap().to_string(),
        "[String; 1] \"a\"",
        "Display names the type and the first elements"
    );
}

#[test]
fn a_bad_bool_byte_in_an_array_is_an_error() {
    let mut w = GgufWriter::new();
    w.add_kv("flags", Value::Array(Array::Bool(vec![true, false])));
    let mut bytes = w.to_bytes();
    // The array's last element byte: find the key, skip type (4), elem type (4), count (8).
    let at = bytes.windows(5).position(|s| s == b"flags").unwrap() + 5 + 4 + 4 + 8 + 1;
    bytes[at] = 2;
    let e = GgufFile::from_bytes(bytes).unwrap_err().to_string();
    assert!(e.contains("flags") && e.contains("bool byte is 2"), "{e}");
}

#[test]
fn large_arrays_stay_compact() {
    let n = 16 << 20;
    let f = one_key(Value::Array(Array::U8(vec![7; n])));
    match f.get("k").unwrap().as_array().unwrap() {
        Array::U8(v) => assert_eq!(v.len(), n),
        other => panic!("a u8 array read back as {:?}", other.elem_type()),
    }
    assert_eq!(
        f.get("k").unwrap().as_array().unwrap().elem_type(),
        ValueType::U8
    );
}
