//! Parsing of hub model specs: `[hf://]owner/name[@revision][:selector]`.

use crate::HubError;

/// A parsed hub reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSpec {
    /// `owner/name`.
    pub repo_id: String,
    /// Branch, tag or 40-hex commit; `main` when not given. May contain `/` (`refs/pr/1`).
    pub revision: String,
    /// What to pick in the repo (see [`crate::resolve_model`]); `None` = default choice.
    pub selector: Option<String>,
}

/// Hub page URLs accepted as specs.
const HUB_URL_PREFIX: &str = "https://huggingface.co/";

/// File extensions that make an `a/b.ext` spec read as a missing local file rather than a repo id.
const FILE_LIKE_EXTS: &[&str] = &[
    ".gguf",
    ".safetensors",
    ".json",
    ".bin",
    ".model",
    ".txt",
    ".pt",
    ".pth",
];

impl RepoSpec {
    /// Parses `spec`. Syntax:
    /// - `owner/name` — repo at `main`;
    /// - `owner/name@rev` — branch, tag or commit (`@refs/pr/3` works too);
    /// - `owner/name:sel` or `owner/name@rev:sel` — selector (everything after the first `:`);
    /// - an `hf://` prefix forces the hub reading (for names that look like local files).
    ///
    /// `owner` and `name` use `[A-Za-z0-9._-]`, start and end alphanumeric, at most 96 chars,
    /// no `--` or `..` (the hub's rules).
    ///
    /// A page URL copied from the browser is accepted too:
    /// `https://huggingface.co/owner/name[/tree/REV][/blob|resolve/REV/FILE]`.
    pub fn parse(spec: &str) -> Result<Self, HubError> {
        if let Some(rest) = spec.strip_prefix(HUB_URL_PREFIX) {
            return Self::parse_url_path(spec, rest);
        }
        let invalid = |reason: &str| HubError::InvalidSpec {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        let (forced, body) = match spec.strip_prefix("hf://") {
            Some(rest) => (true, rest),
            None => (false, spec),
        };
        let (front, selector) = match body.split_once(':') {
            Some((f, "")) => return Err(invalid_sel(spec, f)),
            Some((f, s)) => (f, Some(s.to_string())),
            None => (body, None),
        };
        let (repo_id, revision) = match front.split_once('@') {
            Some((_, "")) => return Err(invalid("empty revision after '@'")),
            Some((id, r)) => (id, r.to_string()),
            None => (front, "main".to_string()),
        };
        let (owner, name) = repo_id
            .split_once('/')
            .ok_or_else(|| invalid("expected owner/name"))?;
        if name.contains('/') {
            return Err(invalid("expected exactly one '/' in owner/name"));
        }
        check_part(owner).map_err(|r| invalid(&format!("owner '{owner}': {r}")))?;
        check_part(name).map_err(|r| invalid(&format!("name '{name}': {r}")))?;
        if revision.contains("..") || revision.starts_with('/') || revision.ends_with('/') {
            return Err(invalid(
                "revision must not contain '..' or start/end with '/'",
            ));
        }
        if revision
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
        {
            return Err(invalid("revision contains whitespace or '\\'"));
        }
        if !forced && selector.is_none() && revision == "main" {
            let lower = name.to_ascii_lowercase();
            if FILE_LIKE_EXTS.iter().any(|e| lower.ends_with(e)) {
                return Err(HubError::LocalPathMissing {
                    spec: spec.to_string(),
                });
            }
        }
        Ok(RepoSpec {
            repo_id: repo_id.to_string(),
            revision,
            selector,
        })
    }

    /// `owner/name[/tree/REV][/blob|resolve/REV/FILE]` from a hub page URL.
    fn parse_url_path(spec: &str, rest: &str) -> Result<Self, HubError> {
        let rest = rest
            .split(['?', '#'])
            .next()
            .unwrap_or("")
            .trim_end_matches('/');
        let parts: Vec<&str> = rest.splitn(5, '/').collect();
        let rewritten = match parts.as_slice() {
            [owner, name] => format!("hf://{owner}/{name}"),
            [owner, name, "tree", rev] => format!("hf://{owner}/{name}@{rev}"),
            [owner, name, "blob" | "resolve", rev, file] => {
                format!("hf://{owner}/{name}@{rev}:{file}")
            }
            _ => {
                return Err(HubError::InvalidSpec {
                    spec: spec.to_string(),
                    reason: "expected a URL like https://huggingface.co/owner/name, \
                             .../tree/REV or .../blob/REV/FILE"
                        .into(),
                })
            }
        };
        Self::parse(&rewritten).map_err(|e| match e {
            HubError::InvalidSpec { reason, .. } => HubError::InvalidSpec {
                spec: spec.to_string(),
                reason,
            },
            other => other,
        })
    }

    /// Folder name of this repo in the hub cache: `models--owner--name`.
    pub fn cache_folder_name(&self) -> String {
        format!("models--{}", self.repo_id.replace('/', "--"))
    }

    /// True when the revision is a full commit hash (then no `refs/` entry is needed).
    pub fn revision_is_commit(&self) -> bool {
        is_commit_hash(&self.revision)
    }
}

fn invalid_sel(spec: &str, front: &str) -> HubError {
    HubError::InvalidSpec {
        spec: spec.to_string(),
        reason: format!("empty selector after ':' (write '{front}' or '{front}:FILE')"),
    }
}

/// True for a 40-character lowercase hex string (a git commit id).
pub(crate) fn is_commit_hash(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn check_part(p: &str) -> Result<(), &'static str> {
    if p.is_empty() {
        return Err("empty");
    }
    if p.len() > 96 {
        return Err("longer than 96 characters");
    }
    if !p
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err("only letters, digits, '.', '_' and '-' are allowed");
    }
    let first_last_ok = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
    if !first_last_ok(p.bytes().next()) || !first_last_ok(p.bytes().last()) {
        return Err("must start and end with a letter or digit");
    }
    if p.contains("--") || p.contains("..") {
        return Err("'--' and '..' are not allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> (String, String, Option<String>) {
        let r = RepoSpec::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        (r.repo_id, r.revision, r.selector)
    }

    #[test]
    fn parses_forms() {
        assert_eq!(
            ok("microsoft/bitnet-b1.58-2B-4T-gguf"),
            (
                "microsoft/bitnet-b1.58-2B-4T-gguf".into(),
                "main".into(),
                None
            )
        );
        assert_eq!(
            ok("microsoft/bitnet-b1.58-2B-4T@v1.0"),
            ("microsoft/bitnet-b1.58-2B-4T".into(), "v1.0".into(), None)
        );
        assert_eq!(
            ok("a/b:ggml-model-i2_s.gguf"),
            (
                "a/b".into(),
                "main".into(),
                Some("ggml-model-i2_s.gguf".into())
            )
        );
        assert_eq!(
            ok("hf://a/b@refs/pr/3:sub/dir/x.gguf"),
            (
                "a/b".into(),
                "refs/pr/3".into(),
                Some("sub/dir/x.gguf".into())
            )
        );
        assert_eq!(
            ok("hf://a/b.gguf"),
            ("a/b.gguf".into(), "main".into(), None)
        );
    }

    #[test]
    fn parses_page_urls() {
        assert_eq!(
            ok("https://huggingface.co/microsoft/bitnet-b1.58-2B-4T-gguf"),
            (
                "microsoft/bitnet-b1.58-2B-4T-gguf".into(),
                "main".into(),
                None
            )
        );
        assert_eq!(
            ok("https://huggingface.co/microsoft/bitnet-b1.58-2B-4T/tree/main/"),
            ("microsoft/bitnet-b1.58-2B-4T".into(), "main".into(), None)
        );
        assert_eq!(
            ok("https://huggingface.co/o/n/blob/v2/sub/ggml-model-i2_s.gguf?download=true"),
            (
                "o/n".into(),
                "v2".into(),
                Some("sub/ggml-model-i2_s.gguf".into())
            )
        );
        for bad in [
            "https://huggingface.co/o",
            "https://huggingface.co/o/n/commits/main",
            "https://huggingface.co/o--x/n",
        ] {
            assert!(
                matches!(RepoSpec::parse(bad), Err(HubError::InvalidSpec { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn rejects_bad_specs() {
        for bad in [
            "justaname",
            "a/b/c",
            "/abs/path",
            "a/",
            "/b",
            "a/b@",
            "a/b:",
            "a--x/b",
            "-a/b",
            "a/b c",
            "a/b@x/../y",
            "./a",
        ] {
            assert!(
                matches!(RepoSpec::parse(bad), Err(HubError::InvalidSpec { .. })),
                "{bad} should be invalid"
            );
        }
        assert!(matches!(
            RepoSpec::parse("models/ggml-model.gguf"),
            Err(HubError::LocalPathMissing { .. })
        ));
    }

    #[test]
    fn cache_names() {
        let r = RepoSpec::parse("microsoft/bitnet-b1.58-2B-4T").unwrap();
        assert_eq!(
            r.cache_folder_name(),
            "models--microsoft--bitnet-b1.58-2B-4T"
        );
        assert!(!r.revision_is_commit());
        let r = RepoSpec::parse("a/b@0123456789abcdef0123456789abcdef01234567").unwrap();
        assert!(r.revision_is_commit());
    }
}
