//! Encoding throughput on ~1 MB of real text (run: `cargo bench -p bitnet-tokenizer`).
//! Needs the shared data folder (BITNET_SHARED, default ../shared).

use std::time::Instant;

use bitnet_tokenizer::Tokenizer;

fn main() {
    let shared = bitnet_testdata::shared_path();
    let data = shared.join("data");
    if !data.is_dir() {
        eprintln!("SKIPPED: shared data not found at {}", shared.display());
        return;
    }
    let t0 = Instant::now();
    let tok = bitnet_tokenizer::tiktoken::load(&data.join("llama3/tokenizer.model")).expect("load");
    println!(
        "llama3 tiktoken load: {:.1} ms",
        t0.elapsed().as_secs_f64() * 1e3
    );
    let mut cases: Vec<(&str, Box<dyn Tokenizer>)> = vec![("llama3 tiktoken", Box::new(tok))];
    if let Ok(t) =
        bitnet_tokenizer::gguf_vocab::load(&data.join("gguf-vocab/ggml-vocab-llama-spm.gguf"))
    {
        cases.push(("gguf llama-spm", Box::new(t)));
    }
    if let Ok(t) =
        bitnet_tokenizer::gguf_vocab::load(&data.join("gguf-vocab/ggml-vocab-gpt-2.gguf"))
    {
        cases.push(("gguf gpt-2", Box::new(t)));
    }
    let ts = data.join("real-models/bitllama2c-tinystories-3m");
    if let Ok(t) = bitnet_tokenizer::hf::HfTokenizer::from_file(&ts.join("tokenizer.json")) {
        cases.push(("hf json (spm)", Box::new(t)));
    }
    if let Ok(t) = bitnet_tokenizer::sentencepiece::load(&ts.join("tokenizer.model")) {
        cases.push(("sentencepiece", Box::new(t)));
    }
    for file in ["tinyshakespeare.txt", "tinystories-head.txt"] {
        let text = std::fs::read_to_string(data.join("text").join(file)).expect("read text");
        for (name, tok) in &cases {
            let t0 = Instant::now();
            let ids = tok.encode(&text, false, false).expect("encode");
            let dt = t0.elapsed().as_secs_f64();
            println!(
                "{name:>16} {file:>22}: {} bytes -> {} tokens in {:.1} ms ({:.2} MB/s)",
                text.len(),
                ids.len(),
                dt * 1e3,
                text.len() as f64 / dt / 1e6
            );
            let back = tok.decode(&ids, false);
            // SentencePiece normalizes whitespace, so only byte-level vocabularies round-trip.
            if back != text {
                println!("{name:>16} {file:>22}: decode differs from the input (whitespace normalization)");
            }
        }
    }
}
