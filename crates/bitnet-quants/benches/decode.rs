//! Decode/encode throughput of the ternary formats at the 2B4T FFN shape (6912 × 2560), the
//! work a loader does once per matrix (30 layers × 7 matrices ≈ 2.1 G trits for 2B4T).
//!
//! `cargo bench -p bitnet-quants [-- FILTER]`; prints M trits/s per operation.

use std::hint::black_box;
use std::time::Instant;

use bitnet_quants::*;

fn sample(rows: usize, cols: usize) -> Ternary {
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let trits = (0..rows * cols)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) % 3) as i8 - 1
        })
        .collect();
    Ternary {
        rows,
        cols,
        trits,
        scale: 0.0342,
    }
}

fn time(name: &str, filter: &Option<String>, n: usize, mut f: impl FnMut()) {
    if filter.as_ref().is_some_and(|p| !name.contains(p.as_str())) {
        return;
    }
    f(); // warm up
    let reps = 5;
    let t0 = Instant::now();
    for _ in 0..reps {
        f();
    }
    let s = t0.elapsed().as_secs_f64() / reps as f64;
    println!(
        "{name:<28} {:>9.1} ms  {:>8.0} M trits/s",
        s * 1e3,
        n as f64 / s / 1e6
    );
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let (rows, cols) = (6912, 2560);
    let n = rows * cols;
    let t = sample(rows, cols);
    let i2s = encode_i2s(&t).unwrap();
    let tq2 = encode_tq2_0(&t).unwrap();
    let tq1 = encode_tq1_0(&t).unwrap();
    let hf = pack_hf(&t).unwrap();
    let master = t.to_f32();
    time("decode i2s", &filter, n, || {
        black_box(ternary_from_ggml(GgmlType::I2S, &i2s, rows, cols).unwrap());
    });
    time("decode tq2_0", &filter, n, || {
        black_box(ternary_from_ggml(GgmlType::Tq2_0, &tq2, rows, cols).unwrap());
    });
    time("decode tq1_0", &filter, n, || {
        black_box(ternary_from_ggml(GgmlType::Tq1_0, &tq1, rows, cols).unwrap());
    });
    time("decode hf_packed", &filter, n, || {
        black_box(ternary_from_hf_packed(&hf, rows, cols, 1.0).unwrap());
    });
    time("ternarize_absmean (f32)", &filter, n, || {
        black_box(ternarize_absmean(&master, rows, cols).unwrap());
    });
    time("encode i2s", &filter, n, || {
        black_box(encode_i2s(&t).unwrap());
    });
    time("encode tq2_0", &filter, n, || {
        black_box(encode_tq2_0(&t).unwrap());
    });
    time("encode tq1_0", &filter, n, || {
        black_box(encode_tq1_0(&t).unwrap());
    });
    time("encode hf_packed", &filter, n, || {
        black_box(pack_hf(&t).unwrap());
    });
    time("dequantize i2s -> f32", &filter, n, || {
        black_box(dequantize(GgmlType::I2S, &i2s, n).unwrap());
    });
}
