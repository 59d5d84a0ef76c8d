//! Bad input gives an error naming what is wrong, never a panic. Bad files are built here from
//! the shared models: GGUFs rewritten with `GgufWriter`, HF folders with an edited config.json
//! or a rewritten safetensors file.

mod common;

use std::path::{Path, PathBuf};

use bitnet_gguf::{GgmlType, GgufFile, GgufWriter, Value};
use bitnet_model::hf::SafetensorsSet;
use bitnet_model::{Model, ModelError};

fn tiny_gguf() -> Option<PathBuf> {
    Some(common::shared()?.join("data/bitnetcpp/tiny/model-i2_s.gguf"))
}

/// One tensor of a rewritten GGUF: `(name, dims, type, bytes)`; `None` drops it.
type Edit<'a> =
    &'a dyn Fn(&str, Vec<u64>, GgmlType, Vec<u8>) -> Option<(Vec<u64>, GgmlType, Vec<u8>)>;

/// Rewrite `src` into `dst`, passing metadata through `kv` and tensors through `edit`.
fn rewrite_gguf(src: &Path, dst: &Path, kv: &dyn Fn(&str, &Value) -> Option<Value>, edit: Edit) {
    let f = GgufFile::open(src).unwrap();
    let mut w = GgufWriter::new();
    for (k, v) in f.metadata() {
        if let Some(v) = kv(k, v) {
            w.add_kv(k.clone(), v);
        }
    }
    for t in f.tensors() {
        if let Some((dims, ty, data)) = edit(
            &t.name,
            t.dims.clone(),
            t.ggml_type,
            f.tensor_data(t).to_vec(),
        ) {
            w.add_tensor(t.name.clone(), &dims, ty, data).unwrap();
        }
    }
    w.write(dst).unwrap();
}

fn keep_kv(_: &str, v: &Value) -> Option<Value> {
    Some(v.clone())
}

fn load_err(path: &Path) -> (ModelError, String) {
    let e = Model::load(path).unwrap_err();
    let s = e.to_string();
    (e, s)
}

#[test]
fn truncated_gguf() {
    let Some(src) = tiny_gguf() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(&src).unwrap();
    for cut in [100, 20000, bytes.len() - 1000] {
        let p = tmp.path().join(format!("cut{cut}.gguf"));
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let (_, s) = load_err(&p);
        let says_short = s.contains("truncated") || s.contains("more than the file");
        assert!(says_short && s.contains(&format!("cut{cut}.gguf")), "{s}");
    }
}

#[test]
fn gguf_tensor_of_wrong_shape() {
    let Some(src) = tiny_gguf() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("bad.gguf");
    // attn_norm of 256 instead of 512 elements.
    rewrite_gguf(&src, &p, &keep_kv, &|name, dims, ty, data| {
        if name == "blk.1.attn_norm.weight" {
            Some((vec![256], ty, data[..1024].to_vec()))
        } else {
            Some((dims, ty, data))
        }
    });
    let (e, s) = load_err(&p);
    assert!(matches!(e, ModelError::TensorShape { .. }), "{e:?}");
    assert!(
        s.contains("blk.1.attn_norm.weight") && s.contains("[256]") && s.contains("[512]"),
        "{s}"
    );
    // A ternary matrix with rows and columns swapped.
    rewrite_gguf(&src, &p, &keep_kv, &|name, dims, ty, data| {
        if name == "blk.0.ffn_down.weight" {
            Some((vec![dims[1], dims[0]], ty, data))
        } else {
            Some((dims, ty, data))
        }
    });
    let (_, s) = load_err(&p);
    assert!(
        s.contains("blk.0.ffn_down.weight") && s.contains("[512, 1024]"),
        "{s}"
    );
}

#[test]
fn gguf_missing_tensor_and_unsupported_type() {
    let Some(src) = tiny_gguf() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("bad.gguf");
    rewrite_gguf(&src, &p, &keep_kv, &|name, dims, ty, data| {
        (name != "blk.1.ffn_sub_norm.weight").then_some((dims, ty, data))
    });
    let (e, s) = load_err(&p);
    assert!(matches!(e, ModelError::MissingTensor { .. }), "{e:?}");
    assert!(
        s.contains("blk.1.ffn_sub_norm.weight") && s.contains("bad.gguf"),
        "{s}"
    );
    // A matrix stored as Q4_0 (18-byte blocks of 32): not a type a ternary matrix can have.
    rewrite_gguf(&src, &p, &keep_kv, &|name, dims, ty, data| {
        if name == "blk.0.attn_k.weight" {
            let n = (dims[0] * dims[1]) as usize;
            Some((dims, GgmlType::Q4_0, vec![0u8; n / 32 * 18]))
        } else {
            Some((dims, ty, data))
        }
    });
    let (_, s) = load_err(&p);
    assert!(
        s.contains("blk.0.attn_k.weight") && s.contains("Q4_0"),
        "{s}"
    );
}

#[test]
fn gguf_missing_key_and_unknown_architecture() {
    let Some(src) = tiny_gguf() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("bad.gguf");
    let keep = |_: &str, dims, ty, data| Some((dims, ty, data));
    rewrite_gguf(
        &src,
        &p,
        &|k, v| (k != "bitnet-25.embedding_length").then(|| v.clone()),
        &keep,
    );
    let (e, s) = load_err(&p);
    assert!(matches!(e, ModelError::MissingKey { .. }), "{e:?}");
    assert!(
        s.contains("bitnet-25.embedding_length") && s.contains("bad.gguf"),
        "{s}"
    );
    rewrite_gguf(
        &src,
        &p,
        &|k, v| {
            Some(if k == "bitnet-25.rope.freq_base" {
                Value::String("big".into())
            } else {
                v.clone()
            })
        },
        &keep,
    );
    let (_, s) = load_err(&p);
    assert!(
        s.contains("bitnet-25.rope.freq_base") && s.contains("number"),
        "{s}"
    );
    rewrite_gguf(
        &src,
        &p,
        &|k, v| {
            Some(if k == "general.architecture" {
                Value::String("gpt2".into())
            } else {
                v.clone()
            })
        },
        &keep,
    );
    let (e, s) = load_err(&p);
    assert!(matches!(e, ModelError::UnknownArchitecture { .. }), "{e:?}");
    assert!(s.contains("\"gpt2\"") && s.contains("bitnet-b1.58"), "{s}");
    // `llama` is accepted only with ternary matrices: this one has F16 ones.
    let rename = |k: &str, v: &Value| -> Option<Value> {
        Some(match (k, v) {
            ("general.architecture", _) => Value::String("llama".into()),
            _ => v.clone(),
        })
    };
    let p2 = tmp.path().join("llama.gguf");
    let f = GgufFile::open(&src).unwrap();
    let mut w = GgufWriter::new();
    for (k, v) in f.metadata() {
        let k = k.replace("bitnet-25.", "llama.");
        w.add_kv(k.clone(), rename(&k, v).unwrap());
    }
    w.add_tensor(
        "blk.0.attn_q.weight",
        &[512, 512],
        GgmlType::F16,
        vec![0u8; 512 * 512 * 2],
    )
    .unwrap();
    w.write(&p2).unwrap();
    let (_, s) = load_err(&p2);
    assert!(
        s.contains("blk.0.attn_q.weight") && s.contains("not a ternary model"),
        "{s}"
    );
}

/// An edit of a parsed config.json.
type ConfigEdit = dyn Fn(&mut serde_json::Value);

/// An edit of one safetensors tensor `(name, shape, bytes)`; `None` drops it.
type TensorEdit<'a> = dyn Fn(&str, Vec<usize>, Vec<u8>) -> Option<(Vec<usize>, Vec<u8>)> + 'a;

/// A temp copy of an HF folder whose config.json is edited by `edit`.
fn hf_copy(src: &Path, edit: &ConfigEdit) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for f in ["model.safetensors", "tokenizer.json"] {
        if src.join(f).exists() {
            std::fs::copy(src.join(f), tmp.path().join(f)).unwrap();
        }
    }
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    edit(&mut cfg);
    std::fs::write(tmp.path().join("config.json"), cfg.to_string()).unwrap();
    tmp
}

#[test]
fn hf_config_errors_name_the_key() {
    let Some(s) = common::shared() else { return };
    let ts = s.join("data/real-models/bitllama2c-tinystories-1m");
    let cases: [(&str, &ConfigEdit, &str); 6] = [
        (
            "hidden_size",
            &|c| {
                c.as_object_mut().unwrap().remove("hidden_size");
            },
            "missing key \"hidden_size\"",
        ),
        (
            "num_attention_heads",
            &|c| c["num_attention_heads"] = "eight".into(),
            "\"num_attention_heads\"",
        ),
        (
            "architectures",
            &|c| c["architectures"] = serde_json::json!(["GPT2LMHeadModel"]),
            "GPT2LMHeadModel",
        ),
        (
            "linear_class",
            &|c| c["quantization_config"]["linear_class"] = "fancy".into(),
            "quantization_config.linear_class",
        ),
        (
            "quantization_config",
            &|c| {
                c.as_object_mut().unwrap().remove("quantization_config");
            },
            "not a ternary model",
        ),
        (
            "rope_scaling",
            &|c| c["rope_scaling"] = serde_json::json!({"rope_type": "yarn", "factor": 4.0}),
            "\"rope_scaling\"",
        ),
    ];
    for (what, edit, needle) in cases {
        let dir = hf_copy(&ts, edit);
        let e = Model::load(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains(needle) && e.contains("config.json"),
            "{what}: {e}"
        );
    }
    // Broken JSON.
    let dir = hf_copy(&ts, &|_| {});
    std::fs::write(dir.path().join("config.json"), "{\"hidden_size\": 12,").unwrap();
    let e = Model::load(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("config.json") && e.contains("invalid JSON"),
        "{e}"
    );
}

/// Write a safetensors file from `(name, dtype, shape, bytes)` entries.
fn write_safetensors(path: &Path, tensors: &[(String, String, Vec<usize>, Vec<u8>)]) {
    let mut header = serde_json::Map::new();
    let mut off = 0usize;
    for (name, dtype, shape, data) in tensors {
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [off, off + data.len()]}),
        );
        off += data.len();
    }
    let mut h = serde_json::Value::Object(header).to_string().into_bytes();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    for (_, _, _, d) in tensors {
        out.extend_from_slice(d);
    }
    std::fs::write(path, out).unwrap();
}

/// The tensors of an HF folder, edited by `edit` (`None` drops one).
fn rewrite_safetensors(src: &Path, dst: &Path, edit: &TensorEdit) {
    let set = SafetensorsSet::open(src).unwrap();
    let tensors: Vec<_> = set
        .tensors()
        .filter_map(|t| {
            let dtype = format!("{:?}", t.dtype);
            edit(&t.name, t.shape.clone(), set.data(t).to_vec())
                .map(|(s, d)| (t.name.clone(), dtype, s, d))
        })
        .collect();
    write_safetensors(&dst.join("model.safetensors"), &tensors);
}

#[test]
fn hf_tensor_errors_name_the_tensor() {
    let Some(s) = common::shared() else { return };
    let ts = s.join("data/real-models/bitllama2c-tinystories-1m");
    // The rewrite itself must load (checks the helper).
    let dir = hf_copy(&ts, &|_| {});
    rewrite_safetensors(&ts, dir.path(), &|_, s, d| Some((s, d)));
    Model::load(dir.path()).unwrap();
    // Wrong shape of a packed matrix.
    rewrite_safetensors(&ts, dir.path(), &|n, s, d| {
        Some(if n == "model.layers.3.mlp.up_proj.weight" {
            (vec![s[0] / 2, s[1] * 2], d)
        } else {
            (s, d)
        })
    });
    let e = Model::load(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("model.layers.3.mlp.up_proj.weight") && e.contains("shape"),
        "{e}"
    );
    // Missing weight_scale and missing per-linear norm.
    for gone in [
        "model.layers.2.self_attn.o_proj.weight_scale",
        "model.layers.0.self_attn.k_proj.rms_norm.weight",
    ] {
        rewrite_safetensors(&ts, dir.path(), &|n, s, d| (n != gone).then_some((s, d)));
        let e = Model::load(dir.path()).unwrap_err();
        assert!(matches!(e, ModelError::MissingTensor { .. }), "{e:?}");
        assert!(e.to_string().contains(gone), "{e}");
    }
    // A truncated safetensors file.
    let bytes = std::fs::read(ts.join("model.safetensors")).unwrap();
    std::fs::write(
        dir.path().join("model.safetensors"),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    let e = Model::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("model.safetensors"), "{e}");
}

#[test]
fn gguf_unknown_type_id_and_corrupted_header() {
    let Some(src) = tiny_gguf() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(&src).unwrap();
    // Tensor info: name (u64 length + bytes), n_dims u32, dims u64 × n, type u32, offset u64.
    let name = b"blk.0.attn_k.weight";
    let at = bytes.windows(name.len()).position(|w| w == name).unwrap() + name.len();
    let n_dims = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let ty = at + 4 + 8 * n_dims;
    assert_eq!(
        u32::from_le_bytes(bytes[ty..ty + 4].try_into().unwrap()),
        36,
        "I2_S"
    );
    bytes[ty..ty + 4].copy_from_slice(&99u32.to_le_bytes());
    let p = tmp.path().join("type99.gguf");
    std::fs::write(&p, &bytes).unwrap();
    let (_, s) = load_err(&p);
    assert!(s.contains("blk.0.attn_k.weight") && s.contains("99"), "{s}");
    // Corrupted magic and an absurd metadata count.
    let mut bad = std::fs::read(&src).unwrap();
    bad[..4].copy_from_slice(b"GGUX");
    std::fs::write(&p, &bad).unwrap();
    let (_, s) = load_err(&p);
    assert!(s.contains("not a GGUF file"), "{s}");
    let mut bad = std::fs::read(&src).unwrap();
    bad[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(&p, &bad).unwrap();
    let (_, s) = load_err(&p);
    assert!(s.contains("type99.gguf"), "{s}");
}
