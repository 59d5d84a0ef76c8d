//! Reading GGUF files written by other people's tools (bitnet.cpp, gguf-py, llama.cpp).
//! Expected values come from shared/data/bitnetcpp/tiny/MANIFEST.md.

use bitnet_gguf::{GgmlType, GgufFile, Value};
use bitnet_testdata::shared_dir;

#[test]
fn bitnetcpp_i2s_header() {
    let Some(s) = shared_dir() else { return };
    let f = GgufFile::open(s.join("data/bitnetcpp/tiny/model-i2_s.gguf")).unwrap();
    assert_eq!(f.header().version, 3);
    assert_eq!(f.architecture(), Some("bitnet-25"));
    assert_eq!(f.metadata().len(), 24);
    assert_eq!(f.tensors().len(), 24);
    assert_eq!(f.header().data_offset, 31744);
    assert_eq!(f.get("bitnet-25.embedding_length"), Some(&Value::U32(512)));
    assert_eq!(f.get("general.file_type"), Some(&Value::U32(40)));
    let toks = f
        .get("tokenizer.ggml.tokens")
        .unwrap()
        .as_str_array()
        .unwrap();
    assert_eq!(toks.len(), 1000);
    assert_eq!(&toks[..3], &["<unk>", "<s>", "</s>"]);
    let merges = f
        .get("tokenizer.ggml.merges")
        .unwrap()
        .as_str_array()
        .unwrap();
    assert_eq!(merges.len(), 741);
    assert_eq!(merges[0], "Ġ t");
    let t = f.tensor("blk.0.ffn_down.weight").unwrap();
    assert_eq!(t.ggml_type, GgmlType::I2S);
    assert_eq!(t.dims, vec![1024, 512]);
    assert_eq!(f.header().data_offset + t.offset, 31744);
    assert_eq!(t.size, 131104);
    let e = f.tensor("token_embd.weight").unwrap();
    assert_eq!(
        (e.ggml_type, f.header().data_offset + e.offset),
        (GgmlType::F16, 1146304)
    );
    // The I2_S scale sits right after the n/4 code bytes (MANIFEST: 0x3cc600d6).
    let d = f.tensor_data(t);
    let scale = u32::from_le_bytes(d[131072..131076].try_into().unwrap());
    assert_eq!(scale, 0x3cc600d6);
}

#[test]
fn tq_files_headers() {
    let Some(s) = shared_dir() else { return };
    for (file, ty, off, ftype) in [
        ("model-tq2_0.gguf", GgmlType::Tq2_0, 166912u64, 37u32),
        ("model-tq1_0.gguf", GgmlType::Tq1_0, 142336, 36),
    ] {
        let f = GgufFile::open(s.join("data/bitnetcpp/tiny").join(file)).unwrap();
        let t = f.tensor("blk.0.ffn_gate.weight").unwrap();
        assert_eq!(t.ggml_type, ty, "{file}");
        assert_eq!(f.header().data_offset + t.offset, off, "{file}");
        assert_eq!(f.get("general.file_type"), Some(&Value::U32(ftype)));
    }
}

#[test]
fn every_vocab_file_parses() {
    let Some(s) = shared_dir() else { return };
    let mut n = 0;
    for e in std::fs::read_dir(s.join("data/gguf-vocab")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().and_then(|x| x.to_str()) != Some("gguf") {
            continue;
        }
        let f = GgufFile::open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(f.get("tokenizer.ggml.tokens").is_some(), "{}", p.display());
        n += 1;
    }
    assert_eq!(n, 9);
}

#[test]
fn rewrite_round_trips() {
    let Some(s) = shared_dir() else { return };
    let f = GgufFile::open(s.join("data/bitnetcpp/tiny/model-i2_s.gguf")).unwrap();
    let mut w = bitnet_gguf::GgufWriter::new();
    for (k, v) in f.metadata() {
        w.add_kv(k.clone(), v.clone());
    }
    for t in f.tensors() {
        w.add_tensor(
            t.name.clone(),
            &t.dims,
            t.ggml_type,
            f.tensor_data(t).to_vec(),
        )
        .unwrap();
    }
    // Same metadata, same order, same alignment: the bytes must be identical to bitnet.cpp's.
    let original = std::fs::read(f.path()).unwrap();
    assert_eq!(w.to_bytes(), original);
}
