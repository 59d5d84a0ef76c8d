//! `load_tokenizer(path)`: pick the right loader for a GGUF file, a `tokenizer.json`, a
//! tiktoken or SentencePiece `tokenizer.model`, or a model directory.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value as Json;

use crate::core::CoreTokenizer;
use crate::error::{Result, TokenizerError};
use crate::hf::HfTokenizer;
use crate::{SpecialTokens, Tokenizer};

/// A loaded tokenizer plus what came with it.
#[derive(Clone)]
pub struct LoadedTokenizer {
    /// The tokenizer.
    pub tokenizer: Arc<dyn Tokenizer>,
    /// The file the vocabulary was read from.
    pub source: PathBuf,
    /// Chat template (Jinja) from `tokenizer_config.json` or the GGUF key
    /// `tokenizer.chat_template`, as stored (possibly a known-broken placeholder: see
    /// [`crate::chat::ChatTemplate::for_model`]).
    pub chat_template: Option<String>,
    /// Model architecture if known (GGUF `general.architecture`, or `config.json`'s
    /// `model_type`), for choosing a built-in chat format.
    pub architecture: Option<String>,
    /// `bos_token` / `eos_token` spellings (for Jinja templates).
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
}

impl std::fmt::Debug for LoadedTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedTokenizer")
            .field("tokenizer", &self.tokenizer.describe())
            .field("source", &self.source)
            .field("architecture", &self.architecture)
            .field("has_chat_template", &self.chat_template.is_some())
            .finish()
    }
}

fn io_err(path: &Path, error: std::io::Error) -> TokenizerError {
    TokenizerError::Io {
        path: path.to_path_buf(),
        error,
    }
}

fn read_head(path: &Path, n: usize) -> Result<Vec<u8>> {
    let mut f = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
    let mut buf = vec![0u8; n];
    let mut len = 0;
    while len < n {
        let k = f.read(&mut buf[len..]).map_err(|e| io_err(path, e))?;
        if k == 0 {
            break;
        }
        len += k;
    }
    buf.truncate(len);
    Ok(buf)
}

/// What kind of tokenizer file `path` is, judged by content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Gguf,
    TokenizerJson,
    Tiktoken,
    SentencePiece,
}

/// Detect a tokenizer file's kind from its first bytes.
pub fn detect(path: &Path) -> Result<FileKind> {
    let head = read_head(path, 4096)?;
    if head.starts_with(b"GGUF") {
        return Ok(FileKind::Gguf);
    }
    if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        return Ok(FileKind::TokenizerJson);
    }
    if crate::tiktoken::looks_like_tiktoken(&head) {
        return Ok(FileKind::Tiktoken);
    }
    if crate::sentencepiece::looks_like_sentencepiece(&head) {
        return Ok(FileKind::SentencePiece);
    }
    Err(TokenizerError::Unsupported {
        path: path.to_path_buf(),
        msg: "not a GGUF, tokenizer.json, tiktoken or SentencePiece tokenizer file".into(),
    })
}

fn read_json(path: &Path) -> Result<Option<Json>> {
    if !path.is_file() {
        return Ok(None);
    }
    let s = std::fs::read_to_string(path).map_err(|e| io_err(path, e))?;
    serde_json::from_str(&s)
        .map(Some)
        .map_err(|e| TokenizerError::format(path, format!("invalid JSON: {e}")))
}

/// A token spelling from `tokenizer_config.json` (`"<s>"` or `{"content": "<s>", ...}`).
fn token_str(v: Option<&Json>) -> Option<String> {
    match v? {
        Json::String(s) => Some(s.clone()),
        Json::Object(o) => o.get("content")?.as_str().map(str::to_string),
        _ => None,
    }
}

fn ids(v: Option<&Json>) -> Vec<u32> {
    match v {
        Some(Json::Number(n)) => n.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
        Some(Json::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_u64())
            .map(|x| x as u32)
            .collect(),
        _ => vec![],
    }
}

/// The chat template of a `tokenizer_config.json` (a string, or a list of named templates of
/// which `default` is taken).
fn config_chat_template(cfg: &Json) -> Option<String> {
    match cfg.get("chat_template")? {
        Json::String(s) => Some(s.clone()),
        Json::Array(list) => list
            .iter()
            .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
            .or_else(|| list.first())
            .and_then(|t| t.get("template"))
            .and_then(|t| t.as_str())
            .map(str::to_string),
        _ => None,
    }
}

/// Folder-level settings read from the JSON configs beside a tokenizer file.
#[derive(Default)]
struct FolderConfig {
    bos_token: Option<String>,
    eos_token: Option<String>,
    pad_token: Option<String>,
    unk_token: Option<String>,
    add_bos: Option<bool>,
    add_eos: Option<bool>,
    chat_template: Option<String>,
    bos_ids: Vec<u32>,
    eos_ids: Vec<u32>,
    pad_ids: Vec<u32>,
    architecture: Option<String>,
}

fn folder_config(dir: &Path) -> Result<FolderConfig> {
    let mut c = FolderConfig::default();
    for name in ["special_tokens_map.json", "tokenizer_config.json"] {
        if let Some(j) = read_json(&dir.join(name))? {
            c.bos_token = token_str(j.get("bos_token")).or(c.bos_token);
            c.eos_token = token_str(j.get("eos_token")).or(c.eos_token);
            c.pad_token = token_str(j.get("pad_token")).or(c.pad_token);
            c.unk_token = token_str(j.get("unk_token")).or(c.unk_token);
            if let Some(b) = j.get("add_bos_token").and_then(|v| v.as_bool()) {
                c.add_bos = Some(b);
            }
            if let Some(b) = j.get("add_eos_token").and_then(|v| v.as_bool()) {
                c.add_eos = Some(b);
            }
            if let Some(t) = config_chat_template(&j) {
                c.chat_template = Some(t);
            }
        }
    }
    if c.chat_template.is_none() {
        let jinja = dir.join("chat_template.jinja");
        if jinja.is_file() {
            c.chat_template = Some(std::fs::read_to_string(&jinja).map_err(|e| io_err(&jinja, e))?);
        }
    }
    for name in ["config.json", "generation_config.json"] {
        if let Some(j) = read_json(&dir.join(name))? {
            let b = ids(j.get("bos_token_id"));
            if !b.is_empty() {
                c.bos_ids = b;
            }
            let e = ids(j.get("eos_token_id"));
            if !e.is_empty() {
                c.eos_ids = e;
            }
            let p = ids(j.get("pad_token_id"));
            if !p.is_empty() {
                c.pad_ids = p;
            }
            if let Some(mt) = j.get("model_type").and_then(|v| v.as_str()) {
                c.architecture = Some(mt.to_string());
            }
        }
    }
    Ok(c)
}

/// Merge folder settings into a tokenizer's defaults.
fn apply_folder(tok: &dyn Tokenizer, c: &FolderConfig) -> SpecialTokens {
    let mut s = tok.special_tokens().clone();
    let n = tok.vocab_size() as u32;
    let by_name = |t: &Option<String>| t.as_deref().and_then(|t| tok.token_to_id(t));
    if let Some(b) = by_name(&c.bos_token).or(c.bos_ids.first().copied().filter(|&i| i < n)) {
        s.bos = Some(b);
    }
    let eos_named = by_name(&c.eos_token);
    if let Some(e) = eos_named.or(c.eos_ids.first().copied().filter(|&i| i < n)) {
        s.eos = Some(e);
    }
    if let Some(p) = by_name(&c.pad_token).or(c.pad_ids.first().copied().filter(|&i| i < n)) {
        s.pad = Some(p);
    }
    if let Some(u) = by_name(&c.unk_token) {
        s.unk = Some(u);
    }
    if let Some(b) = c.add_bos {
        s.add_bos = b;
    }
    if let Some(b) = c.add_eos {
        s.add_eos = b;
    }
    let mut extra = s.eog.clone();
    extra.extend(c.eos_ids.iter().copied().filter(|&i| i < n));
    extra.extend(eos_named);
    s.finish_eog(&extra);
    s
}

/// Load a tokenizer from a GGUF file, a `tokenizer.json`, a `tokenizer.model` (tiktoken or
/// SentencePiece, detected by content) or a model directory (prefers `tokenizer.json`, then
/// `tokenizer.model`, then a single `*.gguf`; reads `tokenizer_config.json`,
/// `special_tokens_map.json`, `generation_config.json` and `config.json` for special ids,
/// add-BOS and the chat template).
pub fn load_tokenizer(path: impl AsRef<Path>) -> Result<LoadedTokenizer> {
    let path = path.as_ref();
    if path.is_dir() {
        return load_dir(path);
    }
    if !path.exists() {
        return Err(io_err(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
        ));
    }
    match detect(path)? {
        FileKind::Gguf => load_gguf(path),
        kind => {
            // A lone tokenizer file: its folder's configs still apply.
            let dir = path.parent().unwrap_or(Path::new("."));
            load_file_with_folder(path, kind, dir)
        }
    }
}

fn load_gguf(path: &Path) -> Result<LoadedTokenizer> {
    let f = bitnet_gguf::GgufFile::open(path)?;
    if !crate::gguf_vocab::has_vocab(&f) {
        return Err(TokenizerError::Unsupported {
            path: path.to_path_buf(),
            msg: "this GGUF has no embedded vocabulary (tokenizer.ggml.model / tokenizer.ggml.tokens)".into(),
        });
    }
    let tok = crate::gguf_vocab::from_gguf(&f)?;
    let sp = tok.special_tokens().clone();
    let spell = |id: Option<u32>| id.and_then(|i| tok.id_to_token(i));
    Ok(LoadedTokenizer {
        bos_token: spell(sp.bos),
        eos_token: spell(sp.eos),
        chat_template: crate::gguf_vocab::chat_template(&f),
        architecture: f.architecture().map(str::to_string),
        source: path.to_path_buf(),
        tokenizer: Arc::new(tok),
    })
}

fn load_dir(dir: &Path) -> Result<LoadedTokenizer> {
    for name in ["tokenizer.json", "tokenizer.model"] {
        let p = dir.join(name);
        if p.is_file() {
            let kind = detect(&p)?;
            return load_file_with_folder(&p, kind, dir);
        }
    }
    let mut ggufs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io_err(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("gguf"))
        .collect();
    ggufs.sort();
    match ggufs.len() {
        0 => Err(TokenizerError::Unsupported {
            path: dir.to_path_buf(),
            msg: "no tokenizer.json, tokenizer.model or .gguf file in this directory".into(),
        }),
        1 => load_gguf(&ggufs[0]),
        _ => Err(TokenizerError::Unsupported {
            path: dir.to_path_buf(),
            msg: format!(
                "no tokenizer.json or tokenizer.model, and {} .gguf files: name one",
                ggufs.len()
            ),
        }),
    }
}

fn load_file_with_folder(path: &Path, kind: FileKind, dir: &Path) -> Result<LoadedTokenizer> {
    let cfg = folder_config(dir)?;
    let tokenizer: Arc<dyn Tokenizer> = match kind {
        FileKind::TokenizerJson => {
            let mut t = HfTokenizer::from_file(path)?;
            let s = apply_folder(&t, &cfg);
            t.set_special_tokens(s);
            Arc::new(t)
        }
        FileKind::Tiktoken | FileKind::SentencePiece => {
            let mut t: CoreTokenizer = if kind == FileKind::Tiktoken {
                crate::tiktoken::load(path)?
            } else {
                crate::sentencepiece::load(path)?
            };
            let s = apply_folder(&t, &cfg);
            t.set_special_tokens(s);
            Arc::new(t)
        }
        FileKind::Gguf => return load_gguf(path),
    };
    let spell = |id: Option<u32>| id.and_then(|i| tokenizer.id_to_token(i));
    let sp = tokenizer.special_tokens().clone();
    Ok(LoadedTokenizer {
        bos_token: cfg.bos_token.clone().or_else(|| spell(sp.bos)),
        eos_token: cfg.eos_token.clone().or_else(|| spell(sp.eos)),
        chat_template: cfg.chat_template,
        architecture: cfg.architecture,
        source: path.to_path_buf(),
        tokenizer,
    })
}
