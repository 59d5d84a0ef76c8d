//! Golden tests against transformers' logits: every case of scripts/golden/cases.json whose
//! fixture is present (fixtures/transformers, written on the device machine by
//! scripts/golden/make_reference.py). Each format is compared with its own reference (packed
//! HF: transformers' BitLinear; bf16 master: WeightQuant + ActQuant; GGUF: the file's own t·scale
//! with ActQuant), tie-proof: every position within rel L2 1e-5 with the same argmax, or a
//! divergence that flipping near-tie int8 roundings of that position provably explains (see
//! `compare`), plus the greedy continuation where the fixture has one. Injected bugs fail
//! every case they affect (`injected_bugs_fail_every_case`), positions off by one included.
//!
//! Synthetic cases are rebuilt with bitnet-convert's `synth` from (shape, format, seed).

mod common;

use std::path::PathBuf;

use bitnet_model::hook::{Flip, ForceRounding, TieCandidates};
use bitnet_model::npy::{read_npy, NpyData};
use bitnet_model::{argmax, rel_l2, Logits, Model, State};

/// `fixtures/transformers` of the workspace, or `$BITNET_GOLDEN_FIXTURES` (to check freshly
/// written fixtures before committing them).
fn fixture_dir() -> PathBuf {
    std::env::var_os("BITNET_GOLDEN_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/transformers")
        })
}

fn cases() -> Vec<serde_json::Value> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/golden/cases.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    json["cases"].as_array().unwrap().clone()
}

/// `(ids, reference logits [n × vocab], vocab)` of every prompt of `case` in the manifests.
fn reference(case: &str) -> Vec<(Vec<u32>, Vec<f32>, usize)> {
    let mut out = Vec::new();
    let dir = fixture_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("manifest") && name.ends_with(".json")) {
            continue;
        }
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(e.path()).unwrap()).unwrap();
        let Some(c) = json["cases"].get(case) else {
            continue;
        };
        for (i, p) in c["prompts"].as_array().unwrap().iter().enumerate() {
            let ids: Vec<u32> = p["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            let arr = read_npy(dir.join(format!("{case}.p{i}.npy"))).unwrap();
            let NpyData::F32(data) = arr.data else {
                panic!("{case}.p{i}.npy is not float")
            };
            assert_eq!(arr.shape[0], ids.len(), "{case}.p{i}.npy rows");
            out.push((ids, data, arr.shape[1]));
        }
    }
    out
}

fn greedy_fixture(case: &str) -> Option<(Vec<u32>, Vec<u32>)> {
    let path = fixture_dir().join(format!("{case}.greedy.json"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let ids = |k: &str| {
        json[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect()
    };
    Some((ids("prompt"), ids("new_ids")))
}

#[path = "../../../scripts/golden/case_model.rs"]
mod case_model;
use case_model::model_path;

/// Per-position relative L2 where no rounding tie is involved (the agreement reached is
/// ~3e-7).
const STRICT: f64 = 1e-5;
/// How well a run with a tie flipped must match the reference at the position it explains.
const REPRODUCE: f64 = 1e-4;
/// A rounding this close to a tie (relative) can be flipped by a last-bit float difference
/// (about 100 f32 ulps: generous, since acceptance also needs the flip to reproduce the
/// reference).
const TIE_MARGIN: f32 = 1e-5;
/// Candidates tried per diverging position, and flips accepted per prompt.
const CANDIDATES: usize = 16;
/// Nearest ties whose pairs are tried when no single flip explains a position.
const PAIR_POOL: usize = 10;
const MAX_FLIPS: usize = 24;

thread_local! {
    /// Position of the prompt in [`run_flipped`]: 0, or 1 for the injected "positions off by
    /// one" bug: the prompt lands one slot late, behind a repeat of its first token (the
    /// engine refuses a gap, so the slot is filled the way a doubled BOS would fill it).
    static START: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// All logits of `ids` with `flips` forced, and the near-tie candidates of every position.
fn run_flipped(model: &Model, ids: &[u32], flips: &[Flip]) -> (Vec<f32>, Vec<Vec<(f32, Flip)>>) {
    let start = START.with(|s| s.get());
    let mut st = State::new(&model.config, start + ids.len(), ids.len()).unwrap();
    st.set_quant_hook(Some(Box::new(TieCandidates {
        keep: CANDIDATES,
        force: ForceRounding {
            flips: flips.to_vec(),
            applied: 0,
        },
        by_position: Vec::new(),
    })));
    if start > 0 {
        model
            .forward(&mut st, &ids[..1].repeat(start), 0, Logits::Last)
            .unwrap();
    }
    let got = model
        .forward(&mut st, ids, start, Logits::All)
        .unwrap()
        .to_vec();
    let cands = st
        .quant_hook()
        .and_then(|h| h.as_any().downcast_ref::<TieCandidates>())
        .map(|t| t.by_position.clone())
        .unwrap_or_default();
    (got, cands)
}

/// One prompt, tie-proof: every position must match the reference to `STRICT` with the same
/// argmax. Where a position parts from it, the roundings of that position nearest to a tie
/// (within `TIE_MARGIN`) are flipped one at a time; a divergence is accepted only if a flipped
/// run reproduces the reference there (≤ `REPRODUCE`), and the comparison goes on from there
/// with the flip applied — so the whole sequence is checked, not only its prefix.
fn compare(model: &Model, ids: &[u32], want: &[f32], vocab: usize) -> Result<String, String> {
    let row = |v: &[f32], t: usize| v[t * vocab..(t + 1) * vocab].to_vec();
    let mut flips: Vec<Flip> = Vec::new();
    let (mut got, mut cands) = run_flipped(model, ids, &flips);
    let mut worst = 0f64;
    let mut t = 0;
    while t < ids.len() {
        let (g, w) = (row(&got, t), row(want, t));
        let e = rel_l2(&g, &w);
        if e <= STRICT && argmax(&g) == argmax(&w) {
            worst = worst.max(e);
            t += 1;
            continue;
        }
        // Greedy, nearest tie first: keep a flip when it brings position t closer to the
        // reference; several roundings of one position can sit on ties at once (exact .5
        // products of f16 inputs), so one flip alone may not be enough.
        let mut fixed = None;
        let mut best = e;
        let mut trial = flips.clone();
        for &(m, c) in cands.get(t).map_or(&[][..], |v| v.as_slice()) {
            if m > TIE_MARGIN || trial.len() >= MAX_FLIPS {
                break;
            }
            trial.push(c);
            let (g2, c2) = run_flipped(model, ids, &trial);
            let (a, b) = (row(&g2, t), row(want, t));
            let e2 = rel_l2(&a, &b);
            if std::env::var_os("GOLDEN_DEBUG").is_some() {
                eprintln!("  try {c:?} margin {m:.1e}: rel L2 {e2:.2e}");
            }
            if e2 <= REPRODUCE && argmax(&a) == argmax(&b) {
                fixed = Some((trial, g2, c2));
                break;
            }
            if e2 < best {
                best = e2;
            } else {
                trial.pop();
            }
        }
        // Then pairs of the nearest ties (two roundings of one position that only together
        // reproduce the reference).
        if fixed.is_none() {
            let near: Vec<Flip> = cands
                .get(t)
                .map_or(&[][..], |v| v.as_slice())
                .iter()
                .filter(|c| c.0 <= TIE_MARGIN)
                .take(PAIR_POOL)
                .map(|c| c.1)
                .collect();
            'pairs: for i in 0..near.len() {
                for j in i + 1..near.len() {
                    let mut trial = flips.clone();
                    trial.push(near[i]);
                    trial.push(near[j]);
                    let (g2, c2) = run_flipped(model, ids, &trial);
                    let (a, b) = (row(&g2, t), row(want, t));
                    if std::env::var_os("GOLDEN_DEBUG").is_some() {
                        eprintln!("  pair {:?} {:?}: {:.2e}", near[i], near[j], rel_l2(&a, &b));
                    }
                    if rel_l2(&a, &b) <= REPRODUCE && argmax(&a) == argmax(&b) {
                        fixed = Some((trial, g2, c2));
                        break 'pairs;
                    }
                }
            }
        }
        match fixed {
            Some((f, g2, c2)) => {
                flips = f;
                got = g2;
                cands = c2;
                t += 1;
            }
            None => {
                let nearest = cands
                    .get(t)
                    .and_then(|v| v.first())
                    .map_or(f32::INFINITY, |c| c.0);
                return Err(format!(
                    "position {t}: rel L2 {e:.2e} (argmax {} vs {}), and no rounding tie \
                     explains it (nearest tie {nearest:.1e})",
                    argmax(&g),
                    argmax(&w)
                ));
            }
        }
    }
    Ok(format!(
        "strict rel L2 ≤ {worst:.1e} at every position, {} tie flip(s) proven{}",
        flips.len(),
        if flips.is_empty() {
            String::new()
        } else {
            format!(
                " at positions {:?}",
                flips.iter().map(|f| f.position).collect::<Vec<_>>()
            )
        }
    ))
}

/// Greedy decoding (batched prefill, then one token per pass) must reproduce transformers'
/// `generate()` ids, unless at the first differing step the two candidates' logits are within
/// 1e-3 of the logit range of each other (a near-tie that last-bit float differences decide).
fn greedy_compare(model: &Model, prompt: &[u32], want: &[u32], name: &str) {
    let mut st = model.new_state(prompt.len() + want.len()).unwrap();
    let mut logits = model
        .forward(&mut st, prompt, 0, Logits::Last)
        .unwrap()
        .to_vec();
    for (k, &w) in want.iter().enumerate() {
        let ours = argmax(&logits) as u32;
        if ours != w {
            let (lo, hi) = logits
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                    (a.min(v), b.max(v))
                });
            let gap = (logits[ours as usize] - logits[w as usize]) / (hi - lo);
            eprintln!(
                "{name}: greedy step {k} picks {ours}, transformers {w}: logit gap {gap:.1e} of the range"
            );
            assert!(
                gap < 1e-3,
                "{name}: greedy differs from transformers at step {k}"
            );
            return;
        }
        let pos = st.pos();
        logits = model
            .forward(&mut st, &[w], pos, Logits::Last)
            .unwrap()
            .to_vec();
    }
    eprintln!("{name}: greedy {} tokens match", want.len());
}

/// Compare every case whose name starts with `prefix` and that has a fixture.
fn run(prefix: &str) {
    let Some(shared) = common::shared() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut compared = 0;
    let mut listed = 0;
    let ci = std::env::var("CI").as_deref() == Ok("true");
    for case in cases() {
        let name = case["name"].as_str().unwrap();
        if !name.starts_with(prefix) {
            continue;
        }
        listed += 1;
        let refs = reference(name);
        if refs.is_empty() {
            // A case listed in cases.json must have its reference: missing fixtures fail CI.
            assert!(
                !ci,
                "no transformers fixture for {name} in {}",
                fixture_dir().display()
            );
            eprintln!("SKIPPED: no transformers fixture for {name} yet");
            continue;
        }
        let model = Model::load(model_path(&case, &shared, tmp.path())).unwrap();
        for (p, (ids, want, vocab)) in refs.iter().enumerate() {
            assert_eq!(*vocab, model.config.vocab_size, "{name}: vocab");
            let what = format!("{name} prompt {p}");
            match compare(&model, ids, want, *vocab) {
                Ok(summary) => eprintln!("{what} ({} ids): {summary}", ids.len()),
                Err(e) => panic!("{what}: {e}"),
            }
        }
        if let Some((prompt, want)) = greedy_fixture(name) {
            greedy_compare(&model, &prompt, &want, name);
        }
        compared += 1;
    }
    eprintln!("{compared} {prefix}* cases compared");
    // Never a silent pass: the manifest lists cases of this kind and they were compared.
    assert!(
        listed > 0,
        "scripts/golden/cases.json lists no {prefix}* case"
    );
    assert!(compared > 0, "no {prefix}* case had a fixture to compare");
    if ci {
        assert_eq!(
            compared, listed,
            "{prefix}*: {listed} cases listed, {compared} compared"
        );
    }
}

/// Real trained models (measured: ≤ 3e-7 for 3M; 1.9e-4 on one 1M prompt, the same as
/// transformers CPU vs GPU, where a 1e-7 difference flips an int8 activation rounding).
#[test]
fn tinystories_match_transformers() {
    run("tinystories");
}

/// shared/data/bitnetcpp/tiny: bf16 master folder and bitnet.cpp / gguf-py GGUFs.
#[test]
fn bitnetcpp_tiny_matches_transformers() {
    run("bitnetcpp");
}

/// `bitnet synth` checkpoints (tiny; gqa = head_dim 128, 4:1 GQA) in every layout.
#[test]
fn synth_match_transformers() {
    run("synth");
}

/// The harness must catch real bugs: each injected bug fails every case it affects (a case
/// fails when any of its prompts does), however many tie flips the search may try.
#[test]
fn injected_bugs_fail_every_case() {
    let Some(shared) = common::shared() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    type Bug = (&'static str, fn(&mut Model) -> bool);
    let bugs: [Bug; 6] = [
        ("rms_norm_eps x10", |m| {
            m.config.norm_eps *= 10.0;
            true
        }),
        ("output_norm x1.05", |m| {
            m.weights.output_norm.iter_mut().for_each(|w| *w *= 1.05);
            true
        }),
        ("rope_theta x0.5", |m| {
            m.config.rope_theta *= 0.5;
            true
        }),
        ("wrong RoPE style", |m| {
            m.config.rope_style = match m.config.rope_style {
                bitnet_model::RopeStyle::Neox => bitnet_model::RopeStyle::Interleaved,
                bitnet_model::RopeStyle::Interleaved => bitnet_model::RopeStyle::Neox,
            };
            true
        }),
        ("attention sub-norm weights dropped", |m| {
            let mut any = false;
            for l in &mut m.weights.layers {
                if let Some(w) = &mut l.attn_sub_norm {
                    w.iter_mut().for_each(|v| *v = 1.0);
                    any = true;
                }
            }
            any
        }),
        ("sub-norms of layers 0 and 1 swapped", |m| {
            let (a, b) = m.weights.layers.split_at_mut(1);
            match (
                &mut a[0].ffn_sub_norm,
                b.first_mut().map(|l| &mut l.ffn_sub_norm),
            ) {
                (Some(x), Some(Some(y))) => {
                    std::mem::swap(x, y);
                    true
                }
                _ => false,
            }
        }),
    ];
    let mut checked = 0;
    for case in cases() {
        let name = case["name"].as_str().unwrap();
        let refs = reference(name);
        if refs.is_empty() {
            continue;
        }
        let model = Model::load(model_path(&case, &shared, tmp.path())).unwrap();
        for (bug, inject) in &bugs {
            let mut m = model.clone();
            if !inject(&mut m) {
                continue; // this architecture has nothing the bug touches
            }
            let caught = refs
                .iter()
                .any(|(ids, want, vocab)| compare(&m, ids, want, *vocab).is_err());
            assert!(
                caught,
                "{name}: the bug '{bug}' passed the golden comparison"
            );
            checked += 1;
        }
        // A position counter off by one: every token one slot late.
        START.with(|s| s.set(1));
        let caught = refs
            .iter()
            .any(|(ids, want, vocab)| compare(&model, ids, want, *vocab).is_err());
        START.with(|s| s.set(0));
        assert!(
            caught,
            "{name}: the bug 'positions off by one' passed the golden comparison"
        );
        checked += 1;
    }
    assert!(
        checked >= 5 * 10,
        "only {checked} (case, bug) pairs checked"
    );
    eprintln!("{checked} (case, bug) pairs caught");
}
