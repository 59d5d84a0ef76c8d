//! Arbitrary bytes as a `bitnet perplexity --kl-divergence` base file: the header is checked
//! against the length before anything is sized from it, then every row is read.
#![no_main]

use bitnet_generate::perplexity::base;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut r = data;
    let Ok(h) = base::read_header(&mut r, data.len() as u64) else {
        return;
    };
    let mut row = vec![0f32; h.vocab];
    while base::read_row(&mut r, &mut row).is_ok() {}
    assert!(r.is_empty(), "a checked header leaves whole rows");
});
