//! Arbitrary bytes through the GGUF parser; when a file parses, every tensor's bytes go
//! through the decoders too. Nothing may panic, hang or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bitnet_gguf::GgufHeader::parse(data, data.len() as u64);
    if let Ok(f) = bitnet_gguf::GgufFile::from_bytes(data.to_vec()) {
        for info in f.tensors() {
            let bytes = f.tensor_data(info);
            let n = info.n_elements() as usize;
            let _ = bitnet_quants::dequantize(info.ggml_type, bytes, n);
            if info.dims.len() == 2 {
                let (cols, rows) = (info.dims[0] as usize, info.dims[1] as usize);
                let _ = bitnet_quants::ternary_from_ggml(info.ggml_type, bytes, rows, cols);
            }
        }
    }
});
