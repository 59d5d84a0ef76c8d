//! `bitnet perplexity`: end to end on the real TinyStories 3M model (our tokenizer, our
//! chunking), against transformers' figure for the same text and method
//! (fixtures/perplexity/tinystories-3m.ppl.json), and its errors.

mod common;

use common::bitnet;

fn model() -> Option<String> {
    bitnet_testdata::shared_file("data/real-models/bitllama2c-tinystories-3m")
        .map(|p| p.display().to_string())
}

#[test]
fn perplexity_of_tinystories_matches_transformers() {
    let Some(model) = model() else { return };
    let text = bitnet_testdata::shared_file("data/text/tinystories-head.txt").unwrap();
    let want: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            bitnet_testdata::fixtures_dir().join("perplexity/tinystories-3m.ppl.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let out = bitnet(
        &[
            "perplexity",
            &model,
            "-f",
            &text.display().to_string(),
            "-c",
            "256",
            "--chunks",
            "20",
        ],
        "",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Our tokenizer cuts the text into as many tokens as transformers' did.
    let tokens = format!("into {} tokens", want["text_tokens"]);
    assert!(out.stderr.contains(&tokens), "{}", out.stderr);
    // llama-perplexity's output: running `[i]ppl,` per chunk, then the final estimate.
    assert!(
        out.stdout.starts_with("[1]") && out.stdout.contains(",[20]"),
        "{}",
        out.stdout
    );
    let line = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Final estimate: PPL = "))
        .unwrap_or_else(|| panic!("no final estimate in {}", out.stdout));
    let (ppl, err) = line.split_once(" +/- ").unwrap();
    let (ppl, err): (f64, f64) = (ppl.parse().unwrap(), err.parse().unwrap());
    let (ref_ppl, ref_err) = (
        want["ppl"].as_f64().unwrap(),
        want["ppl_stderr"].as_f64().unwrap(),
    );
    assert!((ppl - ref_ppl).abs() / ref_ppl < 1e-3, "{ppl} vs {ref_ppl}");
    assert!((err - ref_err).abs() / ref_err < 1e-2, "{err} vs {ref_err}");
}

#[test]
fn perplexity_errors_are_clear() {
    let Some(model) = model() else { return };
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short.txt");
    std::fs::write(&short, "Once upon a time.").unwrap();
    let short = short.display().to_string();
    let cases: [(&[&str], &str); 4] = [
        (
            &["-f", "/nonexistent/text.txt"],
            "reading /nonexistent/text.txt",
        ),
        (&["-f", &short, "-c", "0"], "-c/--ctx-size 0"),
        (&["-f", &short, "--chunks", "0"], "--chunks 0"),
        (&["-f", &short, "-c", "64"], "at least 2 · ctx = 128"),
    ];
    for (args, msg) in cases {
        let mut a = vec!["perplexity", model.as_str()];
        a.extend_from_slice(args);
        let out = bitnet(&a, "");
        assert_ne!(out.code, 0, "{args:?}");
        assert!(out.stderr.contains(msg), "{args:?}: {}", out.stderr);
    }
}
