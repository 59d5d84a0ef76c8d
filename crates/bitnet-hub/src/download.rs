//! Download of one blob into the cache: resumable (`blobs/<etag>.incomplete` + HTTP Range),
//! verified against the etag (sha256 for LFS files, git blob sha1 for small files), with an
//! optional progress bar.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::cache::RepoCache;
use crate::client::{Client, Ctx, FileMeta};
use crate::HubError;

/// Copy buffer size.
const CHUNK: usize = 1 << 20;

/// Which checksum an etag is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EtagKind {
    /// 64 hex digits: sha256 of the content (LFS files).
    Sha256,
    /// 40 hex digits: git blob id, sha1 of `"blob {len}\0" + content` (regular files).
    GitSha1,
    /// Anything else: not checked.
    Opaque,
}

/// Classifies an etag.
pub fn etag_kind(etag: &str) -> EtagKind {
    let hex = etag.bytes().all(|b| b.is_ascii_hexdigit());
    match etag.len() {
        64 if hex => EtagKind::Sha256,
        40 if hex => EtagKind::GitSha1,
        _ => EtagKind::Opaque,
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Git blob id of a file on disk.
pub fn git_blob_sha1(path: &Path) -> std::io::Result<String> {
    let len = std::fs::metadata(path)?.len();
    let mut h = Sha1::new();
    h.update(format!("blob {len}\0").as_bytes());
    hash_file_into(path, |b| h.update(b))?;
    Ok(to_hex(&h.finalize()))
}

fn hash_file_into(path: &Path, mut f: impl FnMut(&[u8])) -> std::io::Result<()> {
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        f(&buf[..n]);
    }
}

fn progress_bar(enabled: bool, total: Option<u64>, name: &str) -> ProgressBar {
    let target = if enabled {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(total, target);
    let template = if total.is_some() {
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
    } else {
        "{msg} {bytes} {bytes_per_sec}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    let short = name.rsplit('/').next().unwrap_or(name).to_string();
    bar.set_message(short);
    bar
}

/// Everything needed to download one file.
pub struct Job<'a> {
    /// HTTP client.
    pub client: &'a Client,
    /// Repo folder in the cache.
    pub cache: &'a RepoCache,
    /// Error context (repo, revision, file).
    pub ctx: Ctx<'a>,
    /// Resolve URL of the file.
    pub url: &'a str,
    /// Etag and size from the `HEAD`.
    pub meta: &'a FileMeta,
    /// Draw a progress bar.
    pub progress: bool,
}

fn open_append(path: &Path) -> Result<File, HubError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| HubError::io("cannot open", path, e))
}

fn truncate(path: &Path) -> Result<(), HubError> {
    File::create(path)
        .map(|_| ())
        .map_err(|e| HubError::io("cannot truncate", path, e))
}

/// Parses the first byte of `Content-Range: bytes START-END/TOTAL`.
fn content_range_start(v: Option<&str>) -> Option<u64> {
    let rest = v?.trim().strip_prefix("bytes")?.trim_start();
    rest.split('-').next()?.trim().parse().ok()
}

/// Ensures `blobs/<etag>` exists with verified content; returns its path.
pub fn fetch_blob(job: &Job<'_>) -> Result<PathBuf, HubError> {
    let etag = &job.meta.etag;
    let blob = job.cache.blob_path(etag);
    if let Ok(m) = std::fs::metadata(&blob) {
        if job.meta.size.is_none_or(|s| s == m.len()) {
            return Ok(blob);
        }
    }
    let dir = job.cache.root().join("blobs");
    std::fs::create_dir_all(&dir).map_err(|e| HubError::io("cannot create", &dir, e))?;
    let partial = job.cache.incomplete_path(etag);
    let kind = etag_kind(etag);
    let file_name = job.ctx.file.unwrap_or("");

    let mut have = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
    if job.meta.size.is_some_and(|s| have > s) {
        truncate(&partial)?;
        have = 0;
    }
    let mut sha = Sha256::new();
    if have > 0 && kind == EtagKind::Sha256 {
        hash_file_into(&partial, |b| sha.update(b))
            .map_err(|e| HubError::io("cannot read", &partial, e))?;
    }

    // At most two tries: a Range request, then (if the server refuses the range) from zero.
    let mut response = None;
    for _ in 0..2 {
        let resp = job.client.get(job.url, have)?;
        let status = resp.status().as_u16();
        match status {
            206 if have > 0 => {
                let start = content_range_start(
                    resp.headers()
                        .get("content-range")
                        .and_then(|v| v.to_str().ok()),
                );
                if start == Some(have) {
                    response = Some(resp);
                    break;
                }
            }
            200 => {
                if have > 0 {
                    // The server ignored the Range header: start over.
                    truncate(&partial)?;
                    have = 0;
                    sha = Sha256::new();
                }
                response = Some(resp);
                break;
            }
            416 if have > 0 => {}
            _ => return Err(job.client.status_error(job.url, &resp, job.ctx)),
        }
        truncate(&partial)?;
        have = 0;
        sha = Sha256::new();
    }
    let Some(resp) = response else {
        return Err(HubError::BadResponse {
            url: job.url.to_string(),
            reason: "the server answered a Range request with a wrong Content-Range twice".into(),
        });
    };

    let mut file = open_append(&partial)?;
    let bar = progress_bar(job.progress, job.meta.size, file_name);
    bar.set_position(have);
    let mut reader = resp.into_body().into_reader();
    let mut buf = vec![0u8; CHUNK];
    let mut received = have;
    let interrupted = |received: u64, reason: String| HubError::Interrupted {
        file: file_name.to_string(),
        url: job.url.to_string(),
        detail: format!(
            "{received} of {} bytes ({reason})",
            job.meta
                .size
                .map_or_else(|| "unknown".to_string(), |s| s.to_string())
        ),
        partial: partial.clone(),
    };
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                bar.abandon();
                return Err(interrupted(received, e.to_string()));
            }
        };
        file.write_all(&buf[..n])
            .map_err(|e| HubError::io("cannot write", &partial, e))?;
        if kind == EtagKind::Sha256 {
            sha.update(&buf[..n]);
        }
        received += n as u64;
        bar.set_position(received);
    }
    file.flush()
        .map_err(|e| HubError::io("cannot write", &partial, e))?;
    drop(file);
    bar.finish_and_clear();

    if let Some(size) = job.meta.size {
        if received < size {
            return Err(interrupted(received, "connection closed early".into()));
        }
        if received > size {
            let _ = std::fs::remove_file(&partial);
            return Err(HubError::BadResponse {
                url: job.url.to_string(),
                reason: format!("received {received} bytes, more than the advertised {size}"),
            });
        }
    }
    let actual = match kind {
        EtagKind::Sha256 => Some(to_hex(&sha.finalize())),
        EtagKind::GitSha1 => {
            Some(git_blob_sha1(&partial).map_err(|e| HubError::io("cannot read", &partial, e))?)
        }
        EtagKind::Opaque => None,
    };
    if let Some(actual) = actual {
        if !actual.eq_ignore_ascii_case(etag) {
            let _ = std::fs::remove_file(&partial);
            return Err(HubError::Integrity {
                file: file_name.to_string(),
                url: job.url.to_string(),
                detail: format!(
                    "expected {} {etag}, got {actual}",
                    if kind == EtagKind::Sha256 {
                        "sha256"
                    } else {
                        "git-sha1"
                    }
                ),
            });
        }
    }
    std::fs::rename(&partial, &blob)
        .map_err(|e| HubError::io("cannot move into place", &blob, e))?;
    Ok(blob)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_kinds() {
        assert_eq!(
            etag_kind("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            EtagKind::Sha256
        );
        assert_eq!(
            etag_kind("e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"),
            EtagKind::GitSha1
        );
        assert_eq!(etag_kind("abc-123"), EtagKind::Opaque);
    }

    /// Known answers: `git hash-object` of an empty file and of "hello world\n"; sha256("abc")
    /// from FIPS 180-2.
    #[test]
    fn known_digests() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("f");
        std::fs::write(&p, b"").unwrap();
        assert_eq!(
            git_blob_sha1(&p).unwrap(),
            "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
        );
        std::fs::write(&p, b"hello world\n").unwrap();
        assert_eq!(
            git_blob_sha1(&p).unwrap(),
            "3b18e512dba79e4c8300dd08aeb37f8e728b8dad"
        );
        assert_eq!(
            to_hex(&Sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn content_range() {
        assert_eq!(content_range_start(Some("bytes 100-199/200")), Some(100));
        assert_eq!(content_range_start(Some("bytes */200")), None);
        assert_eq!(content_range_start(None), None);
    }
}
