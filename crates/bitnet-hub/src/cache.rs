//! The standard Hugging Face hub cache layout, as written by `huggingface_hub`:
//!
//! ```text
//! <cache_dir>/models--owner--name/
//!   blobs/<etag>                 file contents, named by sha256 (LFS) or git blob sha1
//!   blobs/<etag>.incomplete      a download in progress (resumed with an HTTP Range request)
//!   refs/<revision>              the commit a branch/tag pointed to, no newline
//!   snapshots/<commit>/<path>    relative symlink to ../../blobs/<etag>
//!   .no_exist/<commit>/<path>    empty marker: the repo has no such file at that commit
//! <cache_dir>/.locks/models--owner--name/<etag>.lock   held (flock) while a blob downloads
//! ```

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::spec::{is_commit_hash, RepoSpec};
use crate::HubError;

/// One repo's folder in the hub cache.
#[derive(Debug, Clone)]
pub struct RepoCache {
    root: PathBuf,
    locks: PathBuf,
}

/// True when `name` is a safe repo-relative path: `/`-separated, no empty, `.` or `..` parts,
/// no backslash or NUL, not absolute.
pub fn is_safe_rel_path(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('\\')
        && !name.contains('\0')
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

/// True when `s` can be used as a single file-name component (etags, commit ids).
pub fn is_safe_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl RepoCache {
    /// The folder of `spec`'s repo under `cache_dir`.
    pub fn new(cache_dir: &Path, spec: &RepoSpec) -> Self {
        RepoCache {
            root: cache_dir.join(spec.cache_folder_name()),
            locks: cache_dir.join(".locks").join(spec.cache_folder_name()),
        }
    }

    /// `models--owner--name/`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `blobs/<etag>`.
    pub fn blob_path(&self, etag: &str) -> PathBuf {
        self.root.join("blobs").join(etag)
    }

    /// `blobs/<etag>.incomplete`.
    pub fn incomplete_path(&self, etag: &str) -> PathBuf {
        self.root.join("blobs").join(format!("{etag}.incomplete"))
    }

    /// `<cache_dir>/.locks/models--owner--name/<etag>.lock`, the lock file of one blob.
    pub fn lock_path(&self, etag: &str) -> PathBuf {
        self.locks.join(format!("{etag}.lock"))
    }

    /// Opens (creating) the lock file of a blob, ready for [`fd_lock::RwLock::write`].
    pub fn blob_lock(&self, etag: &str) -> Result<fd_lock::RwLock<std::fs::File>, HubError> {
        let path = self.lock_path(etag);
        create_parent(&path)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| HubError::io("cannot open lock file", &path, e))?;
        Ok(fd_lock::RwLock::new(file))
    }

    /// `snapshots/<commit>/`.
    pub fn snapshot_dir(&self, commit: &str) -> PathBuf {
        self.root.join("snapshots").join(commit)
    }

    /// `snapshots/<commit>/<file>`.
    pub fn snapshot_file(&self, commit: &str, file: &str) -> PathBuf {
        let mut p = self.snapshot_dir(commit);
        p.extend(file.split('/'));
        p
    }

    fn ref_path(&self, revision: &str) -> PathBuf {
        let mut p = self.root.join("refs");
        p.extend(revision.split('/'));
        p
    }

    /// The cached commit for `revision`: itself when it is a commit id with a snapshot folder,
    /// else the content of `refs/<revision>`.
    pub fn cached_commit(&self, revision: &str) -> Option<String> {
        if is_commit_hash(revision) {
            return self
                .snapshot_dir(revision)
                .is_dir()
                .then(|| revision.to_string());
        }
        let text = std::fs::read_to_string(self.ref_path(revision)).ok()?;
        let commit = text.trim();
        (is_safe_token(commit) && self.snapshot_dir(commit).is_dir()).then(|| commit.to_string())
    }

    /// Writes `refs/<revision>` = `commit` (atomically: temp file then rename).
    pub fn write_ref(&self, revision: &str, commit: &str) -> Result<(), HubError> {
        let path = self.ref_path(revision);
        create_parent(&path)?;
        let tmp = path.with_extension("tmp-bitnet");
        std::fs::write(&tmp, commit).map_err(|e| HubError::io("cannot write", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| HubError::io("cannot write", &path, e))
    }

    /// Repo-relative paths of the files present in `snapshots/<commit>/` (links to missing blobs
    /// are skipped).
    pub fn snapshot_files(&self, commit: &str) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.snapshot_dir(commit), "", &mut out, 0);
        out.sort();
        out
    }

    /// Repo-relative paths recorded as absent at `commit`.
    pub fn no_exist(&self, commit: &str) -> HashSet<String> {
        let mut out = Vec::new();
        walk(&self.root.join(".no_exist").join(commit), "", &mut out, 0);
        out.into_iter().collect()
    }

    /// Records that the repo has no `file` at `commit`.
    pub fn mark_no_exist(&self, commit: &str, file: &str) -> Result<(), HubError> {
        let mut p = self.root.join(".no_exist").join(commit);
        p.extend(file.split('/'));
        create_parent(&p)?;
        std::fs::write(&p, b"").map_err(|e| HubError::io("cannot write", &p, e))
    }

    /// Makes `snapshots/<commit>/<file>` point at `blobs/<etag>` (relative symlink; a copy where
    /// symlinks are unavailable) and returns the snapshot path.
    pub fn link(&self, commit: &str, file: &str, etag: &str) -> Result<PathBuf, HubError> {
        let dst = self.snapshot_file(commit, file);
        create_parent(&dst)?;
        if dst.exists() {
            return Ok(dst);
        }
        // A dangling link left by a removed blob.
        if dst.symlink_metadata().is_ok() {
            std::fs::remove_file(&dst).map_err(|e| HubError::io("cannot replace", &dst, e))?;
        }
        let blob = self.blob_path(etag);
        link_or_copy(&blob, &dst, file)?;
        Ok(dst)
    }
}

#[cfg(unix)]
fn link_or_copy(blob: &Path, dst: &Path, file: &str) -> Result<(), HubError> {
    // From snapshots/<commit>/<a/b/f> up to the repo folder: one `..` per directory level.
    let depth = file.split('/').count() + 1;
    let mut target = PathBuf::new();
    for _ in 0..depth {
        target.push("..");
    }
    target.push("blobs");
    if let Some(name) = blob.file_name() {
        target.push(name);
    }
    std::os::unix::fs::symlink(&target, dst).map_err(|e| HubError::io("cannot link", dst, e))
}

#[cfg(not(unix))]
fn link_or_copy(blob: &Path, dst: &Path, _file: &str) -> Result<(), HubError> {
    std::fs::copy(blob, dst)
        .map(|_| ())
        .map_err(|e| HubError::io("cannot copy into", dst, e))
}

fn create_parent(p: &Path) -> Result<(), HubError> {
    match p.parent() {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| HubError::io("cannot create", dir, e))
        }
        None => Ok(()),
    }
}

/// Collects files under `dir` as `/`-joined relative paths (bounded depth).
fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>, depth: usize) {
    if depth > 16 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let path = entry.path();
        // `metadata` follows symlinks: a dangling link yields an error and is skipped.
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => walk(&path, &rel, out, depth + 1),
            Ok(m) if m.is_file() => out.push(rel),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_safety() {
        assert!(is_safe_rel_path("a.gguf"));
        assert!(is_safe_rel_path("sub/dir/a.gguf"));
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "a\\b",
            "./a",
            "a/",
        ] {
            assert!(!is_safe_rel_path(bad), "{bad}");
        }
        assert!(is_safe_token("0123abcdef"));
        assert!(!is_safe_token("../x"));
        assert!(!is_safe_token("a.b"));
    }

    #[test]
    fn layout_and_links() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = RepoSpec::parse("o/n").unwrap();
        let c = RepoCache::new(tmp.path(), &spec);
        let commit = "0123456789abcdef0123456789abcdef01234567";
        std::fs::create_dir_all(c.blob_path("x").parent().unwrap()).unwrap();
        std::fs::write(c.blob_path("e1"), b"hello").unwrap();
        let p = c.link(commit, "sub/f.bin", "e1").unwrap();
        assert_eq!(
            p,
            tmp.path()
                .join("models--o--n/snapshots")
                .join(commit)
                .join("sub/f.bin")
        );
        assert_eq!(std::fs::read(&p).unwrap(), b"hello");
        #[cfg(unix)]
        assert_eq!(
            std::fs::read_link(&p).unwrap(),
            PathBuf::from("../../../blobs/e1")
        );
        assert_eq!(c.snapshot_files(commit), vec!["sub/f.bin".to_string()]);
        assert_eq!(c.cached_commit("main"), None);
        c.write_ref("main", commit).unwrap();
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("models--o--n/refs/main")).unwrap(),
            commit
        );
        assert_eq!(c.cached_commit("main").as_deref(), Some(commit));
        assert_eq!(c.cached_commit(commit).as_deref(), Some(commit));
        c.mark_no_exist(commit, "tokenizer.model").unwrap();
        assert!(c.no_exist(commit).contains("tokenizer.model"));
    }
}
