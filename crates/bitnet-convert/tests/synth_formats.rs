//! `synth` writes the same model in all five formats: read each back with independent readers
//! (bitnet-gguf, the `safetensors` crate) and the bitnet-quants decoders.

use std::path::{Path, PathBuf};

use bitnet_convert::synth::*;
use bitnet_gguf::{GgmlType, GgufFile, Value};
use bitnet_quants::*;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bitnet-synth-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(dir: &Path, shape: &str, format: Format, seed: u64, embed: EmbedType) -> PathBuf {
    let out = if format.is_gguf() {
        dir.join(format!("{}-{seed}-{embed:?}.gguf", format.name()))
    } else {
        dir.join(format!("{}-{seed}", format.name()))
    };
    let spec = SynthSpec {
        shape: Shape::named(shape).unwrap(),
        format,
        seed,
        embed,
    };
    let mut last = (0, 0);
    let summary = synth(&spec, &out, &mut |d, t| last = (d, t)).unwrap();
    assert_eq!(last.0, last.1, "progress ends at the total");
    let on_disk: u64 = summary
        .files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    assert_eq!(summary.bytes, on_disk);
    out
}

/// Every matrix of one checkpoint as trits + multiplicative scale, keyed by GGUF name.
struct Loaded {
    mats: Vec<(String, Ternary)>,
    norms: Vec<(String, Vec<f32>)>,
    embed: Vec<f32>,
}

fn load_gguf(path: &Path) -> Loaded {
    let f = GgufFile::open(path).unwrap();
    let mut l = Loaded {
        mats: vec![],
        norms: vec![],
        embed: vec![],
    };
    for info in f.tensors() {
        let data = f.tensor_data(info);
        let n = info.n_elements() as usize;
        match info.ggml_type {
            GgmlType::I2S | GgmlType::Tq1_0 | GgmlType::Tq2_0 => {
                let (cols, rows) = (info.dims[0] as usize, info.dims[1] as usize);
                let t = ternary_from_ggml(info.ggml_type, data, rows, cols)
                    .map_err(|e| e.with_tensor(&info.name))
                    .unwrap();
                l.mats.push((info.name.clone(), t));
            }
            ty if info.name == GGUF_EMBED => l.embed = dequantize(ty, data, n).unwrap(),
            GgmlType::F32 => l.norms.push((
                info.name.clone(),
                dequantize(GgmlType::F32, data, n).unwrap(),
            )),
            ty => panic!("{}: unexpected type {ty}", info.name),
        }
    }
    l
}

fn hf_to_gguf_name(hf: &str) -> String {
    let s = Shape::named("tiny").unwrap();
    for l in 0..s.layers {
        for p in Proj::ALL {
            if p.hf_name(l) == hf {
                return p.gguf_name(l);
            }
        }
        for n in Norm::LAYER {
            if n.hf_name(l) == hf {
                return n.gguf_name(l);
            }
        }
    }
    assert_eq!(hf, "model.norm.weight");
    "output_norm.weight".into()
}

fn load_hf(dir: &Path) -> (Loaded, serde_json::Value) {
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut l = Loaded {
        mats: vec![],
        norms: vec![],
        embed: vec![],
    };
    let bf16 = |v: &safetensors::tensor::TensorView| {
        assert_eq!(v.dtype(), safetensors::Dtype::BF16);
        dequantize(GgmlType::Bf16, v.data(), v.shape().iter().product()).unwrap()
    };
    let mut names: Vec<String> = st.names().into_iter().map(|s| s.to_string()).collect();
    names.sort();
    for name in names {
        let v = st.tensor(&name).unwrap();
        if name.ends_with("weight_scale") {
            continue;
        }
        if name == HF_EMBED {
            l.embed = bf16(&v);
        } else if v.shape().len() == 1 {
            l.norms.push((hf_to_gguf_name(&name), bf16(&v)));
        } else if v.dtype() == safetensors::Dtype::U8 {
            // bitlinear: weight_scale divides → multiplicative scale 1/ws.
            let ws = bf16(&st.tensor(&format!("{name}_scale")).unwrap());
            assert_eq!(ws.len(), 1);
            let (out, inp) = (v.shape()[0] * 4, v.shape()[1]);
            let t = ternary_from_hf_packed(v.data(), out, inp, 1.0 / ws[0]).unwrap();
            l.mats.push((hf_to_gguf_name(&name), t));
        } else {
            let w = bf16(&v);
            let t = ternarize_absmean(&w, v.shape()[0], v.shape()[1]).unwrap();
            l.mats.push((hf_to_gguf_name(&name), t));
        }
    }
    l.mats.sort_by(|a, b| a.0.cmp(&b.0));
    l.norms.sort_by(|a, b| a.0.cmp(&b.0));
    (l, cfg)
}

fn sorted(mut l: Loaded) -> Loaded {
    l.mats.sort_by(|a, b| a.0.cmp(&b.0));
    l.norms.sort_by(|a, b| a.0.cmp(&b.0));
    l
}

fn fp16(x: f32) -> f32 {
    f16_bits_to_f32(f32_to_f16_bits(x))
}

fn ulps(a: f32, b: f32) -> i64 {
    (a.to_bits() as i64 - b.to_bits() as i64).abs()
}

#[test]
fn all_five_formats_hold_the_same_model() {
    let dir = tmp("five");
    let s = Shape::named("tiny").unwrap();
    let model = SynthModel::new(s.clone(), 7);
    let i2s = sorted(load_gguf(&write(
        &dir,
        "tiny",
        Format::GgufI2s,
        7,
        EmbedType::F16,
    )));
    let tq2 = sorted(load_gguf(&write(
        &dir,
        "tiny",
        Format::GgufTq2,
        7,
        EmbedType::F16,
    )));
    let tq1 = sorted(load_gguf(&write(
        &dir,
        "tiny",
        Format::GgufTq1,
        7,
        EmbedType::F16,
    )));
    let (packed, pcfg) = load_hf(&write(&dir, "tiny", Format::HfPacked, 7, EmbedType::F16));
    let (master, mcfg) = load_hf(&write(&dir, "tiny", Format::HfBf16, 7, EmbedType::F16));

    assert_eq!(i2s.mats.len(), 7 * s.layers);
    assert_eq!(i2s.norms.len(), 4 * s.layers + 1);
    for other in [&tq2, &tq1, &packed, &master] {
        assert_eq!(other.mats.len(), i2s.mats.len());
        for ((na, a), (nb, b)) in i2s.mats.iter().zip(&other.mats) {
            assert_eq!(na, nb);
            assert_eq!((a.rows, a.cols), (b.rows, b.cols), "{na}");
            assert!(a.trits == b.trits, "{na}: trits differ between formats");
        }
        assert_eq!(other.norms, i2s.norms, "norms");
        assert!(other.embed == i2s.embed, "embeddings");
    }
    // Scales: I2_S = mean|W| of the master; TQ = fp16 of it; packed = 1/bf16(1/mean);
    // absmean of the master = 1/(1/mean) within an ulp.
    for (k, (name, a)) in i2s.mats.iter().enumerate() {
        let in_f = a.cols;
        let s_master =
            bf16_bits_to_f32(f32_to_bf16_bits((1.0 / (0.6 * in_f as f64).sqrt()) as f32));
        let nnz = a.trits.iter().filter(|&&t| t != 0).count();
        let mean = (nnz as f64 * s_master as f64 / a.len() as f64) as f32;
        assert_eq!(a.scale, mean, "{name}");
        assert!(
            (0.57..0.63).contains(&(nnz as f64 / a.len() as f64)),
            "{name}"
        );
        assert_eq!(tq2.mats[k].1.scale, fp16(mean), "{name}");
        assert_eq!(tq1.mats[k].1.scale, fp16(mean), "{name}");
        let ws = bf16_bits_to_f32(f32_to_bf16_bits(1.0 / mean));
        assert_eq!(packed.mats[k].1.scale, 1.0 / ws, "{name}");
        assert!(ulps(master.mats[k].1.scale, mean) <= 1, "{name}");
    }
    // The master holds exactly t · s_master.
    let m = model.matrix(0, Proj::Q);
    assert_eq!(m.s_master, SynthModel::master_scale(s.hidden));
    assert_eq!(
        m.s_master,
        bf16_bits_to_f32(f32_to_bf16_bits(1.0 / (0.6f32 * 256.0).sqrt()))
    );

    // Norms ~ 1 ± 0.1, embeddings ~ 0.05·N(0,1).
    let norm = &i2s.norms[0].1;
    let mean = norm.iter().sum::<f32>() / norm.len() as f32;
    assert!((mean - 1.0).abs() < 0.03 && norm.iter().all(|x| (0.6..1.4).contains(x)));
    let e = &i2s.embed;
    assert_eq!(e.len(), s.vocab * s.hidden);
    let rms = (e.iter().map(|x| x * x).sum::<f32>() / e.len() as f32).sqrt();
    assert!((rms - 0.05).abs() < 0.002, "{rms}");

    for (cfg, packed) in [(&pcfg, true), (&mcfg, false)] {
        assert_eq!(cfg["architectures"][0], "BitNetForCausalLM");
        assert_eq!(cfg["model_type"], "bitnet");
        assert_eq!(cfg["hidden_act"], "relu2");
        assert_eq!(cfg["torch_dtype"], "bfloat16");
        assert_eq!(cfg["tie_word_embeddings"], true);
        assert_eq!(cfg["vocab_size"], 512);
        assert_eq!(cfg["hidden_size"], 256);
        assert_eq!(cfg["intermediate_size"], 512);
        assert_eq!(cfg["num_hidden_layers"], 2);
        assert_eq!(cfg["num_attention_heads"], 4);
        assert_eq!(cfg["num_key_value_heads"], 2);
        assert_eq!(cfg["rope_theta"].as_f64(), Some(500000.0));
        assert_eq!(cfg["rms_norm_eps"].as_f64(), Some(1e-5));
        assert_eq!(cfg["max_position_embeddings"], 4096);
        assert_eq!(
            (cfg["bos_token_id"].clone(), cfg["eos_token_id"].clone()),
            (1.into(), 2.into())
        );
        let q = &cfg["quantization_config"];
        if packed {
            assert_eq!(q["quant_method"], "bitnet");
            assert_eq!(q["linear_class"], "bitlinear");
            assert_eq!(q["quantization_mode"], "offline");
        } else {
            assert!(q.is_null());
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn gguf_metadata_and_layout() {
    let dir = tmp("meta");
    for (fmt, ty, ftype) in [
        (Format::GgufI2s, GgmlType::I2S, 40),
        (Format::GgufTq2, GgmlType::Tq2_0, 37),
        (Format::GgufTq1, GgmlType::Tq1_0, 36),
    ] {
        let f = GgufFile::open(write(&dir, "gqa", fmt, 3, EmbedType::F16)).unwrap();
        let u = |k: &str| f.get(&format!("bitnet-b1.58.{k}")).and_then(Value::as_u64);
        assert_eq!(f.architecture(), Some("bitnet-b1.58"));
        assert_eq!(u("vocab_size"), Some(1024));
        assert_eq!(u("embedding_length"), Some(1024));
        assert_eq!(u("feed_forward_length"), Some(2048));
        assert_eq!(u("block_count"), Some(2));
        assert_eq!(u("attention.head_count"), Some(8));
        assert_eq!(u("attention.head_count_kv"), Some(2));
        assert_eq!(u("rope.dimension_count"), Some(128));
        assert_eq!(u("context_length"), Some(4096));
        assert_eq!(
            f.get("bitnet-b1.58.attention.layer_norm_rms_epsilon"),
            Some(&Value::F32(1e-5))
        );
        assert_eq!(
            f.get("bitnet-b1.58.rope.freq_base"),
            Some(&Value::F32(500000.0))
        );
        assert_eq!(f.get("general.file_type"), Some(&Value::U32(ftype)));
        assert!(f
            .metadata()
            .iter()
            .all(|(k, _)| !k.starts_with("tokenizer.")));
        assert_eq!(f.tensors().len(), 2 * 11 + 2);
        let e = f.tensor("token_embd.weight").unwrap();
        assert_eq!(
            (e.ggml_type, e.dims.clone()),
            (GgmlType::F16, vec![1024, 1024])
        );
        let k = f.tensor("blk.1.attn_k.weight").unwrap();
        assert_eq!((k.ggml_type, k.dims.clone()), (ty, vec![1024, 256]));
        let d = f.tensor("blk.0.ffn_down.weight").unwrap();
        assert_eq!(d.dims, vec![2048, 1024]);
        for n in [
            "blk.0.attn_norm",
            "blk.0.attn_sub_norm",
            "blk.0.ffn_norm",
            "output_norm",
        ] {
            let t = f.tensor(&format!("{n}.weight")).unwrap();
            assert_eq!(
                (t.ggml_type, t.dims.clone()),
                (GgmlType::F32, vec![1024]),
                "{n}"
            );
        }
        assert_eq!(
            f.tensor("blk.1.ffn_sub_norm.weight").unwrap().dims,
            vec![2048]
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn deterministic_and_seeded_and_embed_types_agree() {
    let dir = tmp("det");
    let a = std::fs::read(write(&dir, "tiny", Format::GgufTq1, 5, EmbedType::F16)).unwrap();
    let b_path = dir.join("again.gguf");
    let spec = SynthSpec {
        shape: Shape::named("tiny").unwrap(),
        format: Format::GgufTq1,
        seed: 5,
        embed: EmbedType::F16,
    };
    synth(&spec, &b_path, &mut |_, _| {}).unwrap();
    assert!(
        a == std::fs::read(&b_path).unwrap(),
        "same seed, same bytes"
    );
    let c = std::fs::read(write(&dir, "tiny", Format::GgufTq1, 6, EmbedType::F16)).unwrap();
    assert!(a != c, "another seed, another model");
    let f16 = load_gguf(&write(&dir, "tiny", Format::GgufI2s, 5, EmbedType::F16)).embed;
    let f32 = load_gguf(&write(&dir, "tiny", Format::GgufI2s, 5, EmbedType::F32)).embed;
    let bf = load_gguf(&write(&dir, "tiny", Format::GgufI2s, 5, EmbedType::Bf16)).embed;
    assert!(f16 == f32 && f32 == bf);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_names_are_refused() {
    assert!("gguf-q4"
        .parse::<Format>()
        .unwrap_err()
        .to_string()
        .contains("gguf-i2s"));
    assert!("f8".parse::<EmbedType>().is_err());
    assert!(Shape::named("7b").is_none());
    let s = Shape::named("2b4t").unwrap();
    assert_eq!(
        (s.vocab, s.hidden, s.ffn, s.layers, s.heads, s.kv_heads),
        (128256, 2560, 6912, 30, 20, 5)
    );
    assert_eq!((s.bos, s.eos, s.head_dim()), (128000, 128001, 128));
}
