//! `Model::forward_paged` (many sequences per pass over a paged KV cache) gives, for every
//! sequence, bit for bit the logits of the same sequence run alone through `Model::forward`,
//! whatever else is in the batch, however its blocks are scattered, and however its prompt
//! is chunked.

use std::path::Path;

use bitnet_convert::synth::{synth, EmbedType, Format, Shape, SynthSpec};
use bitnet_model::{KvType, Logits, Model, Segment, State};

fn synth_model(shape: &str, format: Format, dir: &Path) -> Model {
    let out = dir.join(format!("{shape}.gguf"));
    let spec = SynthSpec {
        shape: Shape::named(shape).unwrap(),
        format,
        seed: 7,
        embed: EmbedType::F16,
    };
    synth(&spec, &out, &mut |_, _| {}).unwrap();
    Model::load(&out).unwrap()
}

/// Deterministic pseudo-random token ids below `vocab`.
fn tokens(seed: u32, n: usize, vocab: usize) -> Vec<u32> {
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1664525).wrapping_add(1013904223);
            (s >> 8) % vocab as u32
        })
        .collect()
}

/// Per-position logits of `seq` run alone (prefill of `split` tokens, then one token a pass).
fn alone(model: &Model, seq: &[u32], split: usize) -> Vec<Vec<f32>> {
    let mut st = State::new(&model.config, seq.len(), split.max(1)).unwrap();
    let mut out = Vec::new();
    let all = model
        .forward(&mut st, &seq[..split], 0, Logits::All)
        .unwrap();
    let v = model.config.vocab_size;
    for r in 0..split {
        out.push(all[r * v..(r + 1) * v].to_vec());
    }
    for p in split..seq.len() {
        out.push(
            model
                .forward(&mut st, &seq[p..p + 1], p, Logits::Last)
                .unwrap()
                .to_vec(),
        );
    }
    out
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Runs 5 sequences of different lengths through paged passes that mix prefill chunks of
/// one sequence with decode tokens of others (sequences join at different passes), over
/// block tables interleaved across the pool, and compares every logits row with `alone`.
fn check_model(model: &Model) {
    let v = model.config.vocab_size;
    let bs = 4;
    let lens = [1usize, 7, 19, 33, 12];
    let seqs: Vec<Vec<u32>> = lens
        .iter()
        .enumerate()
        .map(|(i, &n)| tokens(i as u32 + 3, n, v))
        .collect();
    // Interleaved block tables: sequence i gets blocks i, i+5, i+10, ...
    let n_blocks = 5 * 10;
    let tables: Vec<Vec<u32>> = (0..5)
        .map(|i| (0..10).map(|j| (i + 5 * j) as u32).collect())
        .collect();
    let mut st = State::paged(&model.config, n_blocks, bs, 64, 8, 40, KvType::F32).unwrap();
    assert_eq!(st.paging(), Some((n_blocks, bs)));
    // Progress of each sequence; sequence i joins at pass i; chunks of up to 6 tokens.
    let mut done = [0usize; 5];
    let mut got: Vec<Vec<(usize, Vec<f32>)>> = vec![Vec::new(); 5];
    let mut compared = 0;
    for pass in 0..40 {
        let mut segs = Vec::new();
        let mut who = Vec::new();
        for i in 0..5 {
            if pass < i || done[i] == seqs[i].len() {
                continue;
            }
            let k = (seqs[i].len() - done[i]).min(6);
            segs.push(Segment {
                tokens: &seqs[i][done[i]..done[i] + k],
                pos: done[i],
                blocks: &tables[i],
                logits: true,
            });
            who.push((i, done[i] + k - 1));
        }
        if segs.is_empty() {
            break;
        }
        let logits = model.forward_paged(&mut st, &segs).unwrap().to_vec();
        for (r, &(i, p)) in who.iter().enumerate() {
            got[i].push((p, logits[r * v..(r + 1) * v].to_vec()));
            done[i] = p + 1;
        }
    }
    for (i, seq) in seqs.iter().enumerate() {
        assert_eq!(done[i], seq.len());
        let want = alone(model, seq, 1);
        for (p, row) in &got[i] {
            assert_eq!(bits(row), bits(&want[*p]), "sequence {i} position {p}");
            compared += 1;
        }
        // A second reference: the whole prompt in one prefill gives the same last row.
        let whole = alone(model, seq, seq.len());
        assert_eq!(bits(&whole[seq.len() - 1]), bits(&want[seq.len() - 1]));
    }
    assert!(compared >= 5 + 33 / 6, "compared {compared} rows");
}

#[test]
fn paged_batches_equal_sequences_alone_gqa_synth() {
    let dir = tempfile::tempdir().unwrap();
    check_model(&synth_model("gqa", Format::GgufI2s, dir.path()));
}

#[test]
fn paged_batches_equal_sequences_alone_tiny_synth() {
    let dir = tempfile::tempdir().unwrap();
    check_model(&synth_model("tiny", Format::GgufTq2, dir.path()));
}

#[test]
fn paged_batches_equal_sequences_alone_tinystories() {
    let Some(dir) = bitnet_testdata::shared_file("data/real-models/bitllama2c-tinystories-3m")
    else {
        return;
    };
    check_model(&Model::load(&dir).unwrap());
}

#[test]
fn paged_pass_rejects_bad_segments() {
    let dir = tempfile::tempdir().unwrap();
    let model = synth_model("tiny", Format::GgufTq2, dir.path());
    let mut st = State::paged(&model.config, 4, 4, 8, 2, 16, KvType::F32).unwrap();
    let toks = [1u32, 2, 3, 4, 5];
    let seg = |blocks: &'static [u32], pos: usize| Segment {
        tokens: &toks,
        pos,
        blocks,
        logits: true,
    };
    // Blocks do not cover positions 0..5.
    let e = model.forward_paged(&mut st, &[seg(&[0], 0)]).unwrap_err();
    assert!(e.to_string().contains("do not cover"), "{e}");
    // Block out of the pool.
    let e = model
        .forward_paged(&mut st, &[seg(&[0, 9], 0)])
        .unwrap_err();
    assert!(e.to_string().contains("outside the cache"), "{e}");
    // More tokens than the batch.
    let e = model
        .forward_paged(&mut st, &[seg(&[0, 1], 0), seg(&[2, 3], 0)])
        .unwrap_err();
    assert!(e.to_string().contains("exceeds"), "{e}");
    // Past the context.
    let e = model
        .forward_paged(&mut st, &[seg(&[0, 1, 2, 3], 14)])
        .unwrap_err();
    assert!(e.to_string().contains("context"), "{e}");
    // A state without paging.
    let mut plain = State::new(&model.config, 8, 8).unwrap();
    assert!(model.forward_paged(&mut plain, &[seg(&[0, 1], 0)]).is_err());
    // Copy-on-write copies every layer's block.
    st.copy_block(0, 3).unwrap();
    assert!(st.copy_block(0, 4).is_err());
}
