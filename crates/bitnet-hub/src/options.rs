//! Options of [`crate::resolve_model`], defaulting from the same environment variables as the
//! Python `huggingface_hub` library.

use std::path::{Path, PathBuf};

/// Default hub endpoint when `HF_ENDPOINT` is unset.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Where and how to fetch models. Build with [`HubOptions::from_env`] (also [`Default`]) and
/// override fields as needed; tests set `endpoint` and `cache_dir` directly instead of touching
/// the process environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubOptions {
    /// Hub base URL without trailing slash (`HF_ENDPOINT`, default `https://huggingface.co`).
    pub endpoint: String,
    /// The hub cache folder holding `models--owner--name/` (`HF_HUB_CACHE`, else `$HF_HOME/hub`,
    /// `HF_HOME` defaulting to `$XDG_CACHE_HOME/huggingface` or `~/.cache/huggingface`).
    pub cache_dir: PathBuf,
    /// Access token sent as `Authorization: Bearer` to the hub (`HF_TOKEN`, else the file
    /// `HF_TOKEN_PATH` or `$HF_HOME/token` written by `huggingface-cli login`).
    pub token: Option<String>,
    /// Use only the cache, never the network (`HF_HUB_OFFLINE=1`).
    pub offline: bool,
    /// Draw a progress bar on stderr while downloading (only when stderr is a terminal).
    /// Default: true unless `HF_HUB_DISABLE_PROGRESS_BARS=1`.
    pub progress: bool,
    /// How many times an interrupted download is resumed (HTTP Range) within one call before
    /// the error is returned; the partial file stays for a later call either way.
    /// Default [`DEFAULT_RETRIES`] from the environment, 0 from [`HubOptions::new`].
    pub retries: u32,
}

/// Default of [`HubOptions::retries`] in [`HubOptions::from_env`].
pub const DEFAULT_RETRIES: u32 = 3;

impl Default for HubOptions {
    fn default() -> Self {
        Self::from_env()
    }
}

impl HubOptions {
    /// Options from the environment (see each field for its variable).
    pub fn from_env() -> Self {
        Self::from_vars(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// Options for an explicit endpoint and cache folder, no token, online, no progress bar,
    /// no automatic resume.
    pub fn new(endpoint: impl Into<String>, cache_dir: impl Into<PathBuf>) -> Self {
        HubOptions {
            endpoint: normalize_endpoint(&endpoint.into()),
            cache_dir: cache_dir.into(),
            token: None,
            offline: false,
            progress: false,
            retries: 0,
        }
    }

    /// Same as [`HubOptions::from_env`] with a custom variable lookup (testable without
    /// mutating the process environment).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let hf_home = var("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
            let base = var("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| home_dir(&var).join(".cache"));
            base.join("huggingface")
        });
        let cache_dir = var("HF_HUB_CACHE")
            .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
            .map(PathBuf::from)
            .unwrap_or_else(|| hf_home.join("hub"));
        let token = var("HF_TOKEN")
            .or_else(|| var("HUGGING_FACE_HUB_TOKEN"))
            .or_else(|| {
                let path = var("HF_TOKEN_PATH")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| hf_home.join("token"));
                read_token_file(&path)
            })
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        let endpoint =
            normalize_endpoint(&var("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.into()));
        HubOptions {
            endpoint,
            cache_dir,
            token,
            offline: var("HF_HUB_OFFLINE").is_some_and(|v| is_truthy(&v)),
            progress: !var("HF_HUB_DISABLE_PROGRESS_BARS").is_some_and(|v| is_truthy(&v)),
            retries: DEFAULT_RETRIES,
        }
    }
}

/// `huggingface_hub`'s notion of a true env value.
fn is_truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_uppercase().as_str(),
        "1" | "ON" | "YES" | "TRUE"
    )
}

fn normalize_endpoint(e: &str) -> String {
    e.trim().trim_end_matches('/').to_string()
}

fn home_dir(var: &impl Fn(&str) -> Option<String>) -> PathBuf {
    var("HOME")
        .or_else(|| var("USERPROFILE"))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn read_token_file(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn opts(vars: &[(&str, &str)]) -> HubOptions {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        HubOptions::from_vars(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_follow_huggingface_hub() {
        let o = opts(&[("HOME", "/home/u")]);
        assert_eq!(o.endpoint, "https://huggingface.co");
        assert_eq!(o.cache_dir, PathBuf::from("/home/u/.cache/huggingface/hub"));
        assert_eq!(o.token, None);
        assert!(!o.offline);
        assert!(o.progress);
        assert_eq!(o.retries, DEFAULT_RETRIES);
    }

    #[test]
    fn env_overrides() {
        let o = opts(&[
            ("HOME", "/home/u"),
            ("HF_HOME", "/data/hf"),
            ("HF_ENDPOINT", "http://mirror.local:8080/"),
            ("HF_TOKEN", " hf_abc \n"),
            ("HF_HUB_OFFLINE", "1"),
            ("HF_HUB_DISABLE_PROGRESS_BARS", "true"),
        ]);
        assert_eq!(o.endpoint, "http://mirror.local:8080");
        assert_eq!(o.cache_dir, PathBuf::from("/data/hf/hub"));
        assert_eq!(o.token.as_deref(), Some("hf_abc"));
        assert!(o.offline);
        assert!(!o.progress);

        let o = opts(&[("HF_HOME", "/data/hf"), ("HF_HUB_CACHE", "/fast/cache")]);
        assert_eq!(o.cache_dir, PathBuf::from("/fast/cache"));
        let o = opts(&[("XDG_CACHE_HOME", "/xdg"), ("HF_HUB_OFFLINE", "0")]);
        assert_eq!(o.cache_dir, PathBuf::from("/xdg/huggingface/hub"));
        assert!(!o.offline);
    }

    #[test]
    fn token_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "hf_from_file\n").unwrap();
        let home = dir.path().to_str().unwrap().to_string();
        let o = opts(&[("HF_HOME", &home)]);
        assert_eq!(o.token.as_deref(), Some("hf_from_file"));
    }
}
