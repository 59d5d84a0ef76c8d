//! fuzz/fuzz_targets/safetensors_header.rs as a plain, fast test: pseudo-random mutations of a
//! synthetic packed checkpoint's header through the `safetensors` parser (what the model
//! loader uses) and the bitnet-quants decoders. Errors are expected; a panic fails the test.

use bitnet_convert::synth::{synth, EmbedType, Format, Shape, SynthSpec};
use bitnet_quants::{dequantize, ternary_from_hf_packed, GgmlType};
use safetensors::{Dtype, SafeTensors};

fn harness(data: &[u8]) -> bool {
    let Ok(st) = SafeTensors::deserialize(data) else {
        return false;
    };
    for (_, v) in st.tensors() {
        let n: usize = v.shape().iter().product();
        let ty = match v.dtype() {
            Dtype::BF16 => GgmlType::Bf16,
            Dtype::F16 => GgmlType::F16,
            Dtype::F32 => GgmlType::F32,
            Dtype::U8 if v.shape().len() == 2 => {
                let (r, c) = (v.shape()[0], v.shape()[1]);
                let _ = ternary_from_hf_packed(v.data(), r.saturating_mul(4), c, 1.0);
                continue;
            }
            _ => continue,
        };
        let _ = dequantize(ty, v.data(), n);
    }
    true
}

#[test]
fn mutated_safetensors_never_panic() {
    let dir = std::env::temp_dir().join(format!("bitnet-fuzz-st-{}", std::process::id()));
    let spec = SynthSpec {
        shape: Shape::named("tiny").unwrap(),
        format: Format::HfPacked,
        seed: 1,
        embed: EmbedType::F16,
    };
    synth(&spec, &dir, &mut |_, _| {}).unwrap();
    let orig = std::fs::read(dir.join("model.safetensors")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(harness(&orig));
    let header_end = 8 + u64::from_le_bytes(orig[..8].try_into().unwrap()) as usize;
    let mut s = 0x1234_5678_9ABC_DEF0u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut parsed = 0;
    for _ in 0..2000 {
        let mut buf = orig.clone();
        for _ in 0..1 + next() % 3 {
            let at = (next() % header_end.min(buf.len()).max(1) as u64) as usize;
            if at >= buf.len() {
                break;
            }
            match next() % 5 {
                0 => buf[at] ^= 1 << (next() % 8),
                1 => buf[at] = b"0123456789[],:\"{} "[(next() % 18) as usize],
                2 => buf[at] = next() as u8,
                3 => buf.truncate(at + (next() % 4096) as usize),
                _ => {
                    let end = (at + 6).min(buf.len());
                    buf[at..end].fill(b'9');
                }
            }
        }
        parsed += harness(&buf) as u32;
    }
    assert!(parsed > 50, "only {parsed} mutated files parsed");
}
