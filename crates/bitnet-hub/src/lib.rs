//! Models by name: turn a model spec (a local path or a Hugging Face repo id) into local files,
//! fetching into the standard Hugging Face cache when needed.
//!
//! # Spec syntax
//!
//! ```text
//! PATH                                 an existing file or directory: returned unchanged
//! [hf://]owner/name[@revision][:selector]
//! ```
//! - `revision`: branch, tag or 40-hex commit (default `main`; `@refs/pr/3` works).
//! - `selector` (everything after the first `:`):
//!   - a file path of the repo (`:ggml-model-i2_s.gguf`, `:config.json`) → that file;
//!   - `safetensors` → the HF model folder even if the repo also has GGUF files;
//!   - `gguf` → the default GGUF choice;
//!   - otherwise a case-insensitive part of one `.gguf` file name (`:i2_s`, `:Q4_K_M`).
//! - Without selector: a repo with `.gguf` files gives the GGUF (the only one, else the single
//!   `i2_s` one, else an error listing them); a repo with `config.json` + `*.safetensors` gives
//!   the snapshot folder with config, weights (+ index and shards), tokenizer files and
//!   `generation_config.json`.
//! - A hub page URL works too: `https://huggingface.co/owner/name[/tree/REV]` or
//!   `https://huggingface.co/owner/name/blob/REV/FILE` (always fetched from `HubOptions::endpoint`).
//! - `hf://` forces the hub reading for names that look like a missing local file
//!   (`models/x.gguf` that does not exist is reported as a missing path).
//!
//! # Cache and environment
//!
//! Files land in `$HF_HUB_CACHE` (default `$HF_HOME/hub`, `HF_HOME` default
//! `~/.cache/huggingface`) as `models--owner--name/{blobs,snapshots/<commit>,refs}` exactly like
//! `huggingface_hub`, so Python tools and this crate share downloads. A request the cache can
//! answer (the revision's ref or commit is there and the chosen files are complete) is served
//! without any network request; to pick up a newer `main`, delete `refs/main` or pin `@commit`.
//! `HF_ENDPOINT`, `HF_TOKEN` (or `$HF_HOME/token`), `HF_HUB_OFFLINE` and
//! `HF_HUB_DISABLE_PROGRESS_BARS` are honoured through [`HubOptions::from_env`].
//!
//! Downloads go to `blobs/<etag>.incomplete` and resume with an HTTP Range request after an
//! interruption; the result is checked against the sha256 (LFS) or git sha1 the hub advertises.

mod cache;
mod client;
mod download;
mod error;
mod options;
mod select;
mod spec;

use std::path::{Path, PathBuf};

pub use error::HubError;
pub use options::{HubOptions, DEFAULT_ENDPOINT, DEFAULT_RETRIES};
pub use select::{Choice, HF_OPTIONAL_FILES, SELECT_GGUF, SELECT_SAFETENSORS};
pub use spec::RepoSpec;

use cache::RepoCache;
use client::{Client, Ctx};

/// Resolves `spec` to a local path: an existing path is returned unchanged; a repo id is fetched
/// (or found in the cache) and the GGUF file or the HF snapshot folder is returned.
/// See the [crate docs](crate) for the syntax and the environment variables.
pub fn resolve_model(spec: &str, opts: &HubOptions) -> Result<PathBuf, HubError> {
    if !spec.starts_with("hf://") && Path::new(spec).exists() {
        return Ok(PathBuf::from(spec));
    }
    let parsed = RepoSpec::parse(spec)?;
    resolve_repo(&parsed, opts).map_err(|e| match e {
        HubError::RepoNotFound {
            repo,
            url,
            status,
            hint,
        } if !spec.starts_with("hf://") && !spec.contains("://") => HubError::RepoNotFound {
            repo,
            url,
            status,
            hint: format!("{hint}; there is no local file or directory '{spec}' either"),
        },
        other => other,
    })
}

/// Resolves a parsed repo spec (see [`resolve_model`]).
pub fn resolve_repo(spec: &RepoSpec, opts: &HubOptions) -> Result<PathBuf, HubError> {
    let cache = RepoCache::new(&opts.cache_dir, spec);
    if let Some(path) = from_cache(&cache, spec) {
        return Ok(path);
    }
    if opts.offline {
        return Err(HubError::Offline {
            repo: spec.repo_id.clone(),
            revision: spec.revision.clone(),
            what: spec
                .selector
                .as_ref()
                .map(|s| format!(" (selector ':{s}')"))
                .unwrap_or_default(),
            cache: cache.root().to_path_buf(),
        });
    }
    let client = Client::new(opts);
    let info = client.repo_info(&spec.repo_id, &spec.revision)?;
    let commit = info.sha.as_str();
    let choice = select::choose(&spec.repo_id, &info.files, spec.selector.as_deref())?;
    let result = match choice {
        Choice::File(file) => fetch_file(&client, &cache, spec, commit, &file, opts)?,
        Choice::Dir => {
            let (files, missing) = select::folder_files(&info.files);
            for file in &files {
                fetch_file(&client, &cache, spec, commit, file, opts)?;
            }
            for file in &missing {
                cache.mark_no_exist(commit, file)?;
            }
            cache.snapshot_dir(commit)
        }
    };
    if spec.revision != commit {
        cache.write_ref(&spec.revision, commit)?;
    }
    Ok(result)
}

/// The answer from the cache alone, if it has one.
fn from_cache(cache: &RepoCache, spec: &RepoSpec) -> Option<PathBuf> {
    let commit = cache.cached_commit(&spec.revision)?;
    let files = cache.snapshot_files(&commit);
    match select::choose(&spec.repo_id, &files, spec.selector.as_deref()).ok()? {
        Choice::File(f) => Some(cache.snapshot_file(&commit, &f)),
        Choice::Dir => {
            let dir = cache.snapshot_dir(&commit);
            select::folder_complete(&dir, &files, &cache.no_exist(&commit)).then_some(dir)
        }
    }
}

/// Makes `snapshots/<commit>/<file>` present (one `HEAD`, then a download unless the blob is
/// already cached) and returns its path.
fn fetch_file(
    client: &Client,
    cache: &RepoCache,
    spec: &RepoSpec,
    commit: &str,
    file: &str,
    opts: &HubOptions,
) -> Result<PathBuf, HubError> {
    let snap = cache.snapshot_file(commit, file);
    if snap.is_file() {
        return Ok(snap);
    }
    let ctx = Ctx {
        repo: &spec.repo_id,
        revision: commit,
        file: Some(file),
    };
    let url = client.resolve_url(&spec.repo_id, commit, file);
    let meta = client.file_meta(&url, ctx)?;
    if !cache::is_safe_token(&meta.etag) {
        return Err(HubError::BadResponse {
            url,
            reason: format!("etag '{}' is not usable as a file name", meta.etag),
        });
    }
    let job = download::Job {
        client,
        cache,
        ctx,
        url: &url,
        meta: &meta,
        progress: opts.progress,
    };
    // One process downloads a blob at a time (the others wait, then find it done).
    let mut lock = cache.blob_lock(&meta.etag)?;
    let lock_path = cache.lock_path(&meta.etag);
    let _guard = lock
        .write()
        .map_err(|e| HubError::io("cannot lock", lock_path, e))?;
    let mut attempt = 0;
    loop {
        match download::fetch_blob(&job) {
            Ok(_) => break,
            Err(HubError::Interrupted { .. }) if attempt < opts.retries => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(250 * u64::from(attempt)));
            }
            Err(e) => return Err(e),
        }
    }
    cache.link(commit, file, &meta.etag)
}
