//! Typed errors of model resolution. Every message names what failed (spec, repo, file, URL or path)
//! and, where there is one, what the user can do about it.

use std::path::PathBuf;

/// Why a model spec could not be resolved to local files.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The spec is neither an existing path nor a well-formed repo id.
    #[error(
        "'{spec}' is not an existing file or directory, and not a Hugging Face repo id \
         ([hf://]owner/name[@revision][:file-or-selector]): {reason}"
    )]
    InvalidSpec {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The spec is syntactically a repo id, but also looks like a local file name that does not exist.
    #[error(
        "'{spec}' does not exist locally; to fetch it from the Hugging Face hub write it as \
         hf://owner/name[@revision][:file]"
    )]
    LocalPathMissing {
        /// The spec as given.
        spec: String,
    },

    /// Offline mode and the cache cannot satisfy the request.
    #[error(
        "offline mode (HF_HUB_OFFLINE): '{repo}@{revision}'{what} is not in the cache {cache}; \
         run once with network access or unset HF_HUB_OFFLINE"
    )]
    Offline {
        /// Repo id.
        repo: String,
        /// Requested revision.
        revision: String,
        /// Extra detail (selector / missing file), starting with a space or empty.
        what: String,
        /// The repo's folder in the cache.
        cache: PathBuf,
    },

    /// The hub says the repo does not exist (or is private and no valid token was sent).
    #[error("repository '{repo}' not found at {url} (HTTP {status}){hint}")]
    RepoNotFound {
        /// Repo id.
        repo: String,
        /// URL that answered.
        url: String,
        /// HTTP status.
        status: u16,
        /// Hint about authentication (empty when a token was sent).
        hint: String,
    },

    /// The revision (branch, tag or commit) does not exist in the repo.
    #[error("revision '{revision}' not found in repository '{repo}' ({url})")]
    RevisionNotFound {
        /// Repo id.
        repo: String,
        /// Requested revision.
        revision: String,
        /// URL that answered.
        url: String,
    },

    /// The requested file does not exist in the repo at that revision.
    #[error("file '{file}' not found in repository '{repo}' at revision '{revision}' ({url})")]
    FileNotFound {
        /// Repo id.
        repo: String,
        /// Revision (commit) asked for.
        revision: String,
        /// File path inside the repo.
        file: String,
        /// URL that answered.
        url: String,
    },

    /// The repo is gated or private and the request was refused.
    #[error("access to '{repo}' refused at {url} (HTTP {status}): {hint}")]
    AccessDenied {
        /// Repo id.
        repo: String,
        /// URL that answered.
        url: String,
        /// HTTP status (401 or 403).
        status: u16,
        /// What to do about it.
        hint: String,
    },

    /// Any other unexpected HTTP status.
    #[error("HTTP {status} from {url}{message}")]
    Http {
        /// URL that answered.
        url: String,
        /// HTTP status.
        status: u16,
        /// Server message (`X-Error-Message`), prefixed with ": ", or empty.
        message: String,
    },

    /// The request could not be made or the connection failed (DNS, refused, TLS, timeout).
    #[error("network failure fetching {url}: {source}")]
    Network {
        /// URL being fetched.
        url: String,
        /// Underlying transport error.
        #[source]
        source: Box<ureq::Error>,
    },

    /// A download stopped before the end; the partial file is kept so the next run resumes.
    #[error(
        "download of '{file}' from {url} interrupted after {detail}; the partial file {partial} \
         is kept and the next run resumes it"
    )]
    Interrupted {
        /// File path inside the repo.
        file: String,
        /// URL being fetched.
        url: String,
        /// "RECEIVED of EXPECTED bytes (cause)".
        detail: String,
        /// The `.incomplete` file.
        partial: PathBuf,
    },

    /// The downloaded bytes do not match the checksum the hub advertised.
    #[error(
        "checksum mismatch for '{file}' from {url}: {detail}; the corrupt download was removed, \
         run again to retry"
    )]
    Integrity {
        /// File path inside the repo.
        file: String,
        /// URL it came from.
        url: String,
        /// "expected ALGO X, got Y".
        detail: String,
    },

    /// The server answered with something that does not follow the hub protocol.
    #[error("unexpected response from {url}: {reason}")]
    BadResponse {
        /// URL that answered.
        url: String,
        /// What was wrong.
        reason: String,
    },

    /// The repo holds no model files this engine can load.
    #[error(
        "repository '{repo}' has no .gguf file and no config.json + *.safetensors; files: {files}"
    )]
    NoModelFiles {
        /// Repo id.
        repo: String,
        /// Comma-separated listing.
        files: String,
    },

    /// Several GGUF files and no way to pick one.
    #[error(
        "repository '{repo}' has several .gguf files: {candidates}; pick one with \
         '{repo}:FILE' (a file name or a part of it, e.g. ':i2_s')"
    )]
    AmbiguousGguf {
        /// Repo id.
        repo: String,
        /// Comma-separated candidates.
        candidates: String,
    },

    /// The selector matched no file.
    #[error("selector ':{selector}' matches no file in '{repo}'; .gguf files: {candidates}")]
    SelectorNoMatch {
        /// Repo id.
        repo: String,
        /// The selector.
        selector: String,
        /// Comma-separated .gguf files (or "none").
        candidates: String,
    },

    /// Filesystem failure in the cache.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("cannot create", "cannot write", ...).
        action: &'static str,
        /// Path involved.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl HubError {
    /// Shorthand for an [`HubError::Io`].
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        HubError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
