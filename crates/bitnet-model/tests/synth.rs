//! Synthetic checkpoints (`bitnet synth`, crates/bitnet-convert) in every layout load and agree:
//! HF bf16 master ≈ GGUF I2_S (same scales), TQ2_0 = TQ1_0 = I2_S with fp16 scales (exactly),
//! HF packed = I2_S with transformers' bf16 `weight_scale` (exactly), on the `tiny` shape and
//! on `gqa` (head_dim 128, 4:1 grouped-query attention).

mod common;

use std::path::Path;

use bitnet_convert::synth::{synth, EmbedType, Format, Shape, SynthSpec};
use bitnet_kernels::TernaryMatrix;
use bitnet_model::{argmax, rel_l2, Model, Proj};

const PROMPTS: [&[u32]; 2] = [
    &[1, 17, 300, 42, 5, 99, 250, 7],
    &[1, 16, 435, 354, 273, 192, 111, 30, 449],
];

pub fn write(shape: &str, format: Format, seed: u64, dir: &Path) -> std::path::PathBuf {
    let out = dir.join(format!(
        "{shape}-{}{}",
        format.name(),
        if format.is_gguf() { ".gguf" } else { "" }
    ));
    let spec = SynthSpec {
        shape: Shape::named(shape).unwrap(),
        format,
        seed,
        embed: EmbedType::F16,
    };
    synth(&spec, &out, &mut |_, _| {}).unwrap();
    out
}

/// A copy of `m` with every ternary scale replaced by `f(scale)`.
fn rescale(m: &Model, f: impl Fn(f32) -> f32) -> Model {
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
            w.proj = Proj::Ternary(
                TernaryMatrix::from_trits(t.rows(), t.cols(), &t.to_trits(), f(t.scale())).unwrap(),
            );
        }
    }
    m
}

fn bf16(x: f32) -> f32 {
    half::bf16::from_f32(x).to_f32()
}

fn check_shape(shape: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let load = |f: Format| Model::load(write(shape, f, 1, tmp.path())).unwrap();
    let master = load(Format::HfBf16);
    let i2s = load(Format::GgufI2s);
    let tq2 = load(Format::GgufTq2);
    let tq1 = load(Format::GgufTq1);
    let packed = load(Format::HfPacked);
    let s = Shape::named(shape).unwrap();
    for m in [&master, &i2s, &tq2, &tq1, &packed] {
        let c = &m.config;
        assert_eq!(
            (c.vocab_size, c.dim, c.ffn_dim, c.n_layers),
            (s.vocab, s.hidden, s.ffn, s.layers)
        );
        assert_eq!(
            (c.n_heads, c.n_kv_heads, c.head_dim),
            (s.heads, s.kv_heads, s.hidden / s.heads)
        );
    }
    let i2s16 = rescale(&i2s, |x| half::f16::from_f32(x).to_f32());
    // Packed: weight_scale = bf16(1/mean|W|) divides, i.e. multiplies by 1/that.
    let i2s_packed = rescale(&i2s, |x| 1.0 / bf16(1.0 / x));
    for (p, ids) in PROMPTS.iter().enumerate() {
        let v = s.vocab;
        let want = common::all_logits(&master, ids);
        let got = common::all_logits(&i2s, ids);
        let err = rel_l2(&got, &want);
        eprintln!("{shape} prompt {p}: I2_S vs HF bf16 master rel L2 {err:.3e}");
        assert!(err <= 5e-3, "{shape} prompt {p}: I2_S vs master {err:e}");
        for (t, (a, b)) in got.chunks(v).zip(want.chunks(v)).enumerate() {
            assert_eq!(argmax(a), argmax(b), "{shape} prompt {p} position {t}");
        }
        let l2 = common::all_logits(&tq2, ids);
        assert_eq!(
            l2,
            common::all_logits(&tq1, ids),
            "{shape} prompt {p}: TQ2_0 vs TQ1_0"
        );
        assert_eq!(
            l2,
            common::all_logits(&i2s16, ids),
            "{shape} prompt {p}: TQ vs I2_S@fp16"
        );
        let lp = common::all_logits(&packed, ids);
        assert_eq!(
            lp,
            common::all_logits(&i2s_packed, ids),
            "{shape} prompt {p}: packed vs I2_S@bf16 1/ws"
        );
        eprintln!(
            "{shape} prompt {p}: TQ vs I2_S {:.3e}, packed vs master {:.3e}",
            rel_l2(&l2, &got),
            rel_l2(&lp, &want)
        );
    }
}

#[test]
fn synth_tiny_formats_agree() {
    check_shape("tiny");
}

#[test]
fn synth_gqa_formats_agree() {
    check_shape("gqa");
}
