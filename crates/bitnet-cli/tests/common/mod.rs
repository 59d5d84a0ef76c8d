//! Running the built `bitnet` binary from integration tests.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Stdio};

/// Exit code (-1 when killed by a signal) and the decoded output of one `bitnet` run.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `bitnet ARGS` with `stdin`, offline and with an empty HF cache.
pub fn bitnet(args: &[&str], stdin: &str) -> Out {
    let hf_home = std::env::temp_dir().join("bitnet-cli-test-hf-home");
    let mut child = Command::new(env!("CARGO_BIN_EXE_bitnet"))
        .args(args)
        .env("HF_HOME", &hf_home)
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("HF_HUB_CACHE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bitnet");
    // The command may exit before reading stdin: a broken pipe is fine.
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes());
    let out = child.wait_with_output().expect("wait");
    let out = Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !out.stderr.contains("panicked"),
        "bitnet {args:?} panicked:\n{}",
        out.stderr
    );
    out
}

/// `bitnet ARGS` that must succeed.
pub fn ok(args: &[&str]) -> Out {
    let out = bitnet(args, "");
    assert_eq!(out.code, 0, "bitnet {args:?} failed:\n{}", out.stderr);
    out
}
