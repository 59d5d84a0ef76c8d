//! A small blocking client for the two hub endpoints we need:
//! - `GET {endpoint}/api/models/{repo}/revision/{rev}` → JSON with `sha` and `siblings[].rfilename`;
//! - `HEAD`/`GET {endpoint}/{repo}/resolve/{rev}/{file}` → the file, possibly through a 302 to a
//!   CDN; headers `X-Repo-Commit`, `X-Linked-Etag` (LFS: the sha256) or `ETag` (git blob sha1),
//!   `X-Linked-Size` or `Content-Length`; errors carry `X-Error-Code` / `X-Error-Message`.

use std::time::Duration;

use ureq::http::{HeaderMap, Response};
use ureq::{Agent, Body};

use crate::{HubError, HubOptions};

/// The hub's answer about a revision.
#[derive(Debug, Clone)]
pub struct RepoInfo {
    /// Commit id the revision resolves to.
    pub sha: String,
    /// Repo-relative paths of all files.
    pub files: Vec<String>,
}

/// Metadata of one file from a `HEAD` on its resolve URL.
#[derive(Debug, Clone)]
pub struct FileMeta {
    /// Normalised etag (quotes and `W/` removed): sha256 for LFS files, git blob sha1 otherwise.
    pub etag: String,
    /// Size in bytes when the hub gave one.
    pub size: Option<u64>,
}

/// What a request was about, for error messages.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// Repo id.
    pub repo: &'a str,
    /// Revision asked for.
    pub revision: &'a str,
    /// File, for resolve requests.
    pub file: Option<&'a str>,
}

/// HTTP client bound to one endpoint and token.
pub struct Client {
    endpoint: String,
    token: Option<String>,
    /// Follows redirects (downloads).
    agent: Agent,
    /// Does not follow redirects (metadata: the hub's own headers are on the 302).
    head_agent: Agent,
}

fn make_agent(max_redirects: u32) -> Agent {
    Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(max_redirects)
        .user_agent(format!("bitnet-hub/{}; rust", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// Percent-encodes everything but RFC 3986 unreserved characters (and `/` when `keep_slash`).
pub fn percent_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `scheme://host[:port]` of an absolute URL.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Removes `W/` and quotes from an etag.
fn normalize_etag(e: &str) -> String {
    let e = e.trim();
    let e = e.strip_prefix("W/").unwrap_or(e);
    e.trim_matches('"').to_string()
}

impl Client {
    /// A client for `opts.endpoint` with `opts.token`.
    pub fn new(opts: &HubOptions) -> Self {
        Client {
            endpoint: opts.endpoint.clone(),
            token: opts.token.clone(),
            agent: make_agent(10),
            head_agent: make_agent(0),
        }
    }

    /// `{endpoint}/{repo}/resolve/{rev}/{file}`.
    pub fn resolve_url(&self, repo: &str, revision: &str, file: &str) -> String {
        format!(
            "{}/{}/resolve/{}/{}",
            self.endpoint,
            repo,
            percent_encode(revision, false),
            percent_encode(file, true)
        )
    }

    fn auth_for(&self, url: &str) -> Option<String> {
        let same_origin = origin(url) == origin(&self.endpoint);
        match &self.token {
            Some(t) if same_origin => Some(format!("Bearer {t}")),
            _ => None,
        }
    }

    fn send(
        &self,
        agent: &Agent,
        head: bool,
        url: &str,
        range_from: u64,
    ) -> Result<Response<Body>, HubError> {
        let mut req = if head {
            agent.head(url)
        } else {
            agent.get(url)
        };
        if let Some(a) = self.auth_for(url) {
            req = req.header("Authorization", a);
        }
        if range_from > 0 {
            req = req.header("Range", format!("bytes={range_from}-"));
        }
        req.call().map_err(|e| HubError::Network {
            url: url.to_string(),
            source: Box::new(e),
        })
    }

    /// Lists the repo at `revision`.
    pub fn repo_info(&self, repo: &str, revision: &str) -> Result<RepoInfo, HubError> {
        let url = format!(
            "{}/api/models/{}/revision/{}",
            self.endpoint,
            repo,
            percent_encode(revision, false)
        );
        let ctx = Ctx {
            repo,
            revision,
            file: None,
        };
        let mut resp = self.send(&self.agent, false, &url, 0)?;
        if resp.status().as_u16() != 200 {
            return Err(self.status_error(&url, &resp, ctx));
        }
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| HubError::Network {
                url: url.clone(),
                source: Box::new(e),
            })?;
        parse_repo_info(&url, &text)
    }

    /// `HEAD` on a resolve URL, following only relative redirects (renamed repos) and reading the
    /// hub's headers from the last hub response (before any CDN redirect).
    pub fn file_meta(&self, url: &str, ctx: Ctx<'_>) -> Result<FileMeta, HubError> {
        let mut current = url.to_string();
        for _ in 0..5 {
            let resp = self.send(&self.head_agent, true, &current, 0)?;
            let status = resp.status().as_u16();
            let h = resp.headers();
            if (300..400).contains(&status) {
                let location = header(h, "location").unwrap_or("");
                if location.starts_with('/') && header(h, "x-repo-commit").is_none() {
                    current = format!("{}{}", origin(&current), location);
                    continue;
                }
            } else if status != 200 {
                return Err(self.status_error(&current, &resp, ctx));
            }
            let etag = header(h, "x-linked-etag")
                .or_else(|| header(h, "etag"))
                .map(normalize_etag)
                .ok_or_else(|| HubError::BadResponse {
                    url: current.clone(),
                    reason:
                        "no ETag or X-Linked-Etag header (is this a Hugging Face hub endpoint?)"
                            .into(),
                })?;
            let size = header(h, "x-linked-size")
                .or_else(|| {
                    if status == 200 {
                        header(h, "content-length")
                    } else {
                        None
                    }
                })
                .and_then(|s| s.trim().parse::<u64>().ok());
            return Ok(FileMeta { etag, size });
        }
        Err(HubError::BadResponse {
            url: url.to_string(),
            reason: "too many redirects".into(),
        })
    }

    /// `GET url` (redirects followed), with `Range: bytes={from}-` when `from > 0`. The status is
    /// not checked.
    pub fn get(&self, url: &str, from: u64) -> Result<Response<Body>, HubError> {
        self.send(&self.agent, false, url, from)
    }

    /// Maps a non-success response to the matching [`HubError`].
    pub fn status_error(&self, url: &str, resp: &Response<Body>, ctx: Ctx<'_>) -> HubError {
        let status = resp.status().as_u16();
        let h = resp.headers();
        let code = header(h, "x-error-code").unwrap_or("");
        let message = header(h, "x-error-message").unwrap_or("");
        let has_token = self.token.is_some();
        let auth_hint = if has_token {
            String::new()
        } else {
            "; if it is private or gated, set HF_TOKEN to a token with access".to_string()
        };
        let url = url.to_string();
        let repo = ctx.repo.to_string();
        match (code, status) {
            _ if code == "GatedRepo"
                || (code != "RepoNotFound" && (status == 401 || status == 403)) =>
            {
                let hint = if code == "GatedRepo" && !has_token {
                    format!(
                        "the repo is gated: accept its conditions at {}/{} and set HF_TOKEN",
                        self.endpoint, ctx.repo
                    )
                } else if code == "GatedRepo" {
                    format!(
                        "the repo is gated and the token in use has not been granted access; \
                         accept its conditions at {}/{}",
                        self.endpoint, ctx.repo
                    )
                } else if has_token {
                    "the token in use (HF_TOKEN) is invalid or lacks access".into()
                } else {
                    "authentication required: set HF_TOKEN".into()
                };
                HubError::AccessDenied {
                    repo,
                    url,
                    status,
                    hint,
                }
            }
            ("RepoNotFound", _) => HubError::RepoNotFound {
                repo,
                url,
                status,
                hint: auth_hint,
            },
            ("RevisionNotFound", _) => HubError::RevisionNotFound {
                repo,
                revision: ctx.revision.to_string(),
                url,
            },
            ("EntryNotFound", _) => HubError::FileNotFound {
                repo,
                revision: ctx.revision.to_string(),
                file: ctx.file.unwrap_or("").to_string(),
                url,
            },
            (_, 404) => match ctx.file {
                Some(f) => HubError::FileNotFound {
                    repo,
                    revision: ctx.revision.to_string(),
                    file: f.to_string(),
                    url,
                },
                None => HubError::RepoNotFound {
                    repo,
                    url,
                    status,
                    hint: auth_hint,
                },
            },
            _ => HubError::Http {
                url,
                status,
                message: if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                },
            },
        }
    }
}

/// Parses the model-info JSON (`sha`, `siblings[].rfilename`).
fn parse_repo_info(url: &str, text: &str) -> Result<RepoInfo, HubError> {
    #[derive(serde::Deserialize)]
    struct Sibling {
        rfilename: String,
    }
    #[derive(serde::Deserialize)]
    struct Info {
        sha: Option<String>,
        #[serde(default)]
        siblings: Vec<Sibling>,
    }
    let bad = |reason: String| HubError::BadResponse {
        url: url.to_string(),
        reason,
    };
    let info: Info =
        serde_json::from_str(text).map_err(|e| bad(format!("invalid model info JSON: {e}")))?;
    let sha = info
        .sha
        .ok_or_else(|| bad("model info has no 'sha'".into()))?;
    if !crate::cache::is_safe_token(&sha) {
        return Err(bad(format!("commit id '{sha}' is not a plain hex id")));
    }
    let mut files = Vec::with_capacity(info.siblings.len());
    for s in info.siblings {
        if !crate::cache::is_safe_rel_path(&s.rfilename) {
            return Err(bad(format!(
                "unsafe file name '{}' in listing",
                s.rfilename
            )));
        }
        files.push(s.rfilename);
    }
    Ok(RepoInfo { sha, files })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_and_urls() {
        assert_eq!(percent_encode("refs/pr/1", false), "refs%2Fpr%2F1");
        assert_eq!(percent_encode("a b/c+d.gguf", true), "a%20b/c%2Bd.gguf");
        let c = Client::new(&HubOptions::new("http://h:1/", "/tmp/x"));
        assert_eq!(
            c.resolve_url("o/n", "main", "sub/x.gguf"),
            "http://h:1/o/n/resolve/main/sub/x.gguf"
        );
        assert_eq!(
            origin("https://huggingface.co/a/b"),
            "https://huggingface.co"
        );
        assert_eq!(origin("http://127.0.0.1:80"), "http://127.0.0.1:80");
        assert_eq!(normalize_etag("W/\"abc\""), "abc");
        assert_eq!(normalize_etag("\"abc\""), "abc");
    }

    #[test]
    fn info_json() {
        let i = parse_repo_info(
            "u",
            r#"{"id":"o/n","sha":"abc123","siblings":[{"rfilename":"a.gguf"},{"rfilename":"d/b.json"}]}"#,
        )
        .unwrap();
        assert_eq!(i.sha, "abc123");
        assert_eq!(i.files, vec!["a.gguf", "d/b.json"]);
        assert!(
            parse_repo_info("u", r#"{"sha":"abc","siblings":[{"rfilename":"../x"}]}"#).is_err()
        );
        assert!(parse_repo_info("u", r#"{"siblings":[]}"#).is_err());
        assert!(parse_repo_info("u", "not json").is_err());
    }
}
