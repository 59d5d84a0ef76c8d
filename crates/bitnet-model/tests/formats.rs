//! Layouts the shared files do not cover, built here from them: sharded safetensors, a
//! llama.cpp-style `llama` GGUF (Q/K rows permuted for interleaved RoPE), llama.cpp's `bitnet`
//! arch with separate `.scale` tensors. Each must give the logits of the original.

mod common;

use std::path::Path;

use bitnet_gguf::{GgmlType, GgufFile, GgufWriter, Value};
use bitnet_model::hf::SafetensorsSet;
use bitnet_model::{argmax, rel_l2, Model, Proj, RopeStyle};
use bitnet_quants::{encode_i2s, Ternary};

const IDS: [u32; 10] = [1, 17, 300, 42, 5, 99, 250, 7, 400, 3];

fn write_safetensors(path: &Path, set: &SafetensorsSet, names: &[String]) {
    let mut header = serde_json::Map::new();
    let mut off = 0usize;
    for n in names {
        let t = set.get(n).unwrap();
        header.insert(
            n.clone(),
            serde_json::json!({"dtype": format!("{:?}", t.dtype), "shape": t.shape, "data_offsets": [off, off + t.bytes()]}),
        );
        off += t.bytes();
    }
    let mut h = serde_json::Value::Object(header).to_string().into_bytes();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    for n in names {
        out.extend_from_slice(set.data(set.get(n).unwrap()));
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn sharded_safetensors_load_like_one_file() {
    let Some(s) = common::shared() else { return };
    let src = s.join("data/real-models/bitllama2c-tinystories-3m");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(src.join("config.json"), tmp.path().join("config.json")).unwrap();
    let set = SafetensorsSet::open(&src).unwrap();
    let names: Vec<String> = set.tensors().map(|t| t.name.clone()).collect();
    let (a, b) = names.split_at(names.len() / 2);
    write_safetensors(
        &tmp.path().join("model-00001-of-00002.safetensors"),
        &set,
        a,
    );
    write_safetensors(
        &tmp.path().join("model-00002-of-00002.safetensors"),
        &set,
        b,
    );
    let mut map = serde_json::Map::new();
    for n in a {
        map.insert(n.clone(), "model-00001-of-00002.safetensors".into());
    }
    for n in b {
        map.insert(n.clone(), "model-00002-of-00002.safetensors".into());
    }
    let index = serde_json::json!({"metadata": {"total_size": 0}, "weight_map": map});
    std::fs::write(
        tmp.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();

    let one = Model::load(&src).unwrap();
    let sharded = Model::load(tmp.path()).unwrap();
    assert_eq!(
        common::all_logits(&sharded, &IDS),
        common::all_logits(&one, &IDS)
    );

    // An index naming a tensor its shard does not hold is an error naming both.
    let mut bad = map.clone();
    bad.insert(
        "model.norm.weight".into(),
        "model-00001-of-00002.safetensors".into(),
    );
    bad.insert(
        "lm_head.extra".into(),
        "model-00002-of-00002.safetensors".into(),
    );
    let index = serde_json::json!({"weight_map": bad});
    std::fs::write(
        tmp.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();
    let e = Model::load(tmp.path()).unwrap_err().to_string();
    assert!(
        e.contains("lm_head.extra") && e.contains("model-00002-of-00002.safetensors"),
        "{e}"
    );
}

/// llama.cpp's converter `permute`: within each head, row a·(hd/2)+b moves to 2b+a, turning
/// rotate-half pairs (b, b+hd/2) into interleaved pairs (2b, 2b+1).
fn permute_rows(t: &[i8], rows: usize, cols: usize, hd: usize) -> Vec<i8> {
    let mut out = vec![0i8; t.len()];
    for r in 0..rows {
        let (head, i) = (r / hd, r % hd);
        let (a, b) = (i / (hd / 2), i % (hd / 2));
        let dst = head * hd + 2 * b + a;
        out[dst * cols..(dst + 1) * cols].copy_from_slice(&t[r * cols..(r + 1) * cols]);
    }
    out
}

fn i2s(p: &Proj, permute: Option<usize>) -> (Vec<u64>, Vec<u8>, f32) {
    let Proj::Ternary(m) = p else {
        panic!("expected ternary")
    };
    let (rows, cols) = (m.rows(), m.cols());
    let mut trits = m.to_trits();
    if let Some(hd) = permute {
        trits = permute_rows(&trits, rows, cols, hd);
    }
    let t = Ternary {
        rows,
        cols,
        trits,
        scale: m.scale(),
    };
    (
        vec![cols as u64, rows as u64],
        encode_i2s(&t).unwrap(),
        m.scale(),
    )
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn llama_gguf_with_permuted_qk_matches_hf() {
    let Some(s) = common::shared() else { return };
    // TinyStories 1M without its per-linear input norms (GGUF `llama` has no such tensors).
    let src = s.join("data/real-models/bitllama2c-tinystories-1m");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(
        src.join("model.safetensors"),
        tmp.path().join("model.safetensors"),
    )
    .unwrap();
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    cfg["quantization_config"]["use_rms_norm"] = false.into();
    std::fs::write(tmp.path().join("config.json"), cfg.to_string()).unwrap();
    let hf = Model::load(tmp.path()).unwrap();
    let c = &hf.config;

    let mut w = GgufWriter::new();
    let kv = |k: &str| format!("llama.{k}");
    w.add_kv("general.architecture", Value::String("llama".into()));
    for (k, v) in [
        ("block_count", c.n_layers),
        ("embedding_length", c.dim),
        ("feed_forward_length", c.ffn_dim),
        ("attention.head_count", c.n_heads),
        ("attention.head_count_kv", c.n_kv_heads),
        ("context_length", c.max_context),
        ("rope.dimension_count", c.head_dim),
    ] {
        w.add_kv(kv(k), Value::U32(v as u32));
    }
    w.add_kv(kv("rope.freq_base"), Value::F32(c.rope_theta));
    w.add_kv(
        kv("attention.layer_norm_rms_epsilon"),
        Value::F32(c.norm_eps),
    );
    let bitnet_kernels::DenseMatrix::F32 { data, .. } = &hf.weights.token_embd else {
        panic!()
    };
    w.add_tensor(
        "token_embd.weight",
        &[c.dim as u64, c.vocab_size as u64],
        GgmlType::F32,
        f32_bytes(data),
    )
    .unwrap();
    w.add_tensor(
        "output_norm.weight",
        &[c.dim as u64],
        GgmlType::F32,
        f32_bytes(&hf.weights.output_norm),
    )
    .unwrap();
    for (i, l) in hf.weights.layers.iter().enumerate() {
        let vec = |n: &str, v: &[f32]| (format!("blk.{i}.{n}.weight"), v.len(), f32_bytes(v));
        for (name, n, bytes) in [vec("attn_norm", &l.attn_norm), vec("ffn_norm", &l.ffn_norm)] {
            w.add_tensor(name, &[n as u64], GgmlType::F32, bytes)
                .unwrap();
        }
        for (n, lin, perm) in [
            ("attn_q", &l.wq, Some(c.head_dim)),
            ("attn_k", &l.wk, Some(c.head_dim)),
            ("attn_v", &l.wv, None),
            ("attn_output", &l.wo, None),
            ("ffn_gate", &l.w_gate, None),
            ("ffn_up", &l.w_up, None),
            ("ffn_down", &l.w_down, None),
        ] {
            let (dims, bytes, _) = i2s(&lin.proj, perm);
            w.add_tensor(format!("blk.{i}.{n}.weight"), &dims, GgmlType::I2S, bytes)
                .unwrap();
        }
    }
    let path = tmp.path().join("llama.gguf");
    w.write(&path).unwrap();
    let gg = Model::load(&path).unwrap();
    assert_eq!(gg.config.rope_style, RopeStyle::Interleaved);
    let (a, b) = (common::all_logits(&gg, &IDS), common::all_logits(&hf, &IDS));
    let err = rel_l2(&a, &b);
    eprintln!("llama GGUF (interleaved, permuted Q/K) vs HF: rel L2 {err:.3e}");
    assert!(err < 1e-4, "rel L2 {err:e}");
    for (t, (x, y)) in a
        .chunks(c.vocab_size)
        .zip(b.chunks(c.vocab_size))
        .enumerate()
    {
        assert_eq!(argmax(x), argmax(y), "position {t}");
    }
    // Without the permutation the same file would be wrong: check the test can fail.
    let f = GgufFile::open(&path).unwrap();
    let mut w2 = GgufWriter::new();
    for (k, v) in f.metadata() {
        w2.add_kv(k.clone(), v.clone());
    }
    for t in f.tensors() {
        let data = if t.name.ends_with("attn_q.weight") || t.name.ends_with("attn_k.weight") {
            let i: usize = t.name.split('.').nth(1).unwrap().parse().unwrap();
            let l = &hf.weights.layers[i];
            i2s(
                &if t.name.contains("attn_q") {
                    &l.wq
                } else {
                    &l.wk
                }
                .proj,
                None,
            )
            .1
        } else {
            f.tensor_data(t).to_vec()
        };
        w2.add_tensor(t.name.clone(), &t.dims, t.ggml_type, data)
            .unwrap();
    }
    let unpermuted = tmp.path().join("unpermuted.gguf");
    w2.write(&unpermuted).unwrap();
    let err = rel_l2(
        &common::all_logits(&Model::load(&unpermuted).unwrap(), &IDS),
        &b,
    );
    assert!(
        err > 1e-2,
        "unpermuted Q/K should not match (rel L2 {err:e})"
    );
}

#[test]
fn llamacpp_bitnet_arch_with_scale_tensors() {
    let Some(s) = common::shared() else { return };
    let src = s.join("data/bitnetcpp/tiny/model-i2_s.gguf");
    let reference = Model::load(&src).unwrap();
    // Rewrite as llama.cpp's `bitnet`: each ternary matrix stores half its scale and carries a
    // `.scale` tensor of 2 that multiplies; relu² via `bitnet.hidden_activation`.
    let f = GgufFile::open(&src).unwrap();
    let mut w = GgufWriter::new();
    for (k, v) in f.metadata() {
        let k = k.replace("bitnet-25.", "bitnet.");
        let v = if k == "general.architecture" {
            Value::String("bitnet".into())
        } else {
            v.clone()
        };
        w.add_kv(k, v);
    }
    w.add_kv("bitnet.hidden_activation", Value::String("relu2".into()));
    for t in f.tensors() {
        if t.ggml_type == GgmlType::I2S {
            let (rows, cols) = (t.dims[1] as usize, t.dims[0] as usize);
            let d = bitnet_quants::ternary_from_ggml(GgmlType::I2S, f.tensor_data(t), rows, cols)
                .unwrap();
            let half = Ternary {
                scale: d.scale / 2.0,
                ..d
            };
            w.add_tensor(
                t.name.clone(),
                &t.dims,
                GgmlType::I2S,
                encode_i2s(&half).unwrap(),
            )
            .unwrap();
            let sname = t.name.replace(".weight", ".scale");
            w.add_tensor(sname, &[1], GgmlType::F32, 2.0f32.to_le_bytes().to_vec())
                .unwrap();
        } else {
            w.add_tensor(
                t.name.clone(),
                &t.dims,
                t.ggml_type,
                f.tensor_data(t).to_vec(),
            )
            .unwrap();
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bitnet.gguf");
    w.write(&path).unwrap();
    let m = Model::load(&path).unwrap();
    assert_eq!(m.config.arch_name, "bitnet");
    assert_eq!(
        common::all_logits(&m, &IDS),
        common::all_logits(&reference, &IDS)
    );
}

#[test]
fn modules_to_not_convert_stay_float() {
    let Some(s) = common::shared() else { return };
    let src = s.join("data/real-models/bitllama2c-tinystories-1m");
    let set = SafetensorsSet::open(&src).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // layer 0's down_proj as an F32 matrix holding exactly the packed weights' t·weight_scale.
    let original = Model::load(&src).unwrap();
    let Proj::Ternary(down) = &original.weights.layers[0].w_down.proj else {
        panic!()
    };
    let dense: Vec<f32> = down
        .to_trits()
        .iter()
        .map(|&t| t as f32 * down.scale())
        .collect();
    let mut names: Vec<String> = set
        .tensors()
        .map(|t| t.name.clone())
        .filter(|n| !n.starts_with("model.layers.0.mlp.down_proj."))
        .collect();
    names.sort();
    let mut header = serde_json::Map::new();
    let mut blobs: Vec<Vec<u8>> = Vec::new();
    let mut off = 0usize;
    for n in &names {
        let t = set.get(n).unwrap();
        header.insert(n.clone(), serde_json::json!({"dtype": format!("{:?}", t.dtype), "shape": t.shape, "data_offsets": [off, off + t.bytes()]}));
        off += t.bytes();
        blobs.push(set.data(t).to_vec());
    }
    let bytes: Vec<u8> = dense.iter().flat_map(|v| v.to_le_bytes()).collect();
    header.insert(
        "model.layers.0.mlp.down_proj.weight".into(),
        serde_json::json!({"dtype": "F32", "shape": [down.rows(), down.cols()], "data_offsets": [off, off + bytes.len()]}),
    );
    blobs.push(bytes);
    let mut h = serde_json::Value::Object(header).to_string().into_bytes();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    for b in &blobs {
        out.extend_from_slice(b);
    }
    std::fs::write(tmp.path().join("model.safetensors"), out).unwrap();
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    cfg["quantization_config"]["modules_to_not_convert"] =
        serde_json::json!(["lm_head", "layers.0.mlp.down_proj"]);
    std::fs::write(tmp.path().join("config.json"), cfg.to_string()).unwrap();

    let m = Model::load(tmp.path()).unwrap();
    let l0 = &m.weights.layers[0];
    assert!(matches!(l0.w_down.proj, Proj::Dense(_)) && l0.w_down.input_norm.is_none());
    assert!(matches!(l0.w_up.proj, Proj::Ternary(_)) && l0.w_up.input_norm.is_some());
    // Same weights, but that one module now sees its float input (no own RMSNorm, no int8
    // quantization): close to the original model, not equal.
    let (a, b) = (
        common::all_logits(&m, &IDS),
        common::all_logits(&original, &IDS),
    );
    let err = rel_l2(&a, &b);
    eprintln!("one float module vs all ternary: rel L2 {err:.3e}");
    assert!(
        a.iter().all(|v| v.is_finite()) && err > 1e-6,
        "rel L2 {err:e}"
    );
}

#[test]
fn onebitllm_sub_norm_names() {
    let Some(s) = common::shared() else { return };
    let src = s.join("data/bitnetcpp/tiny");
    let set = SafetensorsSet::open(&src).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(src.join("config.json"), tmp.path().join("config.json")).unwrap();
    // Same tensors, sub-norms under 1bitLLM's names (inner_attn_ln, ffn_layernorm).
    let rename = |n: &str| {
        n.replace("self_attn.attn_sub_norm", "self_attn.inner_attn_ln")
            .replace("mlp.ffn_sub_norm", "mlp.ffn_layernorm")
    };
    let mut header = serde_json::Map::new();
    let mut body = Vec::new();
    for t in set.tensors() {
        header.insert(
            rename(&t.name),
            serde_json::json!({"dtype": format!("{:?}", t.dtype), "shape": t.shape, "data_offsets": [body.len(), body.len() + t.bytes()]}),
        );
        body.extend_from_slice(set.data(t));
    }
    let mut h = serde_json::Value::Object(header).to_string().into_bytes();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(&body);
    std::fs::write(tmp.path().join("model.safetensors"), out).unwrap();
    let renamed = Model::load(tmp.path()).unwrap();
    let original = Model::load(&src).unwrap();
    assert_eq!(
        common::all_logits(&renamed, &IDS),
        common::all_logits(&original, &IDS)
    );
}

#[test]
fn online_autobitlinear_is_the_master_path() {
    let Some(s) = common::shared() else { return };
    let src = s.join("data/bitnetcpp/tiny");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(
        src.join("model.safetensors"),
        tmp.path().join("model.safetensors"),
    )
    .unwrap();
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    cfg["quantization_config"] = serde_json::json!({
        "quant_method": "bitnet", "linear_class": "autobitlinear", "quantization_mode": "online"
    });
    std::fs::write(tmp.path().join("config.json"), cfg.to_string()).unwrap();
    let online = Model::load(tmp.path()).unwrap();
    let master = Model::load(&src).unwrap();
    assert_eq!(
        common::all_logits(&online, &IDS),
        common::all_logits(&master, &IDS)
    );
    // `online` with `bitlinear` (which has no online mode in transformers) is refused.
    cfg["quantization_config"]["linear_class"] = "bitlinear".into();
    std::fs::write(tmp.path().join("config.json"), cfg.to_string()).unwrap();
    let e = Model::load(tmp.path()).unwrap_err().to_string();
    assert!(e.contains("quantization_config.quantization_mode"), "{e}");
    // Offline with float weights: the packed weights it promises are missing.
    cfg["quantization_config"]["quantization_mode"] = "offline".into();
    std::fs::write(tmp.path().join("config.json"), cfg.to_string()).unwrap();
    let e = Model::load(tmp.path()).unwrap_err().to_string();
    assert!(
        e.contains("model.layers.0.self_attn.q_proj.weight") && e.contains("packed U8"),
        "{e}"
    );
}
