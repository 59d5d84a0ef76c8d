//! Perplexity against transformers on a real trained model: `fixtures/perplexity/
//! tinystories-3m.ppl.json` was written by scripts/perplexity/transformers_ppl.py on the device
//! machine (transformers 5.17, CPU float32, llama-perplexity's method: 20 chunks of 256 tokens
//! of shared/data/text/tinystories-head.txt). We score the very ids it scored.
#![cfg(feature = "model")]

use bitnet_generate::perplexity::{perplexity, ModelScorer, PerplexityConfig};
use bitnet_model::Model;
use bitnet_testdata::{fixtures_dir, shared_dir};

#[test]
fn tinystories_3m_perplexity_matches_transformers() {
    let Some(shared) = shared_dir() else { return };
    let path = fixtures_dir().join("perplexity/tinystories-3m.ppl.json");
    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let ids: Vec<u32> = want["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    let ctx = want["ctx"].as_u64().unwrap() as usize;
    let chunks = want["chunks"].as_u64().unwrap() as usize;
    assert_eq!(ids.len(), ctx * chunks);
    let model = Model::load(shared.join("data/real-models/bitllama2c-tinystories-3m")).unwrap();
    let mut scorer = ModelScorer::new(&model, ctx).unwrap();
    let config = PerplexityConfig {
        ctx,
        bos: Some(want["bos"].as_u64().unwrap() as u32),
        max_chunks: None,
    };
    let mut running = Vec::new();
    let got = perplexity(&mut scorer, &ids, &config, &mut |r| {
        running.push(r.running_ppl)
    })
    .unwrap();
    let (ppl, err) = (
        want["ppl"].as_f64().unwrap(),
        want["ppl_stderr"].as_f64().unwrap(),
    );
    eprintln!(
        "PPL {:.6} ± {:.6} (transformers {ppl:.6} ± {err:.6}), {} tokens scored",
        got.ppl, got.ppl_stderr, got.scored
    );
    assert_eq!(got.chunks, chunks);
    assert_eq!(got.scored, want["scored"].as_u64().unwrap() as usize);
    // On a trained model a 1e-7 difference can flip an int8 rounding and move a position's
    // logits by a few percent (shared/README.md); over 2,540 tokens the PPL agrees to
    // (measured) 5.1e-4 relative, a seventh of its standard error; the running PPL of every
    // chunk to 1.1e-3.
    let rel = (got.ppl - ppl).abs() / ppl;
    assert!(
        rel < 1e-3,
        "PPL {} vs transformers {ppl}: rel {rel:.1e}",
        got.ppl
    );
    // Its standard error agrees to (measured) 7e-4.
    assert!((got.ppl_stderr - err).abs() / err < 2e-3);
    let worst = running
        .iter()
        .zip(want["running_ppl"].as_array().unwrap())
        .map(|(a, b)| (a - b.as_f64().unwrap()).abs() / b.as_f64().unwrap())
        .fold(0.0, f64::max);
    eprintln!("running PPL: worst chunk rel {worst:.1e}");
    assert_eq!(running.len(), chunks);
    assert!(worst < 2e-3, "running PPL differs by {worst:.1e}");
}
