//! Which files of a repo make "the model": one GGUF file, or an HF model folder.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use crate::HubError;

/// Selector forcing the HF folder (config.json + safetensors) in a repo that also has GGUF files.
pub const SELECT_SAFETENSORS: &str = "safetensors";
/// Selector forcing the default GGUF choice.
pub const SELECT_GGUF: &str = "gguf";

/// Files fetched next to the weights of an HF model folder when the repo has them.
pub const HF_OPTIONAL_FILES: &[&str] = &[
    "generation_config.json",
    "tokenizer.json",
    "tokenizer.model",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
    "chat_template.json",
];

/// What a spec resolves to inside a repo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// One file (a GGUF, or any file named exactly by the selector).
    File(String),
    /// The HF model folder (the snapshot directory).
    Dir,
}

fn is_gguf(f: &str) -> bool {
    f.to_ascii_lowercase().ends_with(".gguf")
}

fn basename(f: &str) -> &str {
    f.rsplit('/').next().unwrap_or(f)
}

fn join(list: &[&String]) -> String {
    if list.is_empty() {
        "none".into()
    } else {
        list.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// True when the listing has a root `config.json` and at least one root `*.safetensors`.
fn has_hf_folder(files: &[String]) -> bool {
    files.iter().any(|f| f == "config.json")
        && files
            .iter()
            .any(|f| !f.contains('/') && f.ends_with(".safetensors"))
}

/// Picks the model in `files` (repo-relative paths) according to `selector`:
/// - none: the GGUF if the repo has `.gguf` files (the only one, else the single `i2_s` one, else
///   an error listing them), else the HF folder if there is `config.json` + `*.safetensors`;
/// - `safetensors`: the HF folder; `gguf`: the default GGUF choice;
/// - a path equal to a file of the repo: that file;
/// - otherwise a case-insensitive part of a `.gguf` file name (`i2_s`, `Q4_K_M`), which must match
///   exactly one.
pub fn choose(repo: &str, files: &[String], selector: Option<&str>) -> Result<Choice, HubError> {
    let ggufs: Vec<&String> = files.iter().filter(|f| is_gguf(f)).collect();
    let no_model = || HubError::NoModelFiles {
        repo: repo.to_string(),
        files: join(&files.iter().collect::<Vec<_>>()),
    };
    match selector {
        None => {
            if !ggufs.is_empty() {
                default_gguf(repo, &ggufs)
            } else if has_hf_folder(files) {
                Ok(Choice::Dir)
            } else {
                Err(no_model())
            }
        }
        Some(s) if s.eq_ignore_ascii_case(SELECT_SAFETENSORS) => {
            if has_hf_folder(files) {
                Ok(Choice::Dir)
            } else {
                Err(no_model())
            }
        }
        Some(s) if s.eq_ignore_ascii_case(SELECT_GGUF) => {
            if ggufs.is_empty() {
                Err(no_model())
            } else {
                default_gguf(repo, &ggufs)
            }
        }
        Some(s) if files.iter().any(|f| f == s) => Ok(Choice::File(s.to_string())),
        Some(s) => {
            let needle = s.to_ascii_lowercase();
            let hits: Vec<&String> = ggufs
                .iter()
                .copied()
                .filter(|f| basename(f).to_ascii_lowercase().contains(&needle))
                .collect();
            match hits.as_slice() {
                [one] => Ok(Choice::File((*one).clone())),
                [] => Err(HubError::SelectorNoMatch {
                    repo: repo.to_string(),
                    selector: s.to_string(),
                    candidates: join(&ggufs),
                }),
                _ => Err(HubError::AmbiguousGguf {
                    repo: repo.to_string(),
                    candidates: join(&hits),
                }),
            }
        }
    }
}

fn default_gguf(repo: &str, ggufs: &[&String]) -> Result<Choice, HubError> {
    if let [one] = ggufs {
        return Ok(Choice::File((*one).clone()));
    }
    let i2s: Vec<&String> = ggufs
        .iter()
        .copied()
        .filter(|f| basename(f).to_ascii_lowercase().contains("i2_s"))
        .collect();
    match i2s.as_slice() {
        [one] => Ok(Choice::File((*one).clone())),
        _ => Err(HubError::AmbiguousGguf {
            repo: repo.to_string(),
            candidates: join(ggufs),
        }),
    }
}

/// The files of an HF model folder to fetch (small files first, weights last), and the optional
/// files the repo does not have (recorded in the cache's `.no_exist/` so a later run knows the
/// folder is complete without asking the hub).
pub fn folder_files(files: &[String]) -> (Vec<String>, Vec<String>) {
    let root: Vec<&String> = files.iter().filter(|f| !f.contains('/')).collect();
    let mut small: Vec<String> = Vec::new();
    let mut weights: Vec<String> = Vec::new();
    for f in root {
        if f == "config.json"
            || f.ends_with(".safetensors.index.json")
            || HF_OPTIONAL_FILES.contains(&f.as_str())
        {
            small.push(f.clone());
        } else if f.ends_with(".safetensors") {
            weights.push(f.clone());
        }
    }
    let have: HashSet<&str> = files.iter().map(|s| s.as_str()).collect();
    let missing = HF_OPTIONAL_FILES
        .iter()
        .filter(|f| !have.contains(*f))
        .map(|f| f.to_string())
        .collect();
    small.sort();
    weights.sort();
    small.extend(weights);
    (small, missing)
}

/// True when a cached snapshot folder holds a complete HF model: `config.json`, the weights
/// (every shard named by a `*.safetensors.index.json`, else at least one `*.safetensors`), and
/// each optional file either present or known absent (`no_exist`).
pub fn folder_complete(dir: &Path, files: &[String], no_exist: &HashSet<String>) -> bool {
    let have: HashSet<&str> = files.iter().map(|s| s.as_str()).collect();
    if !have.contains("config.json") {
        return false;
    }
    let indexes: Vec<&String> = files
        .iter()
        .filter(|f| !f.contains('/') && f.ends_with(".safetensors.index.json"))
        .collect();
    if indexes.is_empty() {
        if !files
            .iter()
            .any(|f| !f.contains('/') && f.ends_with(".safetensors"))
        {
            return false;
        }
    } else {
        for idx in indexes {
            match index_shards(&dir.join(idx)) {
                Some(shards) if shards.iter().all(|s| have.contains(s.as_str())) => {}
                _ => return false,
            }
        }
    }
    HF_OPTIONAL_FILES
        .iter()
        .all(|f| have.contains(f) || no_exist.contains(*f))
}

/// Shard file names in a safetensors index (`weight_map` values); `None` if unreadable.
fn index_shards(path: &Path) -> Option<BTreeSet<String>> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let map = v.get("weight_map")?.as_object()?;
    map.values()
        .map(|s| s.as_str().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn gguf_defaults() {
        let one = v(&["README.md", "ggml-model-i2_s.gguf"]);
        assert_eq!(
            choose("r", &one, None).unwrap(),
            Choice::File("ggml-model-i2_s.gguf".into())
        );
        let several = v(&["m-f16.gguf", "m-I2_S.gguf", "m-tq1_0.gguf"]);
        assert_eq!(
            choose("r", &several, None).unwrap(),
            Choice::File("m-I2_S.gguf".into())
        );
        let ambiguous = v(&["m-f16.gguf", "m-tq1_0.gguf"]);
        let err = choose("o/r", &ambiguous, None).unwrap_err().to_string();
        assert!(err.contains("m-f16.gguf, m-tq1_0.gguf"), "{err}");
        assert!(err.contains("o/r:FILE"), "{err}");
    }

    #[test]
    fn selectors() {
        let files = v(&[
            "config.json",
            "model.safetensors",
            "m-f16.gguf",
            "m-tq1_0.gguf",
            "m-tq2_0.gguf",
        ]);
        assert_eq!(
            choose("r", &files, Some("safetensors")).unwrap(),
            Choice::Dir
        );
        assert_eq!(
            choose("r", &files, Some("TQ1_0")).unwrap(),
            Choice::File("m-tq1_0.gguf".into())
        );
        assert_eq!(
            choose("r", &files, Some("config.json")).unwrap(),
            Choice::File("config.json".into())
        );
        assert!(matches!(
            choose("r", &files, Some("tq")),
            Err(HubError::AmbiguousGguf { .. })
        ));
        let e = choose("r", &files, Some("q4_k")).unwrap_err().to_string();
        assert!(e.contains("m-f16.gguf, m-tq1_0.gguf, m-tq2_0.gguf"), "{e}");
        // mixed repo, no selector: several GGUFs without an i2_s one -> ambiguous
        assert!(matches!(
            choose("r", &files, None),
            Err(HubError::AmbiguousGguf { .. })
        ));
    }

    #[test]
    fn hf_folder() {
        let files = v(&[
            "README.md",
            "config.json",
            "model-00002-of-00002.safetensors",
            "model-00001-of-00002.safetensors",
            "model.safetensors.index.json",
            "tokenizer.json",
            "pytorch_model.bin",
            "sub/config.json",
        ]);
        assert_eq!(choose("r", &files, None).unwrap(), Choice::Dir);
        let (fetch, missing) = folder_files(&files);
        assert_eq!(
            fetch,
            v(&[
                "config.json",
                "model.safetensors.index.json",
                "tokenizer.json",
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors",
            ])
        );
        assert!(missing.contains(&"tokenizer.model".to_string()));
        assert!(!missing.contains(&"tokenizer.json".to_string()));
        let nothing = v(&["README.md", "pytorch_model.bin"]);
        assert!(matches!(
            choose("r", &nothing, None),
            Err(HubError::NoModelFiles { .. })
        ));
    }
}
