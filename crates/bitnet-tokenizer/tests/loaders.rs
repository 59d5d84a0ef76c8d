//! Loading every supported source, special-token handling, decoding and streaming.

mod common;

use bitnet_tokenizer::{load_tokenizer, StreamDecoder, TokenizerError};

#[test]
fn tinystories_json_and_sentencepiece_agree() {
    let Some(s) = common::shared() else { return };
    let d = s.join("data/real-models/bitllama2c-tinystories-3m");
    let json = load_tokenizer(d.join("tokenizer.json")).expect("tokenizer.json");
    let spm = load_tokenizer(d.join("tokenizer.model")).expect("tokenizer.model");
    assert!(json.tokenizer.describe().contains("tokenizer.json"));
    assert!(spm.tokenizer.describe().contains("SentencePiece"));
    for t in [&json, &spm] {
        let sp = t.tokenizer.special_tokens();
        // From the folder's tokenizer_config.json / generation_config.json.
        assert_eq!((sp.bos, sp.eos, sp.add_bos), (Some(1), Some(2), true));
        assert_eq!(t.tokenizer.vocab_size(), 512);
    }
    let text = std::fs::read_to_string(s.join("data/text/tinystories-head.txt")).unwrap();
    let mut n = 0;
    for line in text.lines().take(300) {
        // Ordinary text: the json conversion does not collapse repeated spaces, so skip those.
        if line.contains("  ") || line.starts_with(' ') || line.ends_with(' ') {
            continue;
        }
        let a = json.tokenizer.encode(line, true, false).unwrap();
        let b = spm.tokenizer.encode(line, true, false).unwrap();
        assert_eq!(a, b, "disagree on {line:?}");
        assert_eq!(a[0], 1);
        assert_eq!(json.tokenizer.decode(&a, false), line);
        assert_eq!(spm.tokenizer.decode(&b, false), line);
        n += 1;
    }
    assert!(n > 100, "too few lines compared: {n}");
    // The model folder picks tokenizer.json and reads the same configs.
    let dir = load_tokenizer(&d).unwrap();
    assert!(dir.source.ends_with("tokenizer.json"));
    // "Once upon a time": SentencePiece pieces ▁Once ▁upon ▁a ▁time exist in this vocabulary.
    let ids = dir
        .tokenizer
        .encode("Once upon a time", false, false)
        .unwrap();
    let pieces: Vec<String> = ids
        .iter()
        .map(|&i| dir.tokenizer.id_to_token(i).unwrap())
        .collect();
    assert_eq!(pieces, ["▁Once", "▁upon", "▁a", "▁time"]);
}

#[test]
fn sentencepiece_collapses_spaces_and_falls_back_to_bytes() {
    let Some(s) = common::shared() else { return };
    let d = s.join("data/real-models/bitllama2c-tinystories-3m");
    let spm = load_tokenizer(d.join("tokenizer.model")).unwrap().tokenizer;
    // SentencePiece's default normalizer collapses runs of spaces and trims.
    assert_eq!(
        spm.encode("  a   b ", false, false).unwrap(),
        spm.encode("a b", false, false).unwrap()
    );
    // A character outside the 512 pieces becomes its UTF-8 bytes <0xF0> <0x9F> <0xA6> <0x99>.
    let ids = spm.encode("a🦙", false, false).unwrap();
    let pieces: Vec<String> = ids.iter().map(|&i| spm.id_to_token(i).unwrap()).collect();
    assert_eq!(
        &pieces[pieces.len() - 4..],
        ["<0xF0>", "<0x9F>", "<0xA6>", "<0x99>"]
    );
    assert_eq!(spm.decode(&ids, false), "a🦙");
}

#[test]
fn llama3_special_tokens_only_when_asked() {
    let Some(s) = common::shared() else { return };
    let t = load_tokenizer(s.join("data/llama3/tokenizer.model")).unwrap();
    let tok = &t.tokenizer;
    let sp = tok.special_tokens();
    assert_eq!(sp.bos, Some(128000));
    assert_eq!(sp.eos, Some(128001));
    assert_eq!(sp.eot, Some(128009));
    assert!(sp.add_bos);
    assert!(tok.is_eog(128009) && tok.is_eog(128001) && !tok.is_eog(128000));
    let text = "Hi<|eot_id|>";
    let parsed = tok.encode(text, true, true).unwrap();
    assert_eq!(parsed.first(), Some(&128000));
    assert_eq!(parsed.last(), Some(&128009));
    assert_eq!(parsed.len(), 3);
    let raw = tok.encode(text, false, false).unwrap();
    assert!(
        raw.iter().all(|&i| i < 128000),
        "raw text produced a special id: {raw:?}"
    );
    assert_eq!(tok.decode(&raw, false), text);
    // Control tokens are dropped from decoded text unless rendered.
    assert_eq!(tok.decode(&parsed, false), "Hi");
    assert_eq!(tok.decode(&parsed, true), "<|begin_of_text|>Hi<|eot_id|>");
    assert_eq!(tok.token_to_id("<|start_header_id|>"), Some(128006));
    // Llama 3 vectors: " Hello world" = [22691, 1917] (llama.cpp's test file).
    assert_eq!(
        tok.encode(" Hello world", false, false).unwrap(),
        [22691, 1917]
    );
}

#[test]
fn streaming_never_splits_characters() {
    let Some(s) = common::shared() else { return };
    let t = load_tokenizer(s.join("data/llama3/tokenizer.model")).unwrap();
    let tok = t.tokenizer.as_ref();
    let text = "Llama 🦙 says héllo 我想在apple工作 😶‍🌫️!";
    let ids = tok.encode(text, false, false).unwrap();
    let mut d = StreamDecoder::new(false, false);
    let mut out = String::new();
    let mut held_back = false;
    for &id in &ids {
        let piece = d.push(tok, id);
        assert!(
            !piece.contains('\u{FFFD}'),
            "replacement char in streamed piece"
        );
        held_back |= d.has_pending();
        out.push_str(&piece);
    }
    out.push_str(&d.finish());
    assert_eq!(out, text);
    // 🦙 is split over several byte tokens by this vocabulary (llama.cpp vector: 11410, 99, 247).
    assert!(held_back, "expected at least one character to be held back");
}

#[test]
fn gguf_bitnet_tiny_vocab() {
    let Some(s) = common::shared() else { return };
    let t = load_tokenizer(s.join("data/bitnetcpp/tiny/model-i2_s.gguf")).unwrap();
    let sp = t.tokenizer.special_tokens();
    // MANIFEST.md: bos 1, eos 2, unk 0, add_bos true, 1000 tokens, bitnet-25.
    assert_eq!(
        (sp.bos, sp.eos, sp.unk, sp.add_bos),
        (Some(1), Some(2), Some(0), true)
    );
    assert_eq!(t.tokenizer.vocab_size(), 1000);
    assert_eq!(t.architecture.as_deref(), Some("bitnet-25"));
    assert!(t
        .chat_template
        .as_deref()
        .unwrap_or("")
        .starts_with("{% for message in messages %}"));
    let text = "First Citizen:\nBefore we proceed any further, hear me speak.";
    let ids = t.tokenizer.encode(text, true, false).unwrap();
    assert_eq!(ids[0], 1);
    assert_eq!(t.tokenizer.decode(&ids, false), text);
    // The HF folder's tokenizer.json decodes the same ids back to the same text.
    let hf = load_tokenizer(s.join("data/bitnetcpp/tiny")).unwrap();
    assert!(hf.source.ends_with("tokenizer.json"));
    assert_eq!(hf.tokenizer.decode(&ids, false), text);
    let hf_ids = hf.tokenizer.encode(text, true, false).unwrap();
    assert_eq!(hf_ids[0], 1);
    assert_eq!(hf.tokenizer.decode(&hf_ids, false), text);
}

#[test]
fn clear_errors() {
    let dir = std::env::temp_dir().join(format!("bitnet-tok-err-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("nope.model");
    assert!(matches!(
        load_tokenizer(&missing),
        Err(TokenizerError::Io { .. })
    ));
    let junk = dir.join("junk.bin");
    std::fs::write(&junk, [0xFFu8, 0, 1, 2]).unwrap();
    let e = load_tokenizer(&junk).unwrap_err();
    assert!(matches!(e, TokenizerError::Unsupported { .. }), "{e}");
    let bad_tt = dir.join("bad.model");
    std::fs::write(&bad_tt, "IQ== 0\nIg== x\n").unwrap();
    let e = load_tokenizer(&bad_tt).unwrap_err();
    assert!(e.to_string().contains("line 2"), "{e}");
    let gap = dir.join("gap.model");
    std::fs::write(&gap, "IQ== 0\nIg== 2\n").unwrap();
    let e = load_tokenizer(&gap).unwrap_err();
    assert!(e.to_string().contains("rank 1 is missing"), "{e}");
    let bad_json = dir.join("tokenizer.json");
    std::fs::write(&bad_json, "{ not json").unwrap();
    assert!(load_tokenizer(&bad_json).is_err());
    let bad_sp = dir.join("sp.model");
    std::fs::write(&bad_sp, [0x0A, 0x50, 0x0A]).unwrap();
    let e = load_tokenizer(&bad_sp).unwrap_err();
    assert!(e.to_string().contains("past the end"), "{e}");
    let empty_dir = dir.join("empty");
    std::fs::create_dir_all(&empty_dir).unwrap();
    assert!(matches!(
        load_tokenizer(&empty_dir),
        Err(TokenizerError::Unsupported { .. })
    ));
    std::fs::remove_dir_all(&dir).ok();
}
