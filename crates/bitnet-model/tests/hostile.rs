//! The hostile inputs of the audit (issue 7, item 4), fabricated here: each gives a clear
//! error within a second and without allocating what the file merely claims.

use std::path::Path;
use std::time::{Duration, Instant};

use bitnet_convert::synth::{synth, EmbedType, Format, Shape, SynthSpec};
use bitnet_gguf::{GgufFile, GgufWriter, Value};
use bitnet_model::{Model, State};

fn tiny(dir: &Path, format: Format) -> std::path::PathBuf {
    let out = dir.join(if format.is_gguf() {
        "tiny.gguf"
    } else {
        "tiny-hf"
    });
    let spec = SynthSpec {
        shape: Shape::named("tiny").unwrap(),
        format,
        seed: 1,
        embed: EmbedType::F16,
    };
    synth(&spec, &out, &mut |_, _| {}).unwrap();
    out
}

/// `src` with metadata key `key` replaced by `value` (added when absent).
fn with_kv(src: &Path, dst: &Path, key: &str, value: Value) {
    let f = GgufFile::open(src).unwrap();
    let mut w = GgufWriter::new();
    let mut seen = false;
    for (k, v) in f.metadata() {
        if k == key {
            w.add_kv(k.clone(), value.clone());
            seen = true;
        } else {
            w.add_kv(k.clone(), v.clone());
        }
    }
    if !seen {
        w.add_kv(key.to_string(), value);
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
    w.write(dst).unwrap();
}

/// Loading `path` fails within a second with a message containing every one of `says`.
fn refused(path: &Path, says: &[&str]) {
    let t0 = Instant::now();
    let e = Model::load(path).expect_err("hostile file loaded");
    let s = e.to_string();
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "took {:?}: {s}",
        t0.elapsed()
    );
    for w in says {
        assert!(s.contains(w), "{s:?} does not say {w:?}");
    }
}

#[test]
fn claimed_layer_counts_are_checked_against_the_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let src = tiny(dir.path(), Format::GgufI2s);
    let arch = GgufFile::open(&src)
        .unwrap()
        .architecture()
        .unwrap()
        .to_string();
    for n in [100_000_000u64, u64::MAX, 3] {
        let p = dir.path().join(format!("layers{n}.gguf"));
        with_kv(&src, &p, &format!("{arch}.block_count"), Value::U64(n));
        refused(&p, &["block_count"]);
    }
    // The same in an HF config.json.
    let hf = tiny(dir.path(), Format::HfPacked);
    let cfg = std::fs::read_to_string(hf.join("config.json")).unwrap();
    for n in ["100000000", "18446744073709551615"] {
        let mut j: serde_json::Value = serde_json::from_str(&cfg).unwrap();
        j["num_hidden_layers"] = serde_json::Value::Number(n.parse::<u64>().unwrap().into());
        std::fs::write(hf.join("config.json"), j.to_string()).unwrap();
        refused(&hf, &["num_hidden_layers"]);
    }
}

#[test]
fn zero_heads_and_huge_token_ids_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let src = tiny(dir.path(), Format::GgufI2s);
    let arch = GgufFile::open(&src)
        .unwrap()
        .architecture()
        .unwrap()
        .to_string();
    let p = dir.path().join("heads0.gguf");
    with_kv(
        &src,
        &p,
        &format!("{arch}.attention.head_count"),
        Value::U32(0),
    );
    refused(&p, &["head_count", "positive"]);
    let p = dir.path().join("bos.gguf");
    with_kv(&src, &p, "tokenizer.ggml.bos_token_id", Value::U64(1 << 40));
    refused(&p, &["bos_token_id", "1099511627776"]);
}

#[test]
fn huge_contexts_are_refused_with_the_memory_they_need() {
    let dir = tempfile::tempdir().unwrap();
    let m = Model::load(tiny(dir.path(), Format::GgufI2s)).unwrap();
    let t0 = Instant::now();
    for ctx in [100_000_000usize, usize::MAX / 2] {
        let e = State::new(&m.config, ctx, 256)
            .err()
            .expect("a huge KV cache was allocated");
        let s = e.to_string();
        assert!(
            s.contains(&ctx.to_string()) && (s.contains("GiB") || s.contains("too large")),
            "{s}"
        );
    }
    assert!(t0.elapsed() < Duration::from_secs(1));
}

#[test]
fn many_keys_and_tensors_parse_in_linear_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = GgufWriter::new();
    w.add_kv("general.architecture", Value::String("bitnet-b1.58".into()));
    for i in 0..100_000 {
        w.add_kv(format!("junk.key{i}"), Value::U8(1));
    }
    for i in 0..100_000 {
        w.add_tensor(
            format!("junk.t{i}"),
            &[1],
            bitnet_gguf::GgmlType::F32,
            vec![0; 4],
        )
        .unwrap();
    }
    let p = dir.path().join("many.gguf");
    w.write(&p).unwrap();
    let t0 = Instant::now();
    let f = GgufFile::open(&p).unwrap();
    assert_eq!(f.tensors().len(), 100_000);
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "parsing took {:?}",
        t0.elapsed()
    );
}

/// A 64 MiB metadata array (64M one-byte elements) is read as 64 MiB of bytes, quickly: typed
/// arrays, not one 32-byte value per element (that was 2 GiB and more).
#[test]
fn huge_metadata_arrays_are_read_compactly() {
    let dir = tempfile::tempdir().unwrap();
    // Written byte by byte (GGUF v3): two keys, the second an array of 64M u8.
    let mut b = Vec::with_capacity((64 << 20) + 128);
    b.extend_from_slice(b"GGUF");
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes()); // tensors
    b.extend_from_slice(&2u64.to_le_bytes()); // keys
    let key = |b: &mut Vec<u8>, k: &str| {
        b.extend_from_slice(&(k.len() as u64).to_le_bytes());
        b.extend_from_slice(k.as_bytes());
    };
    key(&mut b, "general.architecture");
    b.extend_from_slice(&8u32.to_le_bytes()); // string
    key(&mut b, "bitnet-b1.58");
    key(&mut b, "junk.bytes");
    b.extend_from_slice(&9u32.to_le_bytes()); // array
    b.extend_from_slice(&0u32.to_le_bytes()); // of u8
    b.extend_from_slice(&(64u64 << 20).to_le_bytes());
    b.resize(b.len() + (64 << 20), 7);
    let p = dir.path().join("bigarray.gguf");
    std::fs::write(&p, &b).unwrap();
    let peak_before = peak_rss_kib();
    let t0 = Instant::now();
    let f = GgufFile::open(&p).unwrap();
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    match f.get("junk.bytes").and_then(|v| v.as_array()) {
        Some(bitnet_gguf::Array::U8(v)) => assert_eq!(v.len(), 64 << 20),
        other => panic!("junk.bytes read as {other:?}"),
    }
    // The mapped file plus one byte per element; 32-byte values would have added 2 GiB.
    if let (Some(a), Some(b)) = (peak_before, peak_rss_kib()) {
        assert!(
            b.saturating_sub(a) < 1 << 20,
            "peak RSS grew by {} KiB",
            b - a
        );
    }
    // A real vocabulary still loads.
    if let Some(v) = bitnet_testdata::shared_file("data/gguf-vocab/ggml-vocab-gpt-2.gguf") {
        GgufFile::open(v).unwrap();
    }
}

#[test]
fn non_finite_float_tensors_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = tiny(dir.path(), Format::GgufI2s);
    let f = GgufFile::open(&src).unwrap();
    let mut w = GgufWriter::new();
    for (k, v) in f.metadata() {
        w.add_kv(k.clone(), v.clone());
    }
    for t in f.tensors() {
        let mut data = f.tensor_data(t).to_vec();
        if t.name == "blk.1.ffn_norm.weight" {
            data[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
        }
        w.add_tensor(t.name.clone(), &t.dims, t.ggml_type, data)
            .unwrap();
    }
    let p = dir.path().join("nan.gguf");
    w.write(&p).unwrap();
    refused(&p, &["blk.1.ffn_norm.weight", "NaN"]);
}

/// A loaded model owns its weights (repacked or copied out of the memory map, which is
/// closed when loading returns): truncating or replacing the file afterwards cannot fault.
#[test]
fn a_file_truncated_after_loading_does_not_matter() {
    let dir = tempfile::tempdir().unwrap();
    for format in [Format::GgufI2s, Format::HfPacked] {
        let p = tiny(dir.path(), format);
        let m = Model::load(&p).unwrap();
        let mut st = m.new_state(16).unwrap();
        let before = m
            .forward(&mut st, &[1, 2, 3], 0, bitnet_model::Logits::Last)
            .unwrap()
            .to_vec();
        let file = if format.is_gguf() {
            p.clone()
        } else {
            p.join("model.safetensors")
        };
        std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(0)
            .unwrap();
        st.reset();
        let after = m
            .forward(&mut st, &[1, 2, 3], 0, bitnet_model::Logits::Last)
            .unwrap();
        assert_eq!(before, after);
        // And loading the truncated file is an error naming it.
        let e = Model::load(&p).unwrap_err().to_string();
        assert!(
            e.contains(file.file_name().unwrap().to_str().unwrap()) || e.contains("truncated"),
            "{e}"
        );
    }
}

/// Peak resident set of this process (Linux `VmHWM`), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
