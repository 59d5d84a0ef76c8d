//! What a new user ran into (issue 7, item 7), each answered with a clear error or fixed.

mod common;

use common::bitnet;

fn tinystories() -> Option<String> {
    bitnet_testdata::shared_file("data/real-models/bitllama2c-tinystories-3m")
        .map(|p| p.to_str().unwrap().to_string())
}

#[test]
fn negative_and_out_of_range_flags_get_range_errors() {
    let Some(m) = tinystories() else { return };
    for (flag, value, msg) in [
        ("--top-p", "-0.5", "--top-p -0.5: must be between 0 and 1"),
        ("--min-p", "2", "--min-p 2: must be between 0 and 1"),
        (
            "--top-k",
            "-3",
            "--top-k -3: must be 0 (off) or a positive count",
        ),
        (
            "--repeat-penalty",
            "-1",
            "--repeat-penalty -1: must be a positive number",
        ),
        (
            "--prompt-ids",
            "-5",
            "--prompt-ids: entry 1 (\"-5\") is not a token id",
        ),
        ("-n", "-5", "--max-tokens -5: must be -1"),
        ("--threads", "0", "--threads 0: must be between 1 and 1024"),
        (
            "--threads",
            "100000",
            "--threads 100000: must be between 1 and 1024",
        ),
    ] {
        let mut args = vec!["run", m.as_str(), flag, value];
        if flag != "--prompt-ids" {
            args.extend(["-p", "hi"]);
        }
        let out = bitnet(&args, "");
        assert_eq!(out.code, 1, "{flag} {value}: {}", out.stderr);
        assert!(out.stderr.contains(msg), "{flag} {value}: {}", out.stderr);
        assert!(
            !out.stderr.contains("unexpected argument"),
            "{}",
            out.stderr
        );
    }
    // More threads than cores is allowed, with a warning.
    let out = bitnet(&["run", &m, "-p", "hi", "-n", "1", "-t", "1000"], "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("more than the"), "{}", out.stderr);
}

#[test]
fn llama_base_model_names_its_architecture() {
    let Some(m) = tinystories() else { return };
    let out = bitnet(&["chat", &m, "-n", "2", "--temp", "0"], "Once\n");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("architecture `llama`"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("`unknown`"), "{}", out.stderr);
}

#[test]
fn a_folder_holding_one_gguf_loads_it() {
    let Some(src) = bitnet_testdata::shared_file("data/bitnetcpp/tiny/model-i2_s.gguf") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&src, dir.path().join("model-i2_s.gguf")).unwrap();
    let d = dir.path().to_str().unwrap();
    let out = bitnet(
        &[
            "run",
            d,
            "--prompt-ids",
            "1,2,3",
            "-n",
            "2",
            "--temp",
            "0",
            "--json",
        ],
        "",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("\"finish_reason\""), "{}", out.stdout);
    // Two GGUFs: the error names them.
    std::fs::copy(&src, dir.path().join("other.gguf")).unwrap();
    let out = bitnet(&["run", d, "--prompt-ids", "1", "-n", "1"], "");
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("2 GGUF files (model-i2_s.gguf, other.gguf)"),
        "{}",
        out.stderr
    );
}

#[test]
fn os_errors_are_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    // An HF folder cannot be created where a file is.
    let out = bitnet(
        &[
            "synth",
            "--shape",
            "tiny",
            "--format",
            "hf-packed",
            "--out",
            file.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.stderr.matches("os error").count(), 1, "{}", out.stderr);
}

#[test]
fn chat_reports_failed_turns_and_survives_invalid_utf8() {
    let Some(m) = tinystories() else { return };
    let Some(llama3) = bitnet_testdata::shared_file("data/llama3/tokenizer.model") else {
        return;
    };
    // A tokenizer larger than the model: each message fails and the exit status says so.
    let out = bitnet(
        &[
            "chat",
            &m,
            "--tokenizer",
            llama3.to_str().unwrap(),
            "-n",
            "2",
        ],
        "Hello\nAgain\n",
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(
        out.stderr.matches("outside the model's vocabulary").count(),
        2,
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("2 message(s) of this conversation failed"),
        "{}",
        out.stderr
    );
    // An invalid UTF-8 line is replaced and the session goes on to the next line.
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_bitnet"))
        .args(["chat", &m, "-n", "3", "--temp", "0"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .as_ref()
        .unwrap()
        .write_all(b"\xff\xfe bad\nOnce upon a time\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("> ").count(), 3, "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid UTF-8"));
}

#[test]
fn bench_refuses_tests_longer_than_the_context() {
    let Some(m) = tinystories() else { return };
    let out = bitnet(
        &["bench", &m, "-p", "100000", "-n", "0", "--no-bandwidth"],
        "",
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("more positions than the model's context of 512"),
        "{}",
        out.stderr
    );
}
