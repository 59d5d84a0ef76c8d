//! `bitnet bench` end to end on a tiny synthetic model: JSON shape, weight bytes per token
//! (checked against a hand count of the tiny shape), and the `--head-accuracy` report.
//! No timing assertions: only that every rate is a positive finite number.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bitnet(args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bitnet"))
        .args(args)
        .output()
        .expect("spawn bitnet");
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "bitnet {args:?} failed:\n{se}");
    (so, se)
}

/// `bitnet synth --shape tiny --format gguf-i2s` into `dir`.
fn tiny(dir: &Path) -> PathBuf {
    let p = dir.join("tiny.gguf");
    bitnet(&[
        "synth",
        "--shape",
        "tiny",
        "--format",
        "gguf-i2s",
        "--out",
        p.to_str().expect("utf-8 temp path"),
    ]);
    p
}

// Tiny shape (bitnet-convert synth): vocab 512, dim 256, ffn 512, 2 layers, 4 heads of 64,
// 2 KV heads (kv_dim 128). Ternary weights per layer, 2 bits each (every dim is a multiple of
// 16, so the kernel layout has no padding): q, o 256·256; k, v 128·256; gate, up 512·256;
// down 256·512 → 589 824 trits = 147 456 bytes. Norms per layer (f32): attn 256, ffn 256,
// attn_sub 256, ffn_sub 512 → 5 120 bytes. Final norm 1 024 bytes; one F16 embedding row 512.
const LAYERS: usize = 2 * (147_456 + 5_120) + 1_024 + 512;
/// Tied F16 head: 512·256·2.
const HEAD_F16: usize = 512 * 256 * 2;
/// Q8 head: 512·256 int8 + one f32 scale and one i32 row sum per row.
const HEAD_Q8: usize = 512 * 256 + 512 * 4 + 512 * 4;

fn check_json(stdout: &str, head: &str, bytes: usize) {
    let v: serde_json::Value = serde_json::from_str(stdout).expect("stdout is JSON");
    let arr = v.as_array().expect("a JSON array");
    let tests: Vec<(String, u64)> = arr
        .iter()
        .map(|o| {
            (
                o["test"].as_str().expect("test").to_string(),
                o["threads"].as_u64().expect("threads"),
            )
        })
        .collect();
    let want: Vec<(String, u64)> = [1u64, 2]
        .iter()
        .flat_map(|&t| [("pp16".to_string(), t), ("tg8".to_string(), t)])
        .collect();
    assert_eq!(tests, want);
    for o in arr {
        let tps = o["tokens_per_s"].as_f64().expect("tokens_per_s");
        assert!(tps.is_finite() && tps > 0.0, "{o}");
        let sd = o["stddev"].as_f64().expect("stddev");
        assert!(sd.is_finite() && sd >= 0.0, "{o}");
        assert_eq!(o["reps"], 1, "{o}");
        assert_eq!(o["head"], head, "{o}");
        assert_eq!(
            o["weight_bytes_per_token"].as_u64(),
            Some(bytes as u64),
            "{o}"
        );
        let isa = o["isa"].as_str().expect("isa");
        assert!(["scalar", "avx2", "avx512", "amx"].contains(&isa), "{o}");
        for suffix in ["", "_huge_pages"] {
            let bw = o[format!("read_gb_per_s{suffix}")]
                .as_f64()
                .expect("read_gb_per_s");
            assert!(bw.is_finite() && bw > 0.0, "{o}");
            let floor = &o[format!("floor_tokens_per_s{suffix}")];
            let pct = &o[format!("pct_of_floor{suffix}")];
            if o["test"] == "tg8" {
                let floor = floor.as_f64().expect("floor");
                assert!(
                    (floor - bw * 1e9 / bytes as f64).abs() <= 1e-9 * floor,
                    "{o}"
                );
                let want = 100.0 * tps / floor;
                assert!(
                    (pct.as_f64().expect("pct") - want).abs() <= 1e-9 * want,
                    "{o}"
                );
            } else {
                assert!(floor.is_null() && pct.is_null(), "{o}");
            }
        }
    }
}

#[test]
fn json_report_on_tiny_model() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let model = tiny(tmp.path());
    let m = model.to_str().expect("utf-8");
    let common = [
        "bench",
        m,
        "-p",
        "16",
        "-n",
        "8",
        "-t",
        "1,2",
        "-r",
        "1",
        "--json",
        "--bandwidth-mib",
        "16",
    ];
    let (out, _) = bitnet(&common);
    check_json(&out, "f16", LAYERS + HEAD_F16);
    let mut q8 = common.to_vec();
    q8.extend(["--head", "q8"]);
    let (out, _) = bitnet(&q8);
    check_json(&out, "q8", LAYERS + HEAD_Q8);
}

#[test]
fn table_and_head_accuracy_on_tiny_model() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let model = tiny(tmp.path());
    let m = model.to_str().expect("utf-8");
    let (out, _) = bitnet(&[
        "bench",
        m,
        "-p",
        "8",
        "-n",
        "4",
        "-t",
        "1",
        "-r",
        "2",
        "--no-bandwidth",
    ]);
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("| tiny.gguf"))
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(
        rows[0].contains("| pp8 |") && rows[1].contains("| tg4 |"),
        "{out}"
    );
    assert!(
        out.contains(&format!("weight bytes per token: {}", LAYERS + HEAD_F16)),
        "{out}"
    );

    let (out, _) = bitnet(&["bench", m, "--head-accuracy", "64", "-t", "1"]);
    // "... mean KL 1.234e-5 nats, max KL ..., top-1 agreement A/64 ..."
    let kl: f64 = out
        .split("mean KL ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no mean KL in {out}"));
    let agree: usize = out
        .split("top-1 agreement ")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no agreement in {out}"));
    // Int8 rows with per-row absmax scales perturb each logit by well under 1%: the
    // distributions stay close and nearly every argmax survives. A broken Q8 path (wrong
    // layout, scale or row sum) gives KL of order 1 and chance-level agreement (1/512).
    assert!(kl.is_finite() && (0.0..1e-2).contains(&kl), "{out}");
    assert!(agree >= 56, "{out}");
}

#[test]
fn synth_spec_benchmarks_an_in_memory_model() {
    let (out, _) = bitnet(&[
        "bench",
        "synth:tiny",
        "-p",
        "4",
        "-n",
        "2",
        "-t",
        "1",
        "-r",
        "1",
        "--no-bandwidth",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("stdout is JSON");
    let arr = v.as_array().expect("array");
    assert_eq!(arr.len(), 2, "{out}");
    assert_eq!(arr[0]["test"], "pp4");
    assert_eq!(arr[1]["test"], "tg2");
    // The same tiny shape as the file-based tests (same synth code, seed 1).
    assert_eq!(
        arr[1]["weight_bytes_per_token"].as_u64(),
        Some((LAYERS + HEAD_F16) as u64)
    );
    assert!(arr[1].get("pct_of_floor").is_none(), "{out}");
    let e = Command::new(env!("CARGO_BIN_EXE_bitnet"))
        .args(["bench", "synth:nope", "-r", "1"])
        .output()
        .expect("spawn");
    assert!(!e.status.success());
    assert!(
        String::from_utf8_lossy(&e.stderr).contains("unknown shape \"nope\""),
        "{}",
        String::from_utf8_lossy(&e.stderr)
    );
}
