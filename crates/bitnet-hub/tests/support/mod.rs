//! A tiny hub-shaped HTTP/1.1 server on 127.0.0.1 (ephemeral port) for the resolver tests.
//!
//! Routes, modelled on huggingface.co:
//! - `GET /api/models/{owner}/{name}/revision/{rev}` → `{"id","sha","siblings":[{"rfilename"}]}`;
//! - `HEAD|GET /{owner}/{name}/resolve/{rev}/{path}` → LFS files: `302` to `/cdn/{sha256}` with
//!   `X-Repo-Commit`, `X-Linked-Etag: "<sha256>"`, `X-Linked-Size` (and a decoy `ETag`);
//!   regular files: `200` with `ETag: "<git blob sha1>"`;
//! - `GET /cdn/{sha256}` → the bytes, honouring `Range: bytes=N-` with `206`;
//! - errors as `404`/`401` with `X-Error-Code` (`RepoNotFound`, `RevisionNotFound`,
//!   `EntryNotFound`, `GatedRepo`).
//!
//! Every request is recorded. One connection per request (`Connection: close`); the server thread
//! stops when the [`FakeHub`] is dropped (or after 1000 connections).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use sha1::Sha1;
use sha2::{Digest, Sha256};

/// One file of a fake repo.
#[derive(Clone, Debug)]
pub struct FakeFile {
    /// Repo-relative path.
    pub path: String,
    /// Content.
    pub data: Vec<u8>,
    /// Served through the LFS/CDN redirect (etag = sha256) instead of directly (etag = git sha1).
    pub lfs: bool,
    /// Overrides the advertised sha256 (to simulate corruption).
    pub advertised_sha256: Option<String>,
    /// Listed by the API but answered `404 EntryNotFound` by `resolve`.
    pub missing_on_resolve: bool,
}

impl FakeFile {
    /// A regular (git) file.
    pub fn git(path: &str, data: &[u8]) -> Self {
        FakeFile {
            path: path.into(),
            data: data.to_vec(),
            lfs: false,
            advertised_sha256: None,
            missing_on_resolve: false,
        }
    }

    /// An LFS file.
    pub fn lfs(path: &str, data: Vec<u8>) -> Self {
        FakeFile {
            path: path.into(),
            data,
            lfs: true,
            advertised_sha256: None,
            missing_on_resolve: false,
        }
    }

    /// Hex sha256 of the content.
    pub fn sha256(&self) -> String {
        hex(&Sha256::digest(&self.data))
    }

    /// Git blob id of the content.
    pub fn git_sha1(&self) -> String {
        let mut h = Sha1::new();
        h.update(format!("blob {}\0", self.data.len()).as_bytes());
        h.update(&self.data);
        hex(&h.finalize())
    }
}

/// A fake repo.
#[derive(Clone, Debug)]
pub struct FakeRepo {
    /// `owner/name`.
    pub id: String,
    /// Commit id `main` points to.
    pub commit: String,
    /// Files.
    pub files: Vec<FakeFile>,
    /// When set, `resolve` requires `Authorization: Bearer <token>` (a gated repo).
    pub token: Option<String>,
}

/// One recorded request.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// `GET`, `HEAD`.
    pub method: String,
    /// Request target.
    pub path: String,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
}

impl Recorded {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Injected misbehaviour.
#[derive(Default, Debug)]
pub struct Faults {
    /// The next CDN response sends only this many body bytes, then closes (one-shot).
    pub drop_cdn_after: Option<usize>,
    /// CDN ignores `Range` (always `200` with the whole body).
    pub ignore_range: bool,
}

struct State {
    addr: SocketAddr,
    repos: Vec<FakeRepo>,
    log: Mutex<Vec<Recorded>>,
    faults: Mutex<Faults>,
}

/// The running server.
pub struct FakeHub {
    state: Arc<State>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl FakeHub {
    /// Starts serving `repos`.
    pub fn start(repos: Vec<FakeRepo>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(State {
            addr,
            repos,
            log: Mutex::new(Vec::new()),
            faults: Mutex::new(Faults::default()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming().take(1000) {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = conn {
                    let _ = handle(&st, stream);
                }
            }
        });
        FakeHub {
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.state.addr)
    }

    /// All requests so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.log.lock().unwrap().clone()
    }

    /// Number of requests so far.
    pub fn request_count(&self) -> usize {
        self.state.log.lock().unwrap().len()
    }

    /// Changes the injected faults.
    pub fn set_faults(&self, f: Faults) {
        *self.state.faults.lock().unwrap() = f;
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.state.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hexpair = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hexpair, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Send only this many body bytes, then close.
    truncate_at: Option<usize>,
}

impl Reply {
    fn new(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            truncate_at: None,
        }
    }
    fn h(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
    fn error(status: u16, code: &str) -> Self {
        Reply::new(status)
            .h("X-Error-Code", code)
            .h("X-Error-Message", format!("{code} (fake hub)"))
    }
}

fn handle(state: &State, stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    if method.is_empty() {
        return Ok(()); // wake-up connection
    }
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let req = Recorded {
        method,
        path,
        headers,
    };
    state.log.lock().unwrap().push(req.clone());
    let reply = route(state, &req);
    write_reply(stream, &req, reply)
}

fn write_reply(mut stream: TcpStream, req: &Recorded, r: Reply) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} X\r\n", r.status);
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        r.body.len()
    ));
    stream.write_all(head.as_bytes())?;
    if req.method != "HEAD" {
        let n = r.truncate_at.unwrap_or(r.body.len()).min(r.body.len());
        stream.write_all(&r.body[..n])?;
    }
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Both)
}

fn route(state: &State, req: &Recorded) -> Reply {
    let path = req.path.as_str();
    if let Some(rest) = path.strip_prefix("/api/models/") {
        let parts: Vec<&str> = rest.splitn(4, '/').collect();
        let [owner, name, "revision", rev] = parts.as_slice() else {
            return Reply::new(400);
        };
        let Some(repo) = find_repo(state, owner, name) else {
            return Reply::error(404, "RepoNotFound");
        };
        let rev = percent_decode(rev);
        if rev != "main" && rev != repo.commit {
            return Reply::error(404, "RevisionNotFound");
        }
        let siblings: Vec<String> = repo
            .files
            .iter()
            .map(|f| format!("{{\"rfilename\":\"{}\"}}", f.path))
            .collect();
        let mut r = Reply::new(200).h("Content-Type", "application/json");
        r.body = format!(
            "{{\"id\":\"{}\",\"sha\":\"{}\",\"private\":false,\"siblings\":[{}]}}",
            repo.id,
            repo.commit,
            siblings.join(",")
        )
        .into_bytes();
        return r;
    }
    if let Some(sha) = path.strip_prefix("/cdn/") {
        return cdn(state, req, sha);
    }
    let parts: Vec<&str> = path.trim_start_matches('/').splitn(5, '/').collect();
    let [owner, name, "resolve", rev, file] = parts.as_slice() else {
        return Reply::new(404);
    };
    let Some(repo) = find_repo(state, owner, name) else {
        return Reply::error(404, "RepoNotFound");
    };
    let rev = percent_decode(rev);
    if rev != "main" && rev != repo.commit {
        return Reply::error(404, "RevisionNotFound");
    }
    if let Some(tok) = &repo.token {
        if req.header("authorization") != Some(format!("Bearer {tok}").as_str()) {
            return Reply::error(401, "GatedRepo");
        }
    }
    let file = percent_decode(file);
    let Some(f) = repo
        .files
        .iter()
        .find(|f| f.path == file && !f.missing_on_resolve)
    else {
        return Reply::error(404, "EntryNotFound");
    };
    if f.lfs {
        let advertised = f.advertised_sha256.clone().unwrap_or_else(|| f.sha256());
        Reply::new(302)
            .h(
                "Location",
                format!("http://{}/cdn/{}", state.addr, f.sha256()),
            )
            .h("X-Repo-Commit", repo.commit.clone())
            .h("X-Linked-Etag", format!("\"{advertised}\""))
            .h("X-Linked-Size", f.data.len().to_string())
            .h("ETag", "\"0000pointer\"")
    } else {
        let mut r = Reply::new(200)
            .h("X-Repo-Commit", repo.commit.clone())
            .h("ETag", format!("\"{}\"", f.git_sha1()));
        r.body = f.data.clone();
        r
    }
}

fn find_repo<'a>(state: &'a State, owner: &str, name: &str) -> Option<&'a FakeRepo> {
    let id = format!("{owner}/{name}");
    state.repos.iter().find(|r| r.id == id)
}

fn cdn(state: &State, req: &Recorded, sha: &str) -> Reply {
    let Some(f) = state
        .repos
        .iter()
        .flat_map(|r| r.files.iter())
        .find(|f| f.sha256() == sha)
    else {
        return Reply::new(404);
    };
    let mut faults = state.faults.lock().unwrap();
    let start = req
        .header("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    let mut r = match start {
        Some(s) if !faults.ignore_range && s < f.data.len() => {
            let mut r = Reply::new(206).h(
                "Content-Range",
                format!("bytes {s}-{}/{}", f.data.len() - 1, f.data.len()),
            );
            r.body = f.data[s..].to_vec();
            r
        }
        Some(s) if !faults.ignore_range && s >= f.data.len() => {
            return Reply::new(416).h("Content-Range", format!("bytes */{}", f.data.len()));
        }
        _ => {
            let mut r = Reply::new(200);
            r.body = f.data.clone();
            r
        }
    };
    r.truncate_at = faults.drop_cdn_after.take();
    r
}
