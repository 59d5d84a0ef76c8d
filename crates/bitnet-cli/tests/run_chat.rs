//! `bitnet run` and `bitnet chat` end to end through the built binary, on the real TinyStories
//! 3M model (shared/data/real-models/bitllama2c-tinystories-3m).
//!
//! Independent references: transformers' greedy ids from BOS
//! (fixtures/transformers/tinystories-3m.greedy.json, `generate(do_sample=False)`) and the text
//! they spell, as stated in shared/README.md: "Once upon a time, there was a little girl named
//! Lily. She loved to play outside and explore".

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use bitnet_testdata::{fixtures_dir, shared_dir};
use common::{bitnet, ok};

/// What shared/README.md says the 3M model writes greedily from BOS.
const README_TEXT: &str =
    "Once upon a time, there was a little girl named Lily. She loved to play outside and explore";

fn model_dir() -> Option<PathBuf> {
    shared_dir().map(|s| s.join("data/real-models/bitllama2c-tinystories-3m"))
}

/// transformers' 40 greedy ids after BOS.
fn transformers_greedy() -> Vec<u32> {
    let p = fixtures_dir().join("transformers/tinystories-3m.greedy.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    assert_eq!(json["prompt"], serde_json::json!([1]));
    ids(&json["new_ids"])
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap_or_else(|| panic!("{v} is not an array"))
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = ok(args);
    assert_eq!(
        out.stdout.lines().count(),
        1,
        "one JSON line: {}",
        out.stdout
    );
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Streaming greedy run: the continuation of "Once upon a time" is transformers' greedy text,
/// and the stats go to stderr.
#[test]
fn run_streams_the_greedy_continuation() {
    let Some(m) = model_dir() else { return };
    let out = ok(&[
        "run",
        s(&m),
        "--temp",
        "0",
        "-p",
        "Once upon a time",
        "-n",
        "30",
    ]);
    let want = README_TEXT.strip_prefix("Once upon a time").unwrap();
    assert!(
        out.stdout.starts_with(want),
        "stdout {:?} does not start with {want:?}",
        out.stdout
    );
    assert!(!out.stdout.contains("tokens/s"));
    for key in ["load time", "prompt eval", "generation", "tokens/s"] {
        assert!(
            out.stderr.contains(key),
            "stderr lacks {key}: {}",
            out.stderr
        );
    }
}

/// `--json` with each tokenizer of the model folder (tokenizer.json and the SentencePiece
/// tokenizer.model): the prompt encodes to transformers' first ids and the continuation is
/// transformers' greedy ids.
#[test]
fn run_json_with_both_tokenizers_matches_transformers() {
    let Some(m) = model_dir() else { return };
    let greedy = transformers_greedy();
    let n = 36;
    for tok in ["tokenizer.json", "tokenizer.model"] {
        let v = json(&[
            "run",
            s(&m),
            "--tokenizer",
            s(&m.join(tok)),
            "--temp",
            "0",
            "-p",
            "Once upon a time",
            "-n",
            &n.to_string(),
            "--json",
        ]);
        // "Once upon a time" is the first 4 tokens transformers generated after BOS.
        assert_eq!(
            ids(&v["prompt_ids"]),
            [&[1], &greedy[..4]].concat(),
            "{tok}"
        );
        assert_eq!(ids(&v["ids"]), greedy[4..4 + n], "{tok}");
        let text = v["text"].as_str().unwrap();
        assert!(
            format!("Once upon a time{text}").starts_with(README_TEXT),
            "{tok}: {text:?}"
        );
        assert_eq!(v["finish_reason"], "length");
        let t = &v["timings"];
        assert_eq!(t["prompt_tokens"], 5);
        assert_eq!(t["generated_tokens"], n);
        for k in ["load_ms", "prompt_ms", "generation_ms"] {
            assert!(
                t[k].as_f64().unwrap() > 0.0,
                "{tok}: timings.{k} = {}",
                t[k]
            );
        }
    }
}

/// `--prompt-ids 1` (BOS alone) reproduces transformers' 40 greedy ids exactly, and the text
/// (SentencePiece's leading space dropped after BOS) is the README's sentence.
#[test]
fn run_prompt_ids_matches_transformers_greedy() {
    let Some(m) = model_dir() else { return };
    let greedy = transformers_greedy();
    let v = json(&[
        "run",
        s(&m),
        "--temp",
        "0",
        "--prompt-ids",
        "1",
        "-n",
        "40",
        "--json",
    ]);
    assert_eq!(ids(&v["ids"]), greedy);
    assert!(
        v["text"].as_str().unwrap().starts_with(README_TEXT),
        "{}",
        v["text"]
    );
    // Stop strings cut the text before the stop string.
    let v = json(&[
        "run",
        s(&m),
        "--temp",
        "0",
        "-p",
        "Once upon a time",
        "--stop",
        "Lily",
        "--json",
    ]);
    assert_eq!(v["text"], ", there was a little girl named ");
    assert_eq!(v["finish_reason"], "stop");
}

/// Same seed → same tokens; another seed → other tokens (40 tokens at temperature 1 over a
/// 512-token vocabulary: a collision is vanishingly unlikely).
#[test]
fn seeded_sampling_is_reproducible() {
    let Some(m) = model_dir() else { return };
    let run = |seed: &str| {
        let v = json(&[
            "run",
            s(&m),
            "--temp",
            "1",
            "--top-k",
            "0",
            "--top-p",
            "1",
            "--min-p",
            "0",
            "--seed",
            seed,
            "-p",
            "Once upon a time",
            "-n",
            "40",
            "--json",
        ]);
        assert_eq!(v["seed"], seed.parse::<u64>().unwrap());
        ids(&v["ids"])
    };
    let a = run("42");
    assert_eq!(a.len(), 40);
    assert_eq!(a, run("42"));
    assert_ne!(a, run("43"));
}

/// Sampling flags reach the sampler: banning transformers' first greedy token with
/// `--logit-bias ID-inf` changes the first generated token.
#[test]
fn logit_bias_bans_a_token() {
    let Some(m) = model_dir() else { return };
    let first = transformers_greedy()[4];
    let bias = format!("{first}-inf");
    let v = json(&[
        "run",
        s(&m),
        "--temp",
        "0",
        "-p",
        "Once upon a time",
        "-n",
        "3",
        "--logit-bias",
        &bias,
        "--json",
    ]);
    let got = ids(&v["ids"]);
    assert_eq!(got.len(), 3);
    assert_ne!(got[0], first);
}

/// A prompt longer than the context is a clear error (exit code 1), not a panic.
#[test]
fn too_long_prompt_errors_cleanly() {
    let Some(m) = model_dir() else { return };
    let out = bitnet(
        &[
            "run",
            s(&m),
            "-c",
            "8",
            "-p",
            "Once upon a time there was a big red dog",
        ],
        "",
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("error:") && out.stderr.contains("context holds 8 tokens"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
}

/// Unknown model paths and repo ids: exit code 1 with a message naming them.
#[test]
fn unknown_model_is_a_clear_error() {
    for spec in ["/no/such/dir/model.gguf", "nobody/no-such-model"] {
        let out = bitnet(&["run", spec, "-p", "hi"], "");
        assert_eq!(out.code, 1, "{spec}: {}", out.stderr);
        assert!(
            out.stderr.starts_with("error: cannot open model") && out.stderr.contains(spec),
            "{spec}: {}",
            out.stderr
        );
    }
    let out = bitnet(&["chat", "/no/such/dir"], "hello\n");
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("/no/such/dir"), "{}", out.stderr);
}

/// A model folder without tokenizer files: `-p` says to use `--prompt-ids` (or
/// `--tokenizer`); `--prompt-ids` works and gives ids (text null), and text with `--tokenizer`.
#[test]
fn model_without_tokenizer() {
    let Some(m) = model_dir() else { return };
    let tmp = std::env::temp_dir().join(format!("bitnet-cli-notok-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(m.join(f), tmp.join(f)).unwrap();
    }
    let out = bitnet(&["run", s(&tmp), "-p", "Once upon a time"], "");
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("--prompt-ids") && out.stderr.contains("--tokenizer"),
        "{}",
        out.stderr
    );
    let greedy = transformers_greedy();
    let args = [
        "run",
        s(&tmp),
        "--temp",
        "0",
        "--prompt-ids",
        "1",
        "-n",
        "8",
        "--json",
    ];
    let v = json(&args);
    assert_eq!(ids(&v["ids"]), greedy[..8]);
    assert!(v["text"].is_null());
    let tok = m.join("tokenizer.json");
    let v = json(&[&args[..], &["--tokenizer", s(&tok)]].concat());
    assert_eq!(ids(&v["ids"]), greedy[..8]);
    assert!(
        README_TEXT.starts_with(v["text"].as_str().unwrap()),
        "{}",
        v["text"]
    );
    // Streaming without a tokenizer prints the ids.
    let out = ok(&args[..args.len() - 1]);
    let want: Vec<String> = greedy[..8].iter().map(u32::to_string).collect();
    assert_eq!(out.stdout.trim(), want.join(","));
    std::fs::remove_dir_all(&tmp).unwrap();
}

/// `bitnet chat` through pipes: two turns over one cache, `/reset`, `/exit`.
#[test]
fn chat_through_pipes() {
    let Some(m) = model_dir() else { return };
    let out = bitnet(
        &["chat", s(&m), "--temp", "0", "-n", "12"],
        "Once upon a time\nThe dog was\n/reset\nOnce upon a time\n/exit\nnot read\n",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Replies follow "> " prompt markers; /exit stops before the last line.
    let turns: Vec<&str> = out.stdout.split("> ").skip(1).collect();
    assert_eq!(turns.len(), 5, "{:?}", out.stdout);
    assert_eq!(turns[4], "", "nothing after /exit: {:?}", out.stdout);
    let first = turns[0].trim_end();
    assert!(
        README_TEXT.starts_with(&format!("Once upon a time{first}")),
        "first reply {first:?}"
    );
    assert!(first.len() > 10, "first reply {first:?}");
    // The second turn continues the same story (its reply is generated after both lines).
    assert!(turns[1].trim().len() > 5, "second reply {:?}", turns[1]);
    assert_ne!(turns[1], turns[0]);
    assert_eq!(turns[2].trim(), "[conversation cleared]");
    // After /reset the cache is empty again: the same prompt gives the same greedy reply.
    assert_eq!(turns[3].trim_end(), first);
}

/// In chat, a turn that does not fit says so and offers /reset; /reset then makes room.
#[test]
fn chat_full_context_offers_reset() {
    let Some(m) = model_dir() else { return };
    let out = bitnet(
        &["chat", s(&m), "--temp", "0", "-n", "4", "-c", "16"],
        "Once upon a time\nThere was a big red dog in the park and a cat\n/reset\nOnce upon a time\n",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let turns: Vec<&str> = out.stdout.split("> ").skip(1).collect();
    assert!(
        turns[1].contains("context") && turns[1].contains("/reset"),
        "{:?}",
        out.stdout
    );
    assert_eq!(turns[3].trim_end(), turns[0].trim_end());
}

/// Ctrl-C (SIGINT) during a reply stops that reply and keeps the session: the next command
/// still runs. The reply is made long (end of text banned, a 4096-token cache) so that the
/// signal lands while it streams.
#[cfg(unix)]
#[test]
fn chat_sigint_stops_the_reply_and_keeps_the_session() {
    use std::io::Read;
    let Some(m) = model_dir() else { return };
    let mut child = Command::new(env!("CARGO_BIN_EXE_bitnet"))
        .args(["chat", s(&m), "--temp", "0", "-n", "-1", "-c", "4096"])
        .args(["--logit-bias", "2-inf"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bitnet");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    stdin.write_all(b"Once upon a time\n").unwrap();
    stdin.flush().unwrap();
    // Wait for the reply to start streaming.
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while seen.len() < 40 {
        let n = stdout.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "bitnet chat ended early: {:?}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    stdin.write_all(b"/reset\n/exit\n").unwrap();
    drop(stdin);
    stdout.read_to_end(&mut seen).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&seen);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("[reply stopped]"), "{text}");
    assert!(text.contains("[conversation cleared]"), "{text}");
}

/// A model with a chat format (bitnet.cpp's I2_S GGUF of shared/data/bitnetcpp/tiny, whose
/// stored template is the known-broken placeholder, replaced by the 2B4T format): the second
/// turn prefills only what is new (previous reply's last token, end of turn, the new user
/// message and the assistant opener), not the whole conversation again.
#[test]
fn chat_with_template_prefills_only_the_new_turn() {
    let Some(sh) = shared_dir() else { return };
    let gguf = sh.join("data/bitnetcpp/tiny/model-i2_s.gguf");
    let out = bitnet(
        &["chat", s(&gguf), "--temp", "0", "-n", "6", "--stats"],
        "Hello there\nHello there\n/exit\n",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("known-broken"), "{}", out.stderr);
    let prompt_tokens: Vec<usize> = out
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix('['))
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect();
    assert_eq!(prompt_tokens.len(), 2, "{}", out.stderr);
    let (first, second) = (prompt_tokens[0], prompt_tokens[1]);
    // Turn 1: BOS + "User: Hello there<|eot_id|>Assistant: ". Turn 2: the same message
    // without BOS, plus the pending reply token and a closing end-of-turn token.
    assert_eq!(second, first - 1 + 2, "{}", out.stderr);
}

/// MODEL as a Hugging Face repo id, answered from the standard cache layout under `HF_HOME`
/// (`hub/models--owner--name/{refs/main,snapshots/<commit>/}`) with `HF_HUB_OFFLINE=1`: the
/// same output as the local file.
#[test]
fn run_resolves_a_repo_id_from_the_hf_cache() {
    let Some(sh) = shared_dir() else { return };
    let gguf = sh.join("data/bitnetcpp/tiny/model-i2_s.gguf");
    let home = std::env::temp_dir().join(format!("bitnet-cli-hf-{}", std::process::id()));
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let repo = home.join("hub/models--acme--tiny-gguf");
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::create_dir_all(repo.join("snapshots").join(commit)).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    std::fs::copy(
        &gguf,
        repo.join("snapshots").join(commit).join("model-i2_s.gguf"),
    )
    .unwrap();
    let args = [
        "--prompt-ids",
        "1,17,300",
        "-n",
        "6",
        "--temp",
        "0",
        "--json",
    ];
    let out = Command::new(env!("CARGO_BIN_EXE_bitnet"))
        .args(["run", "acme/tiny-gguf"])
        .args(args)
        .env("HF_HOME", &home)
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("HF_HUB_CACHE")
        .output()
        .unwrap();
    std::fs::remove_dir_all(&home).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let by_id: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let by_path = json(&[&["run", s(&gguf)], &args[..]].concat());
    assert_eq!(ids(&by_id["ids"]).len(), 6);
    assert_eq!(by_id["ids"], by_path["ids"]);
}

/// A Jinja `chat_template` from tokenizer_config.json (here added to a copy of the TinyStories
/// folder) drives `run --chat` and `chat`: the rendered prompt is what gets encoded, with
/// `bos_token` and the system message, and `chat` keeps the conversation in one cache.
#[test]
fn jinja_chat_template_from_tokenizer_config() {
    let Some(m) = model_dir() else { return };
    let tmp = std::env::temp_dir().join(format!("bitnet-cli-jinja-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "generation_config.json",
    ] {
        std::fs::copy(m.join(f), tmp.join(f)).unwrap();
    }
    let template = "{{ bos_token }}{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n\
                    {% endfor %}{% if add_generation_prompt %}Once upon a time{% endif %}";
    let config = serde_json::json!({
        "tokenizer_class": "LlamaTokenizer",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "add_bos_token": true,
        "chat_template": template,
    });
    std::fs::write(tmp.join("tokenizer_config.json"), config.to_string()).unwrap();

    let v = json(&[
        "run",
        s(&tmp),
        "--chat",
        "--system",
        "Be kind.",
        "-p",
        "A story",
        "--temp",
        "0",
        "-n",
        "4",
        "--json",
    ]);
    // The rendered text, encoded with special tokens parsed (`<s>` from `bos_token`).
    let rendered = "<s>system: Be kind.\nuser: A story\nOnce upon a time";
    let tok = bitnet(&["tokenize", s(&tmp), "--special"], rendered);
    assert_eq!(tok.code, 0, "{}", tok.stderr);
    let want: serde_json::Value = serde_json::from_str(&tok.stdout).unwrap();
    assert_eq!(v["prompt_ids"], want);
    assert_eq!(ids(&v["prompt_ids"])[0], 1, "BOS first");
    // The prompt ends like the story opening, so the reply continues it greedily.
    assert!(
        v["text"].as_str().unwrap().starts_with(", there was"),
        "{}",
        v["text"]
    );

    let out = bitnet(
        &["chat", s(&tmp), "--temp", "0", "-n", "8", "--stats"],
        "A story\nAnother\n/exit\n",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let turns: Vec<&str> = out.stdout.split("> ").skip(1).collect();
    assert_eq!(turns.len(), 3, "{:?}", out.stdout);
    assert!(
        turns[0].trim().len() > 5 && turns[1].trim().len() > 5,
        "{:?}",
        out.stdout
    );
    std::fs::remove_dir_all(&tmp).unwrap();
}

/// `--tokenizer` pointing at a lone tokenizer.json (no config beside it): the model's own
/// architecture (`bitnet-25` in bitnet.cpp's GGUF) picks the built-in 2B4T chat format.
#[test]
fn lone_tokenizer_file_uses_the_models_chat_format() {
    let Some(sh) = shared_dir() else { return };
    let tiny = sh.join("data/bitnetcpp/tiny");
    let tmp = std::env::temp_dir().join(format!("bitnet-cli-tokonly-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::copy(tiny.join("tokenizer.json"), tmp.join("tokenizer.json")).unwrap();
    let out = bitnet(
        &[
            "run",
            s(&tiny.join("model-i2_s.gguf")),
            "--tokenizer",
            s(&tmp.join("tokenizer.json")),
            "--chat",
            "-p",
            "hi",
            "-n",
            "2",
            "--json",
        ],
        "",
    );
    std::fs::remove_dir_all(&tmp).unwrap();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("built-in bitnet (2B4T) format for architecture `bitnet-25`"),
        "{}",
        out.stderr
    );
}

/// `--head q8` (int8 head with per-row scales) on `run` and `chat`: greedy decoding from BOS
/// still spells transformers' greedy story (its ids, from the F16 head), and a bad kind is a
/// clap error.
#[test]
fn q8_head_keeps_the_greedy_story() {
    let Some(m) = model_dir() else { return };
    let greedy = transformers_greedy();
    let v = json(&[
        "run",
        s(&m),
        "--head",
        "q8",
        "--temp",
        "0",
        "--prompt-ids",
        "1",
        "-n",
        "40",
        "--json",
    ]);
    assert_eq!(ids(&v["ids"]), greedy);
    assert!(
        v["text"].as_str().unwrap().starts_with(README_TEXT),
        "{}",
        v["text"]
    );
    let out = bitnet(
        &["chat", s(&m), "--head", "q8", "--temp", "0", "-n", "12"],
        "Once upon a time\n/exit\n",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let first = out.stdout.split("> ").nth(1).unwrap_or("").trim_end();
    assert!(
        first.len() > 10 && README_TEXT.starts_with(&format!("Once upon a time{first}")),
        "chat --head q8 reply {first:?}"
    );
    let out = bitnet(&["run", s(&m), "--head", "q4", "-n", "1"], "");
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("q4"), "{}", out.stderr);
}
