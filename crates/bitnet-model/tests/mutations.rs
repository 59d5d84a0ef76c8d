//! Corrupted files never make the loader panic: deterministic random byte changes in the
//! header of a real GGUF (metadata values, tensor dims, types, offsets) and in an HF
//! config.json each give Ok or an error.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use bitnet_gguf::GgufFile;
use bitnet_model::Model;

/// xorshift64*: a fixed sequence, so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn mutated_gguf_headers_do_not_panic() {
    let Some(s) = common::shared() else { return };
    let bytes = std::fs::read(s.join("data/bitnetcpp/tiny/model-i2_s.gguf")).unwrap();
    let header_len = 31744; // data section start (MANIFEST.md)
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut ok, mut err) = (0, 0);
    for _ in 0..300 {
        let mut b = bytes.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(header_len);
            b[at] = match rng.below(4) {
                0 => 0,
                1 => 0xff,
                2 => b[at] ^ (1 << rng.below(8)),
                _ => rng.next() as u8,
            };
        }
        let r = catch_unwind(AssertUnwindSafe(|| {
            GgufFile::from_bytes(b).map(|f| Model::from_gguf(&f).map(|_| ()))
        }));
        match r {
            Ok(Ok(Ok(()))) => ok += 1,
            Ok(_) => err += 1,
            Err(_) => panic!("loader panicked on a mutated header"),
        }
    }
    eprintln!("mutated GGUFs: {ok} loaded, {err} refused");
    assert!(err > 0);
}

#[test]
fn mutated_config_json_does_not_panic() {
    let Some(s) = common::shared() else { return };
    let src = s.join("data/real-models/bitllama2c-tinystories-1m");
    let text = std::fs::read_to_string(src.join("config.json")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(
        src.join("model.safetensors"),
        tmp.path().join("model.safetensors"),
    )
    .unwrap();
    let mut rng = Rng(42);
    let values = [
        "0",
        "-1",
        "1e30",
        "null",
        "\"x\"",
        "[]",
        "{}",
        "true",
        "18446744073709551615",
        "3",
    ];
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let keys: Vec<String> = json.as_object().unwrap().keys().cloned().collect();
    let mut refused = 0;
    for _ in 0..150 {
        let mut j = json.clone();
        let k = &keys[rng.below(keys.len())];
        let v: serde_json::Value = serde_json::from_str(values[rng.below(values.len())]).unwrap();
        if k == "quantization_config" && rng.below(2) == 0 {
            let qk = [
                "linear_class",
                "quantization_mode",
                "use_rms_norm",
                "rms_norm_eps",
                "modules_to_not_convert",
            ];
            j[k][qk[rng.below(qk.len())]] = v;
        } else {
            j[k] = v;
        }
        std::fs::write(tmp.path().join("config.json"), j.to_string()).unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| Model::load(tmp.path()).map(|_| ())));
        match r {
            Ok(Ok(())) => {}
            Ok(Err(_)) => refused += 1,
            Err(_) => panic!("loader panicked on config {j}"),
        }
    }
    assert!(refused > 0);
}
