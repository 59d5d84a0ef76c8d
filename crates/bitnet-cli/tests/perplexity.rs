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
    assert!((err - ref_err).abs() / ref_err < 2e-3, "{err} vs {ref_err}");
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

#[test]
fn kl_divergence_against_a_saved_base() {
    let Some(model) = model() else { return };
    let text = bitnet_testdata::shared_file("data/text/tinystories-head.txt").unwrap();
    let text = text.display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.bin").display().to_string();
    let common = ["-c", "128", "--chunks", "4"];
    let mut a = vec![
        "perplexity",
        model.as_str(),
        "-f",
        &text,
        "--save-logits",
        &base,
    ];
    a.extend_from_slice(&common);
    let out = bitnet(&a, "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    // 4 chunks × 63 scored positions × 512 floats, after a 24-byte header and 512 token ids.
    let len = std::fs::metadata(&base).unwrap().len();
    assert_eq!(len, 24 + 4 * 512 + 4 * 63 * 512 * 4);
    let kl_line = |stdout: &str| -> (f64, f64) {
        let l = stdout
            .lines()
            .find(|l| l.starts_with("KL divergence"))
            .unwrap_or_else(|| panic!("no KL line in {stdout}"));
        let num = |after: &str| -> f64 {
            let rest = &l[l.find(after).unwrap() + after.len()..];
            rest.split([' ', '%']).next().unwrap().parse().unwrap()
        };
        (num("mean "), num("top-1 agreement "))
    };
    // The same model against its own base: nothing differs but the float32 storage.
    let out = bitnet(&["perplexity", &model, "--kl-divergence", &base], "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (kl, top1) = kl_line(&out.stdout);
    assert!(kl < 1e-6 && top1 == 100.0, "{}", out.stdout);
    // The int8 head is another model: a small, measurable divergence (measured 9.5e-5 nats and
    // 99.4% top-1 over 10 chunks of 256).
    let out = bitnet(
        &[
            "perplexity",
            &model,
            "--kl-divergence",
            &base,
            "--head",
            "q8",
        ],
        "",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (kl, top1) = kl_line(&out.stdout);
    assert!(kl > 1e-6 && kl < 1e-3 && top1 > 97.0, "{}", out.stdout);
    // Errors: another chunk size, a file that is no base, a model of another vocabulary.
    let out = bitnet(
        &["perplexity", &model, "--kl-divergence", &base, "-c", "64"],
        "",
    );
    assert!(
        out.code != 0 && out.stderr.contains("chunks of 128 tokens"),
        "{}",
        out.stderr
    );
    let out = bitnet(&["perplexity", &model, "--kl-divergence", &text], "");
    assert!(
        out.code != 0 && out.stderr.contains("not a bitnet logits base file"),
        "{}",
        out.stderr
    );
    let gqa = dir.path().join("gqa").display().to_string();
    let out = bitnet(
        &[
            "synth",
            "--shape",
            "gqa",
            "--format",
            "hf-packed",
            "--out",
            &gqa,
        ],
        "",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = bitnet(&["perplexity", &gqa, "--kl-divergence", &base], "");
    assert!(
        out.code != 0 && out.stderr.contains("vocabulary of 512"),
        "{}",
        out.stderr
    );
}
