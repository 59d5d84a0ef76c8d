//! fuzz/fuzz_targets/model_gguf.rs and model_hf.rs as plain, deterministic tests: mutations
//! of a real (synthesized, 2-layer) checkpoint all the way through the model loader — GGUF
//! bytes into `Model::from_gguf`, an HF folder's config.json and safetensors header into
//! `Model::from_hf_dir`. Errors are expected; a panic, an abort or a slow load fails.

use std::path::Path;
use std::time::{Duration, Instant};

use bitnet_convert::synth::{synth, EmbedType, Format, Shape, SynthSpec};
use bitnet_gguf::GgufFile;
use bitnet_model::Model;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One edit at a random place of `buf[..hot]` (most of the time) or anywhere.
fn mutate(buf: &mut Vec<u8>, hot: usize, r: &mut Rng) {
    if buf.is_empty() {
        buf.push(r.next() as u8);
        return;
    }
    let span = if r.below(5) == 0 {
        buf.len()
    } else {
        hot.min(buf.len())
    };
    let at = r.below(span);
    match r.below(6) {
        0 => buf[at] ^= 1 << r.below(8),
        1 => buf[at] = r.next() as u8,
        2 => {
            let v: u64 = [0, 1, u64::MAX, u32::MAX as u64, 1 << 40, 1 << 31, 3, 2][r.below(8)];
            let w = if r.below(2) == 0 { 4 } else { 8 };
            for (k, b) in v.to_le_bytes()[..w].iter().enumerate() {
                if let Some(x) = buf.get_mut(at + k) {
                    *x = *b;
                }
            }
        }
        3 => buf.truncate(at),
        4 => buf.insert(at, r.next() as u8),
        _ => {
            buf.remove(at);
        }
    }
}

fn checkpoint(dir: &Path, format: Format) -> std::path::PathBuf {
    let out = dir.join(if format.is_gguf() { "m.gguf" } else { "m-hf" });
    let spec = SynthSpec {
        shape: Shape::named("tiny").unwrap(),
        format,
        seed: 5,
        embed: EmbedType::F16,
    };
    synth(&spec, &out, &mut |_, _| {}).unwrap();
    out
}

/// What the fuzz target does with one input.
fn load_gguf_bytes(data: &[u8]) -> bool {
    match GgufFile::from_bytes(data.to_vec()) {
        Ok(f) => Model::from_gguf(&f).is_ok(),
        Err(_) => false,
    }
}

#[test]
fn mutated_gguf_files_through_the_loader() {
    let dir = tempfile::tempdir().unwrap();
    let seed = std::fs::read(checkpoint(dir.path(), Format::GgufI2s)).unwrap();
    assert!(seed.len() > 100_000);
    let header = GgufFile::from_bytes(seed.clone())
        .unwrap()
        .header()
        .data_offset as usize;
    assert!(load_gguf_bytes(&seed), "the unmutated seed must load");
    let mut r = Rng(7);
    let (mut loaded, mut refused) = (0, 0);
    for i in 0..600 {
        let mut b = seed.clone();
        for _ in 0..1 + r.below(4) {
            mutate(&mut b, header, &mut r);
        }
        let t0 = Instant::now();
        if load_gguf_bytes(&b) {
            loaded += 1;
        } else {
            refused += 1;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "mutation {i} took {:?}",
            t0.elapsed()
        );
    }
    // Both outcomes happen: the mutations reach past the parser into the loader.
    assert!(
        loaded > 0 && refused > 0,
        "loaded {loaded}, refused {refused}"
    );
}

#[test]
fn mutated_hf_folders_through_the_loader() {
    let dir = tempfile::tempdir().unwrap();
    let src = checkpoint(dir.path(), Format::HfPacked);
    let config = std::fs::read(src.join("config.json")).unwrap();
    let weights = std::fs::read(src.join("model.safetensors")).unwrap();
    let header = 8 + u64::from_le_bytes(weights[..8].try_into().unwrap()) as usize;
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let mut r = Rng(11);
    let (mut loaded, mut refused) = (0, 0);
    for i in 0..400 {
        let (mut c, mut w) = (config.clone(), weights.clone());
        if r.below(2) == 0 {
            // config.json: a number replaced by an extreme one, or byte edits.
            let text = String::from_utf8_lossy(&c).into_owned();
            let nums: Vec<usize> = text
                .char_indices()
                .filter(|&(k, ch)| {
                    ch.is_ascii_digit()
                        && !text[..k].ends_with(|p: char| p.is_ascii_digit() || p == '.')
                })
                .map(|(k, _)| k)
                .collect();
            if !nums.is_empty() && r.below(3) > 0 {
                let at = nums[r.below(nums.len())];
                let end = text[at..]
                    .find(|ch: char| !(ch.is_ascii_digit() || ch == '.' || ch == 'e' || ch == '-'))
                    .map_or(text.len(), |e| at + e);
                let v = [
                    "0",
                    "1",
                    "100000000",
                    "18446744073709551615",
                    "1e308",
                    "-1",
                    "3.5",
                    "65536",
                ][r.below(8)];
                c = format!("{}{v}{}", &text[..at], &text[end..]).into_bytes();
            } else {
                let len = c.len();
                mutate(&mut c, len, &mut r);
            }
        } else {
            for _ in 0..1 + r.below(3) {
                mutate(&mut w, header, &mut r);
            }
        }
        std::fs::write(work.join("config.json"), &c).unwrap();
        std::fs::write(work.join("model.safetensors"), &w).unwrap();
        let t0 = Instant::now();
        if Model::from_hf_dir(&work).is_ok() {
            loaded += 1;
        } else {
            refused += 1;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "mutation {i} took {:?}",
            t0.elapsed()
        );
    }
    assert!(
        loaded > 0 && refused > 0,
        "loaded {loaded}, refused {refused}"
    );
}
