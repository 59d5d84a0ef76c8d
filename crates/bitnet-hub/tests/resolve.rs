//! End-to-end tests of `resolve_model` against a local hub-shaped HTTP server (no internet).
//! Each test has its own server and temp cache, passed through `HubOptions` (no env mutation).

mod support;

use std::path::{Path, PathBuf};

use bitnet_hub::{resolve_model, HubError, HubOptions};
use sha2::{Digest, Sha256};
use support::{FakeFile, FakeHub, FakeRepo, Faults};

const COMMIT: &str = "4f1c9d0e8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d";
const GGUF_REPO: &str = "microsoft/bitnet-b1.58-2B-4T-gguf";
const HF_REPO: &str = "microsoft/bitnet-b1.58-2B-4T";

/// Deterministic pseudo-random bytes (xorshift) starting with the GGUF magic.
fn blob(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    v[..4].copy_from_slice(b"GGUF");
    v
}

fn gguf_repo(files: Vec<FakeFile>) -> FakeRepo {
    let mut all = vec![
        FakeFile::git(
            ".gitattributes",
            b"*.gguf filter=lfs diff=lfs merge=lfs -text\n",
        ),
        FakeFile::git("README.md", b"# BitNet b1.58 2B4T gguf\n"),
    ];
    all.extend(files);
    FakeRepo {
        id: GGUF_REPO.into(),
        commit: COMMIT.into(),
        files: all,
        token: None,
    }
}

fn opts(hub: &FakeHub, tmp: &tempfile::TempDir) -> HubOptions {
    HubOptions::new(hub.endpoint(), tmp.path().join("hub"))
}

fn repo_dir(tmp: &tempfile::TempDir, repo: &str) -> PathBuf {
    tmp.path()
        .join("hub")
        .join(format!("models--{}", repo.replace('/', "--")))
}

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn paths(hub: &FakeHub) -> Vec<String> {
    hub.requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[test]
fn local_paths_are_returned_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("m.gguf");
    std::fs::write(&file, b"GGUF").unwrap();
    // No server: a local path must never touch the network.
    let o = HubOptions::new("http://127.0.0.1:9", tmp.path().join("hub"));
    let s = file.to_str().unwrap();
    assert_eq!(resolve_model(s, &o).unwrap(), PathBuf::from(s));
    let d = tmp.path().to_str().unwrap();
    assert_eq!(resolve_model(d, &o).unwrap(), PathBuf::from(d));
    let err = resolve_model("models/missing.gguf", &o).unwrap_err();
    assert!(matches!(err, HubError::LocalPathMissing { .. }), "{err}");
    let err = resolve_model("missing.gguf", &o).unwrap_err();
    assert!(matches!(err, HubError::InvalidSpec { .. }), "{err}");
    assert!(err.to_string().contains("missing.gguf"));
}

#[test]
fn fresh_download_lands_in_cache_then_reuses_it_without_requests() {
    let data = blob(300_000, 7);
    let hub = FakeHub::start(vec![gguf_repo(vec![FakeFile::lfs(
        "ggml-model-i2_s.gguf",
        data.clone(),
    )])]);
    let tmp = tempfile::tempdir().unwrap();
    let o = opts(&hub, &tmp);

    let path = resolve_model(GGUF_REPO, &o).unwrap();
    let root = repo_dir(&tmp, GGUF_REPO);
    assert_eq!(
        path,
        root.join("snapshots")
            .join(COMMIT)
            .join("ggml-model-i2_s.gguf")
    );
    assert_eq!(std::fs::read(&path).unwrap(), data);
    // Standard layout: relative symlink to the blob named by its sha256, refs/main = commit.
    let sha = sha256_hex(&data);
    assert_eq!(std::fs::read(root.join("blobs").join(&sha)).unwrap(), data);
    #[cfg(unix)]
    assert_eq!(
        std::fs::read_link(&path).unwrap(),
        Path::new("../../blobs").join(&sha)
    );
    assert_eq!(
        std::fs::read_to_string(root.join("refs/main")).unwrap(),
        COMMIT
    );
    assert!(!root
        .join("blobs")
        .join(format!("{sha}.incomplete"))
        .exists());
    let p = paths(&hub);
    assert_eq!(
        p,
        vec![
            format!("GET /api/models/{GGUF_REPO}/revision/main"),
            format!("HEAD /{GGUF_REPO}/resolve/{COMMIT}/ggml-model-i2_s.gguf"),
            format!("GET /{GGUF_REPO}/resolve/{COMMIT}/ggml-model-i2_s.gguf"),
            format!("GET /cdn/{sha}"),
        ]
    );
    // The first GET carried no Range header.
    assert_eq!(hub.requests()[2].header("range"), None);

    // Second resolve, by name, by commit, and offline: all from the cache, zero requests.
    let n = hub.request_count();
    assert_eq!(resolve_model(GGUF_REPO, &o).unwrap(), path);
    assert_eq!(
        resolve_model(&format!("{GGUF_REPO}@{COMMIT}"), &o).unwrap(),
        path
    );
    assert_eq!(
        resolve_model(&format!("{GGUF_REPO}:i2_s"), &o).unwrap(),
        path
    );
    let mut off = o.clone();
    off.offline = true;
    assert_eq!(resolve_model(GGUF_REPO, &off).unwrap(), path);
    assert_eq!(hub.request_count(), n, "{:?}", &paths(&hub)[n..]);
}

#[test]
fn offline_without_cache_is_a_clear_error() {
    let hub = FakeHub::start(vec![gguf_repo(vec![FakeFile::lfs(
        "m.gguf",
        blob(1000, 1),
    )])]);
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts(&hub, &tmp);
    o.offline = true;
    let err = resolve_model(GGUF_REPO, &o).unwrap_err();
    assert!(matches!(err, HubError::Offline { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(GGUF_REPO) && msg.contains("HF_HUB_OFFLINE"),
        "{msg}"
    );
    assert_eq!(hub.request_count(), 0);
}

#[test]
fn not_found_and_network_errors_name_what_failed() {
    let hub = FakeHub::start(vec![gguf_repo(vec![
        FakeFile::lfs("m-i2_s.gguf", blob(1000, 1)),
        FakeFile::lfs("m-f16.gguf", blob(1000, 2)),
    ])]);
    let tmp = tempfile::tempdir().unwrap();
    let o = opts(&hub, &tmp);

    let err = resolve_model("nobody/nothing", &o).unwrap_err();
    assert!(
        matches!(err, HubError::RepoNotFound { status: 404, .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("'nobody/nothing' not found"), "{msg}");
    assert!(msg.contains("HF_TOKEN"), "{msg}");
    assert!(msg.contains("no local file or directory"), "{msg}");

    let err = resolve_model(&format!("{GGUF_REPO}@v9"), &o).unwrap_err();
    assert!(matches!(err, HubError::RevisionNotFound { .. }), "{err}");
    assert!(err.to_string().contains("'v9'"));

    let err = resolve_model(&format!("{GGUF_REPO}:q4_k_m"), &o).unwrap_err();
    assert!(matches!(err, HubError::SelectorNoMatch { .. }), "{err}");
    assert!(err.to_string().contains("m-i2_s.gguf, m-f16.gguf"), "{err}");

    // A file that the listing has but the server does not serve: 404 EntryNotFound on the HEAD.
    let mut gone = FakeFile::lfs("x.gguf", blob(10, 3));
    gone.missing_on_resolve = true;
    let hub2 = FakeHub::start(vec![FakeRepo {
        id: "o/broken".into(),
        commit: COMMIT.into(),
        files: vec![gone],
        token: None,
    }]);
    let o2 = opts(&hub2, &tmp);
    let err = resolve_model("o/broken", &o2).unwrap_err();
    assert!(matches!(err, HubError::FileNotFound { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("'x.gguf'")
            && msg.contains("'o/broken'")
            && msg.contains("/o/broken/resolve/"),
        "{msg}"
    );

    // Nothing listens on this port: a network error naming the URL.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let o3 = HubOptions::new(format!("http://127.0.0.1:{port}"), tmp.path().join("hub"));
    let err = resolve_model("o/n", &o3).unwrap_err();
    assert!(matches!(err, HubError::Network { .. }), "{err}");
    assert!(
        err.to_string().contains(&format!(
            "http://127.0.0.1:{port}/api/models/o/n/revision/main"
        )),
        "{err}"
    );
}

#[test]
fn interrupted_download_keeps_partial_and_resumes_with_range() {
    let data = blob(300_000, 11);
    let sha = sha256_hex(&data);
    let hub = FakeHub::start(vec![gguf_repo(vec![FakeFile::lfs(
        "ggml-model-i2_s.gguf",
        data.clone(),
    )])]);
    let tmp = tempfile::tempdir().unwrap();
    let o = opts(&hub, &tmp);
    let root = repo_dir(&tmp, GGUF_REPO);
    let partial = root.join("blobs").join(format!("{sha}.incomplete"));

    hub.set_faults(Faults {
        drop_cdn_after: Some(100_000),
        ignore_range: false,
    });
    let err = resolve_model(GGUF_REPO, &o).unwrap_err();
    assert!(matches!(err, HubError::Interrupted { .. }), "{err}");
    assert!(err.to_string().contains("100000 of 300000 bytes"), "{err}");
    assert!(err.to_string().contains(".incomplete"), "{err}");
    assert_eq!(std::fs::read(&partial).unwrap(), &data[..100_000]);
    assert!(!root.join("snapshots").join(COMMIT).exists());
    assert!(!root.join("refs/main").exists());

    let n = hub.request_count();
    let path = resolve_model(GGUF_REPO, &o).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), data);
    assert!(!partial.exists());
    let reqs = hub.requests();
    let cdn: Vec<_> = reqs[n..]
        .iter()
        .filter(|r| r.path.starts_with("/cdn/"))
        .collect();
    assert_eq!(cdn.len(), 1);
    assert_eq!(cdn[0].header("range"), Some("bytes=100000-"));
}

#[test]
fn retries_resume_an_interrupted_download_within_one_call() {
    let data = blob(120_000, 17);
    let hub = FakeHub::start(vec![gguf_repo(vec![FakeFile::lfs("m.gguf", data.clone())])]);
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts(&hub, &tmp);
    o.retries = 1;
    hub.set_faults(Faults {
        drop_cdn_after: Some(70_000),
        ignore_range: false,
    });
    let path = resolve_model(GGUF_REPO, &o).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), data);
    let ranges: Vec<Option<String>> = hub
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/cdn/"))
        .map(|r| r.header("range").map(str::to_string))
        .collect();
    assert_eq!(ranges, vec![None, Some("bytes=70000-".to_string())]);
}

#[test]
fn resume_against_a_server_that_ignores_range_restarts_cleanly() {
    let data = blob(200_000, 5);
    let hub = FakeHub::start(vec![gguf_repo(vec![FakeFile::lfs("m.gguf", data.clone())])]);
    let tmp = tempfile::tempdir().unwrap();
    let o = opts(&hub, &tmp);
    hub.set_faults(Faults {
        drop_cdn_after: Some(50_000),
        ignore_range: true,
    });
    assert!(resolve_model(GGUF_REPO, &o).is_err());
    let path = resolve_model(GGUF_REPO, &o).unwrap();
    // Had the 200 body been appended to the 50 000-byte partial, this would be 250 000 bytes.
    assert_eq!(std::fs::read(&path).unwrap(), data);
    let last = hub.requests().last().cloned().unwrap();
    assert_eq!(last.header("range"), Some("bytes=50000-"));
}

#[test]
fn checksum_mismatch_is_rejected_and_nothing_is_cached() {
    let data = blob(50_000, 9);
    let mut f = FakeFile::lfs("m.gguf", data);
    let wrong = sha256_hex(b"something else");
    f.advertised_sha256 = Some(wrong.clone());
    let hub = FakeHub::start(vec![gguf_repo(vec![f])]);
    let tmp = tempfile::tempdir().unwrap();
    let o = opts(&hub, &tmp);
    let err = resolve_model(GGUF_REPO, &o).unwrap_err();
    assert!(matches!(err, HubError::Integrity { .. }), "{err}");
    assert!(err.to_string().contains(&wrong), "{err}");
    let root = repo_dir(&tmp, GGUF_REPO);
    assert!(!root.join("blobs").join(&wrong).exists());
    assert!(!root
        .join("blobs")
        .join(format!("{wrong}.incomplete"))
        .exists());
    assert!(!root.join("snapshots").exists());
}

#[test]
fn token_is_sent_as_bearer_and_gated_repo_without_it_is_explained() {
    let data = blob(20_000, 13);
    let mut repo = gguf_repo(vec![FakeFile::lfs("ggml-model-i2_s.gguf", data.clone())]);
    repo.token = Some("hf_secret".into());
    let hub = FakeHub::start(vec![repo]);
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts(&hub, &tmp);

    let err = resolve_model(GGUF_REPO, &o).unwrap_err();
    assert!(
        matches!(err, HubError::AccessDenied { status: 401, .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("gated") && msg.contains("HF_TOKEN"), "{msg}");
    assert!(hub
        .requests()
        .iter()
        .all(|r| r.header("authorization").is_none()));

    o.token = Some("hf_secret".into());
    let n = hub.request_count();
    let path = resolve_model(GGUF_REPO, &o).unwrap();
    assert_eq!(std::fs::read(path).unwrap(), data);
    let reqs = hub.requests();
    for r in &reqs[n..] {
        let auth = r.header("authorization");
        if r.path.starts_with("/cdn/") {
            // Reached through the hub's redirect: the token is not forwarded to the CDN.
            assert_eq!(auth, None, "{r:?}");
        } else {
            assert_eq!(auth, Some("Bearer hf_secret"), "{r:?}");
        }
    }
    assert!(reqs[n..].iter().any(|r| r.path.starts_with("/cdn/")));
}

fn hf_repo() -> FakeRepo {
    let index = br#"{"metadata":{"total_size":96000},"weight_map":{
        "model.embed_tokens.weight":"model-00001-of-00002.safetensors",
        "lm_head.weight":"model-00002-of-00002.safetensors"}}"#;
    FakeRepo {
        id: HF_REPO.into(),
        commit: COMMIT.into(),
        files: vec![
            FakeFile::git(".gitattributes", b"*.safetensors filter=lfs\n"),
            FakeFile::git("README.md", b"# model card\n"),
            FakeFile::git("config.json", br#"{"architectures":["BitNetForCausalLM"]}"#),
            FakeFile::git("generation_config.json", br#"{"eos_token_id":128001}"#),
            FakeFile::git("model.safetensors.index.json", index),
            FakeFile::lfs("model-00001-of-00002.safetensors", blob(64_000, 21)),
            FakeFile::lfs("model-00002-of-00002.safetensors", blob(32_000, 22)),
            FakeFile::lfs("tokenizer.json", blob(5_000, 23)),
            FakeFile::git("tokenizer_config.json", br#"{"chat_template":"x"}"#),
            FakeFile::lfs("pytorch_model.bin", blob(10_000, 24)),
            FakeFile::git("onnx/config.json", b"{}"),
        ],
        token: None,
    }
}

#[test]
fn hf_model_repo_gives_a_complete_snapshot_folder() {
    let repo = hf_repo();
    let hub = FakeHub::start(vec![repo.clone()]);
    let tmp = tempfile::tempdir().unwrap();
    let o = opts(&hub, &tmp);
    let dir = resolve_model(HF_REPO, &o).unwrap();
    let root = repo_dir(&tmp, HF_REPO);
    assert_eq!(dir, root.join("snapshots").join(COMMIT));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "config.json",
            "generation_config.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "model.safetensors.index.json",
            "tokenizer.json",
            "tokenizer_config.json",
        ]
    );
    for f in repo.files.iter().filter(|f| names.contains(&f.path)) {
        assert_eq!(
            std::fs::read(dir.join(&f.path)).unwrap(),
            f.data,
            "{}",
            f.path
        );
        // Regular files are stored under their git blob id, LFS files under their sha256.
        let etag = if f.lfs { f.sha256() } else { f.git_sha1() };
        assert!(root.join("blobs").join(etag).is_file(), "{}", f.path);
    }
    assert!(root
        .join(".no_exist")
        .join(COMMIT)
        .join("tokenizer.model")
        .is_file());
    assert!(!paths(&hub)
        .iter()
        .any(|p| p.contains("pytorch_model.bin") || p.contains("README") || p.contains("onnx")));

    let n = hub.request_count();
    assert_eq!(resolve_model(HF_REPO, &o).unwrap(), dir);
    let mut off = o.clone();
    off.offline = true;
    assert_eq!(resolve_model(HF_REPO, &off).unwrap(), dir);
    assert_eq!(hub.request_count(), n);

    // A shard lost from the cache makes the folder incomplete: refetched (offline: an error).
    let shard = dir.join("model-00002-of-00002.safetensors");
    std::fs::remove_file(&shard).unwrap();
    assert!(matches!(
        resolve_model(HF_REPO, &off),
        Err(HubError::Offline { .. })
    ));
    assert_eq!(resolve_model(HF_REPO, &o).unwrap(), dir);
    assert_eq!(std::fs::read(&shard).unwrap(), blob(32_000, 22));
    // Only the missing shard was fetched again (its blob was still cached: HEAD only).
    let again = paths(&hub)[n..].to_vec();
    assert_eq!(
        again,
        vec![
            format!("GET /api/models/{HF_REPO}/revision/main"),
            format!("HEAD /{HF_REPO}/resolve/{COMMIT}/model-00002-of-00002.safetensors"),
        ]
    );
}

#[test]
fn several_ggufs_pick_by_selector_or_i2_s() {
    let f16 = blob(3_000, 31);
    let i2s = blob(2_000, 32);
    let tq1 = blob(1_000, 33);
    let hub = FakeHub::start(vec![gguf_repo(vec![
        FakeFile::lfs("ggml-model-f16.gguf", f16.clone()),
        FakeFile::lfs("ggml-model-i2_s.gguf", i2s.clone()),
        FakeFile::lfs("ggml-model-tq1_0.gguf", tq1.clone()),
    ])]);
    let tmp = tempfile::tempdir().unwrap();
    let o = opts(&hub, &tmp);
    let p = resolve_model(GGUF_REPO, &o).unwrap();
    assert!(p.ends_with("ggml-model-i2_s.gguf"), "{p:?}");
    assert_eq!(std::fs::read(&p).unwrap(), i2s);
    let p = resolve_model(&format!("{GGUF_REPO}:TQ1_0"), &o).unwrap();
    assert!(p.ends_with("ggml-model-tq1_0.gguf"), "{p:?}");
    assert_eq!(std::fs::read(&p).unwrap(), tq1);
    let p = resolve_model(&format!("hf://{GGUF_REPO}:ggml-model-f16.gguf"), &o).unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), f16);

    let mut off = o.clone();
    off.offline = true;
    let n = hub.request_count();
    for (sel, want) in [
        ("i2_s", &i2s),
        ("tq1_0", &tq1),
        ("ggml-model-f16.gguf", &f16),
    ] {
        let p = resolve_model(&format!("{GGUF_REPO}:{sel}"), &off).unwrap();
        assert_eq!(&std::fs::read(&p).unwrap(), want);
    }
    assert_eq!(hub.request_count(), n);
    let err = resolve_model(&format!("{GGUF_REPO}:q8_0"), &off).unwrap_err();
    assert!(matches!(err, HubError::Offline { .. }), "{err}");
}

#[test]
fn a_download_waits_for_the_blob_lock_held_by_another_process() {
    let data = blob(40_000, 41);
    let sha = sha256_hex(&data);
    let hub = FakeHub::start(vec![gguf_repo(vec![FakeFile::lfs("m.gguf", data.clone())])]);
    let tmp = tempfile::tempdir().unwrap();
    let o = opts(&hub, &tmp);
    // The lock file huggingface_hub uses for this blob.
    let lock_path = tmp
        .path()
        .join("hub/.locks")
        .join(format!("models--{}", GGUF_REPO.replace('/', "--")))
        .join(format!("{sha}.lock"));
    std::fs::create_dir_all(lock_path.parent().unwrap()).unwrap();
    let mut lock = fd_lock::RwLock::new(std::fs::File::create(&lock_path).unwrap());
    let guard = lock.write().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let o2 = o.clone();
    let worker = std::thread::spawn(move || {
        let r = resolve_model(GGUF_REPO, &o2);
        let _ = tx.send(());
        r
    });
    // While the lock is held the resolver must not finish (nor fetch the bytes).
    assert!(rx
        .recv_timeout(std::time::Duration::from_millis(400))
        .is_err());
    assert!(!hub.requests().iter().any(|r| r.path.starts_with("/cdn/")));
    drop(guard);
    let path = worker.join().unwrap().unwrap();
    assert_eq!(std::fs::read(path).unwrap(), data);
}
