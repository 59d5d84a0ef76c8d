//! One random BitNet model written by other people's tools (shared/data/bitnetcpp/tiny):
//! bitnet.cpp's I2_S GGUF, gguf-py's TQ2_0/TQ1_0 GGUFs and the HF bf16 master folder all load
//! and give the same logits.
//!
//! What "the same" means (MANIFEST.md): I2_S holds each matrix's scale as f32 = mean|W| of the
//! HF master, which is exactly what ternarizing the master gives, so those two agree to float
//! rounding. TQ1_0/TQ2_0 hold the same trits with the scale rounded to fp16 (≤ 2^-11 relative);
//! this random model amplifies a 1e-4 relative scale change to ~1.6e-2 in logits (int8
//! activation roundings flip), so TQ is compared exactly against I2_S with fp16-rounded scales,
//! and against plain I2_S only by argmax and a loose bound.

mod common;

use bitnet_kernels::TernaryMatrix;
use bitnet_model::{argmax, rel_l2, Activation, Arch, Model, Proj, RopeStyle};

const PROMPTS: [&[u32]; 3] = [
    &[1, 5, 77, 300, 12, 999, 42],
    &[1, 400, 401, 402, 3, 3, 3, 3, 900, 17, 250],
    &[2, 0, 500],
];

fn load(name: &str) -> Option<Model> {
    let s = common::shared()?;
    let dir = s.join("data/bitnetcpp/tiny");
    Some(Model::load(if name.is_empty() { dir } else { dir.join(name) }).unwrap())
}

fn assert_same_argmax(got: &[f32], reference: &[f32], vocab: usize, what: &str) {
    for (t, (a, b)) in got.chunks(vocab).zip(reference.chunks(vocab)).enumerate() {
        assert_eq!(
            argmax(a),
            argmax(b),
            "{what}: argmax differs at position {t}"
        );
    }
}

#[test]
fn tiny_config_from_every_format() {
    for name in [
        "model-i2_s.gguf",
        "model-tq2_0.gguf",
        "model-tq1_0.gguf",
        "",
    ] {
        let Some(m) = load(name) else { return };
        let c = &m.config;
        assert_eq!(c.arch, Arch::BitNet, "{name}");
        assert_eq!(
            (
                c.vocab_size,
                c.dim,
                c.ffn_dim,
                c.n_layers,
                c.n_heads,
                c.n_kv_heads,
                c.head_dim
            ),
            (1000, 512, 1024, 2, 4, 1, 128),
            "{name}"
        );
        assert_eq!(
            (c.activation, c.rope_style),
            (Activation::Relu2, RopeStyle::Neox),
            "{name}"
        );
        assert_eq!(c.rope_theta, 500000.0, "{name}");
        assert!((c.norm_eps - 1e-5).abs() < 1e-12, "{name}");
        assert!(
            c.tied_embeddings && c.sub_norms && m.weights.output.is_none(),
            "{name}"
        );
        assert_eq!(
            (c.bos_token_id, c.eos_token_id),
            (Some(1), Some(2)),
            "{name}"
        );
        // GGUFs: F16 embedding (MANIFEST). HF: bf16 values that all fit f16 exactly are kept as F16.
        eprintln!("{name}: token_embd {} bytes", m.weights.token_embd.bytes());
        if !name.is_empty() {
            assert!(
                matches!(
                    m.weights.token_embd,
                    bitnet_kernels::DenseMatrix::F16 { .. }
                ),
                "{name}"
            );
        }
    }
}

#[test]
fn tiny_i2s_matches_hf_bf16_master() {
    let Some(i2s) = load("model-i2_s.gguf") else {
        return;
    };
    let hf = load("").unwrap();
    for (p, ids) in PROMPTS.iter().enumerate() {
        let reference = common::all_logits(&hf, ids);
        let got = common::all_logits(&i2s, ids);
        let err = rel_l2(&got, &reference);
        eprintln!("prompt {p}: I2_S vs HF bf16 master rel L2 {err:.3e}");
        assert!(
            err <= 5e-3,
            "prompt {p}: I2_S vs HF master rel L2 {err:.3e}"
        );
        assert_same_argmax(&got, &reference, 1000, &format!("prompt {p} I2_S vs HF"));
    }
}

/// A copy of `m` whose ternary scales are rounded to fp16, as the TQ formats store them.
fn with_fp16_scales(m: &Model) -> Model {
    let mut m = m.clone();
    for l in &mut m.weights.layers {
        for w in [
            &mut l.wq,
            &mut l.wk,
            &mut l.wv,
            &mut l.wo,
            &mut l.w_gate,
            &mut l.w_up,
            &mut l.w_down,
        ] {
            let Proj::Ternary(t) = &w.proj else {
                panic!("expected ternary")
            };
            let s = half::f16::from_f32(t.scale()).to_f32();
            w.proj = Proj::Ternary(
                TernaryMatrix::from_trits(t.rows(), t.cols(), &t.to_trits(), s).unwrap(),
            );
        }
    }
    m
}

#[test]
fn tiny_tq_formats_match_i2s() {
    let Some(i2s) = load("model-i2_s.gguf") else {
        return;
    };
    let i2s16 = with_fp16_scales(&i2s);
    let tq2 = load("model-tq2_0.gguf").unwrap();
    let tq1 = load("model-tq1_0.gguf").unwrap();
    for (p, ids) in PROMPTS.iter().enumerate() {
        let l2 = common::all_logits(&tq2, ids);
        let l1 = common::all_logits(&tq1, ids);
        // TQ1_0 and TQ2_0 carry identical numbers; I2_S with fp16 scales too.
        assert_eq!(l1, l2, "prompt {p}: TQ1_0 and TQ2_0 logits differ");
        assert_eq!(
            common::all_logits(&i2s16, ids),
            l2,
            "prompt {p}: TQ2_0 vs I2_S@fp16 scales"
        );
        let reference = common::all_logits(&i2s, ids);
        let err = rel_l2(&l2, &reference);
        eprintln!("prompt {p}: TQ2_0/TQ1_0 vs I2_S rel L2 {err:.3e}");
        assert!(err <= 3e-2, "prompt {p}: TQ vs I2_S rel L2 {err:.3e}");
        assert_same_argmax(&l2, &reference, 1000, &format!("prompt {p} TQ vs I2_S"));
    }
}
