//! Pseudo-random text through every tokenizer kind: never a panic, and byte-exact round trips
//! where the format promises them.

mod common;

use bitnet_tokenizer::{load_tokenizer, StreamDecoder, Tokenizer};

/// Deterministic xorshift generator (no dependency, reproducible failures).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[(self.next() % v.len() as u64) as usize]
    }
}

fn random_texts(n: usize) -> Vec<String> {
    let atoms = [
        "a",
        "Z",
        "é",
        "ß",
        "Ω",
        "ж",
        "中",
        "文",
        "한",
        "ក",
        "ា",
        "\u{301}",
        "🦙",
        "😶\u{200d}🌫\u{fe0f}",
        " ",
        "  ",
        "\t",
        "\n",
        "\r\n",
        "\u{a0}",
        "\u{3000}",
        "0",
        "123",
        "'s",
        "'LL",
        "!",
        "?!",
        "...",
        "<",
        "|",
        ">",
        "<s>",
        "</s>",
        "<|eot_id|>",
        "<|begin_of_text|>",
        "<0x41>",
        "▁",
        "Ġ",
        "\u{0}",
        "\u{7f}",
        "\u{ffff}",
        "\u{10ffff}",
    ];
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    (0..n)
        .map(|_| {
            let len = (r.next() % 24) as usize;
            (0..len).map(|_| r.pick(&atoms)).collect()
        })
        .collect()
}

fn check(name: &str, tok: &dyn Tokenizer, exact: bool) {
    for text in random_texts(400) {
        for parse_special in [false, true] {
            let ids = tok
                .encode(&text, true, parse_special)
                .unwrap_or_else(|e| panic!("[{name}] encode {text:?}: {e}"));
            assert!(
                ids.iter().all(|&i| (i as usize) < tok.vocab_size()),
                "[{name}] id out of range"
            );
            let whole = tok.decode(&ids, parse_special);
            let mut sd = StreamDecoder::new(tok.strips_leading_space(), parse_special);
            let mut streamed: String = ids.iter().map(|&i| sd.push(tok, i)).collect();
            streamed.push_str(&sd.finish());
            if exact {
                // With specials parsed, BOS renders as its spelling in front.
                let want = if parse_special {
                    let bos = tok.special_tokens().bos.map(|b| tok.decode(&[b], true));
                    format!("{}{text}", bos.unwrap_or_default())
                } else {
                    text.clone()
                };
                assert_eq!(
                    whole, want,
                    "[{name}] round trip of {text:?} (parse_special {parse_special})"
                );
                assert_eq!(streamed, want, "[{name}] streamed round trip of {text:?}");
            }
        }
    }
}

#[test]
fn random_text_round_trips() {
    let Some(s) = common::shared() else { return };
    let d = s.join("data");
    let l3 = load_tokenizer(d.join("llama3/tokenizer.model")).unwrap();
    check("llama3 tiktoken", l3.tokenizer.as_ref(), true);
    for v in ["gpt-2", "deepseek-coder", "falcon", "starcoder"] {
        let t = load_tokenizer(d.join(format!("gguf-vocab/ggml-vocab-{v}.gguf"))).unwrap();
        check(v, t.tokenizer.as_ref(), true);
    }
    let spm = load_tokenizer(d.join("gguf-vocab/ggml-vocab-llama-spm.gguf")).unwrap();
    check("llama-spm", spm.tokenizer.as_ref(), false);
    let ts = d.join("real-models/bitllama2c-tinystories-3m");
    for f in ["tokenizer.json", "tokenizer.model"] {
        let t = load_tokenizer(ts.join(f)).unwrap();
        check(f, t.tokenizer.as_ref(), false);
    }
    let tiny = load_tokenizer(d.join("bitnetcpp/tiny/model-i2_s.gguf")).unwrap();
    check("bitnet tiny gguf", tiny.tokenizer.as_ref(), true);
}
