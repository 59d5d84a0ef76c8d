//! `bitnet serve` as a user runs it: the real binary on loopback, driven by the official
//! `openai` Python client (`scripts/serve/openai_client_test.py`), and stopped by SIGTERM.
//! The Python interpreter with `openai` installed comes from `BITNET_PYTHON` (`.ci/run`
//! creates that venv); without it the test is skipped, except under `CI=true`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn python() -> Option<String> {
    match std::env::var("BITNET_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("BITNET_PYTHON (a python with the openai package) is not set under CI=true")
        }
        _ => {
            eprintln!("SKIPPED: BITNET_PYTHON not set (a python with the openai package)");
            None
        }
    }
}

#[test]
fn openai_python_client_against_bitnet_serve() {
    let Some(model) = bitnet_testdata::shared_file("data/real-models/bitllama2c-tinystories-3m")
    else {
        return;
    };
    let Some(py) = python() else {
        return;
    };
    let model = model.to_str().unwrap().to_string();
    let out = common::ok(&[
        "run",
        &model,
        "-p",
        "Once upon a time",
        "--temp",
        "0",
        "-n",
        "24",
    ]);
    // `run` ends its output with a newline of its own.
    let expected = out
        .stdout
        .strip_suffix('\n')
        .unwrap_or(&out.stdout)
        .to_string();
    assert!(
        expected.starts_with(", there was a little girl named Lily."),
        "{expected}"
    );

    let mut server = Command::new(env!("CARGO_BIN_EXE_bitnet"))
        .args([
            "serve",
            &model,
            "--port",
            "0",
            "--model-name",
            "tinystories",
            "--api-key",
            "k1",
            "--parallel",
            "4",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bitnet serve");
    // The address is printed on stderr: "serving tinystories on http://127.0.0.1:PORT/v1 (...".
    let mut stderr = BufReader::new(server.stderr.take().unwrap());
    let mut line = String::new();
    let t0 = Instant::now();
    let base = loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "server exited before listening"
        );
        if let Some(at) = line.find("http://") {
            break line[at..].split_whitespace().next().unwrap().to_string();
        }
        assert!(t0.elapsed() < Duration::from_secs(60));
    };
    let out = Command::new(&py)
        .arg(bitnet_testdata::workspace_root().join("scripts/serve/openai_client_test.py"))
        .args([&base, "k1", &expected])
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // SIGTERM: the server drains and exits 0.
    let pid = server.id() as i32;
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let status = server.wait().unwrap();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
    assert!(
        out.status.success(),
        "python client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    assert!(status.success(), "server exit {status:?}: {rest}");
    assert!(rest.contains("shut down"), "{rest}");
}
