//! Faults: a hostile hub. Header values that would be paths (absolute, `..`), lying sizes and
//! ranges, redirects without `Location` or to another origin, short bodies, silent servers,
//! and cache files that are not what their names say. Each case asserts the refusal a user
//! sees and that nothing was written outside `HF_HUB_CACHE`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use dpa_explorer::hub::{fetch, HubOptions, ModelSource};

use crate::common::fixture;
use crate::hub_server::{git_sha1_hex, sha256_hex, Server, State};

const MAIN: &str = "1111111111111111111111111111111111111111";
const SHARD: &str = "model-00001-of-00002.safetensors";

fn state() -> State {
    let mut st = State::default();
    st.add("org/tiny", "main", MAIN, &fixture("tiny-mha"), &[]);
    st
}

/// A temporary root holding the cache (`root/hf/hub`) and nothing else, so that any stray
/// write shows up in [`assert_all_inside_cache`].
struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    fn new() -> Root {
        Root {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn cache(&self) -> PathBuf {
        self.path().join("hf").join("hub")
    }
    fn options(&self, endpoint: &str) -> HubOptions {
        let mut o = HubOptions::with_cache(self.cache());
        o.endpoint = endpoint.to_string();
        o.chunk_size = 256 * 1024;
        o.parallel = 2;
        o.retries = 0;
        o.retry_delay = Duration::from_millis(10);
        o.stall_timeout = Duration::from_secs(10);
        o.request_timeout = Duration::from_secs(10);
        o
    }
    fn repo(&self) -> PathBuf {
        self.cache().join("models--org--tiny")
    }
    fn snapshot(&self) -> PathBuf {
        self.repo().join("snapshots").join(MAIN)
    }
}

/// Every entry under `root` is the cache or inside it, and every link in the cache points
/// inside it.
fn assert_all_inside_cache(root: &Root) {
    let cache = root.cache();
    let mut stack = vec![root.path().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let allowed = path.starts_with(&cache) || cache.starts_with(&path);
            assert!(allowed, "written outside the cache: {}", path.display());
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                let resolved = path.parent().unwrap().join(&target);
                let resolved = std::fs::canonicalize(&resolved).unwrap_or(resolved);
                assert!(
                    resolved.starts_with(std::fs::canonicalize(&cache).unwrap()),
                    "{} links outside the cache: {}",
                    path.display(),
                    target.display()
                );
            } else if meta.is_dir() {
                stack.push(path);
            }
        }
    }
}

/// Total bytes held by the files under `dir` (allocated, so a sparse file counts as big).
fn bytes_under(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
            } else {
                total += m.len();
            }
        }
    }
    total
}

fn hub() -> ModelSource {
    ModelSource::Hub {
        repo: "org/tiny".into(),
        revision: "main".into(),
    }
}

/// Fetches `org/tiny` from a stand-in prepared by `edit`; the error text.
fn refusal(root: &Root, edit: impl FnOnce(&mut State)) -> String {
    let mut st = state();
    edit(&mut st);
    let server = Server::start(st);
    let e = fetch(&hub(), &root.options(&server.endpoint()), &|_| {})
        .expect_err("the hostile hub is refused")
        .to_string();
    assert_all_inside_cache(root);
    e
}

fn replace_header(st: &mut State, file: &str, name: &str, value: &str) {
    st.headers
        .entry(file.into())
        .or_default()
        .push((name.into(), value.into()));
}

#[test]
fn an_etag_that_is_a_path_never_becomes_one() {
    for etag in [
        "\"/ABS\"",
        "\"../../../x\"",
        "../../../../../escaped",
        "\"a/b\"",
    ] {
        let root = Root::new();
        let outside = root.path().join("outside");
        let etag = etag.replace("/ABS", &outside.join("pwned").display().to_string());
        let e = refusal(&root, |st| replace_header(st, "config.json", "ETag", &etag));
        assert!(
            e.contains("ETag") && e.contains("is not a content hash"),
            "{e}"
        );
        assert!(!outside.exists());
    }
    // The LFS etag of a shard too.
    let root = Root::new();
    let e = refusal(&root, |st| {
        replace_header(st, SHARD, "X-Linked-Etag", "\"../../../../shard\"")
    });
    assert!(
        e.contains(SHARD) && e.contains("is not a content hash"),
        "{e}"
    );
}

#[test]
fn a_commit_that_is_a_path_never_becomes_one() {
    let root = Root::new();
    let e = refusal(&root, |st| {
        replace_header(st, "config.json", "X-Repo-Commit", "../../x")
    });
    assert!(
        e.contains("X-Repo-Commit \"../../x\" is not a commit hash"),
        "{e}"
    );
    assert!(!root.path().join("x").exists());

    let root = Root::new();
    let e = refusal(&root, |st| st.listing_sha = Some("../../../x".into()));
    assert!(
        e.contains("\"../../../x\" as the commit of `org/tiny`, which is not a commit hash"),
        "{e}"
    );
    assert!(!root.cache().join("models--org--tiny/snapshots").exists());
}

#[test]
fn a_shard_index_naming_files_outside_the_repository_is_refused() {
    for shard in ["../../../../outside.safetensors", "/etc/passwd"] {
        let root = Root::new();
        let index = format!(r#"{{"weight_map": {{"a": "{shard}"}}}}"#);
        let e = refusal(&root, |st| {
            let files = &mut st
                .repos
                .get_mut("org/tiny")
                .unwrap()
                .get_mut("main")
                .unwrap()
                .files;
            files.insert(
                "model.safetensors.index.json".into(),
                std::sync::Arc::new(index.into_bytes()),
            );
        });
        assert!(
            e.contains("names a shard outside the model directory"),
            "{e}"
        );
    }
}

#[test]
fn a_short_body_is_never_padded_or_cached() {
    let root = Root::new();
    let e = refusal(&root, |st| {
        st.short_body.insert("config.json".into());
    });
    assert!(
        e.contains("downloading config.json from `org/tiny` failed"),
        "{e}"
    );
    assert!(e.contains("the connection ended after"), "{e}");
    assert!(!root.snapshot().join("config.json").exists());
    let config = std::fs::read(fixture("tiny-mha").join("config.json")).unwrap();
    assert!(!root
        .repo()
        .join("blobs")
        .join(git_sha1_hex(&config))
        .exists());
}

#[test]
fn lying_sizes_and_ranges_are_refused_without_a_huge_file() {
    // A size of 4 GiB for a 1 kB config: the ranges the server really sends give it away.
    let root = Root::new();
    let e = refusal(&root, |st| {
        replace_header(st, "config.json", "Content-Length", "4294967296")
    });
    assert!(e.contains("4294967296"), "{e}");
    assert!(
        bytes_under(root.path()) < 1 << 20,
        "{}",
        bytes_under(root.path())
    );

    // A size no disk holds, and a Content-Range total of 2^64 - 1: refused, named, no
    // allocation (the test process would abort on one).
    let root = Root::new();
    let e = refusal(&root, |st| {
        replace_header(st, SHARD, "X-Linked-Size", "18446744073709551615")
    });
    assert!(e.contains("a size of 18446744073709551615 bytes"), "{e}");
    let root = Root::new();
    let e = refusal(&root, |st| {
        replace_header(
            st,
            "config.json",
            "Content-Range",
            "bytes 0-99/18446744073709551615",
        )
    });
    assert!(e.contains("bytes 0-99/18446744073709551615"), "{e}");
}

#[test]
fn a_redirect_without_location_is_an_error_not_a_panic() {
    let root = Root::new();
    let e = refusal(&root, |st| {
        st.redirect.insert("config.json".into(), None);
    });
    assert!(
        e.contains("answered HTTP 302 (a redirect) without a Location header"),
        "{e}"
    );
}

#[test]
fn the_token_goes_to_the_hub_only_not_where_it_redirects() {
    // As the hub does for LFS files: the answer carries X-Linked-Size and X-Linked-Etag and
    // sends the bytes from another origin.
    let cdn = Server::start(state());
    let mut st = state();
    for file in [SHARD, "model-00002-of-00002.safetensors"] {
        st.redirect.insert(
            file.into(),
            Some(format!("{}/org/tiny/resolve/main/{file}", cdn.endpoint())),
        );
    }
    let hub_server = Server::start(st);
    let root = Root::new();
    let mut opts = root.options(&hub_server.endpoint());
    opts.token = Some("hf_secret".into());
    let r = fetch(&hub(), &opts, &|_| {}).expect("the download works through the redirect");
    assert_eq!(
        std::fs::read(&r.files.weights.paths()[0]).unwrap(),
        std::fs::read(fixture("tiny-mha").join(SHARD)).unwrap()
    );
    let to_cdn = cdn.requests();
    assert!(to_cdn.len() >= 2, "{to_cdn:?}");
    assert!(
        to_cdn.iter().all(|r| r.auth.is_none()),
        "token leaked: {to_cdn:?}"
    );
    assert!(hub_server
        .requests()
        .iter()
        .all(|r| r.auth.as_deref() == Some("Bearer hf_secret")));
    assert_all_inside_cache(&root);
}

/// Downloads `org/tiny` once; the server and root for what follows.
fn filled() -> (Server, Root) {
    let server = Server::start(state());
    let root = Root::new();
    fetch(&hub(), &root.options(&server.endpoint()), &|_| {}).expect("download works");
    (server, root)
}

#[test]
fn a_bad_cached_file_is_named_offline_and_fetched_again_online() {
    let (server, root) = filled();
    let config = std::fs::read(fixture("tiny-mha").join("config.json")).unwrap();
    let blob = root.repo().join("blobs").join(git_sha1_hex(&config));
    // As a blob left half-checked by a killed run: the name promises other bytes.
    std::fs::write(&blob, b"{\"hidden_size\": 1}").unwrap();

    let mut opts = root.options(&server.endpoint());
    opts.offline = true;
    let e = fetch(&hub(), &opts, &|_| {}).unwrap_err().to_string();
    assert!(e.contains("config.json is unusable"), "{e}");
    assert!(e.contains("is corrupt (git SHA-1"), "{e}");
    assert!(e.contains("without HF_HUB_OFFLINE"), "{e}");

    opts.offline = false;
    let before = server.requests().len();
    let r = fetch(&hub(), &opts, &|_| {}).expect("fetched again");
    assert_eq!(r.downloaded, ["config.json"]);
    assert_eq!(std::fs::read(&blob).unwrap(), config);
    assert!(server.requests()[before..]
        .iter()
        .any(|r| r.is_file("config.json")));
    assert_all_inside_cache(&root);
}

#[test]
fn a_part_killed_before_its_check_is_checked_before_use() {
    let shard = std::fs::read(fixture("tiny-mha").join(SHARD)).unwrap();
    let hash = sha256_hex(&shard);
    for corrupt in [false, true] {
        let (server, root) = filled();
        // Back to the state of a run killed after the last byte, before the check.
        let blobs = root.repo().join("blobs");
        std::fs::remove_file(root.snapshot().join(SHARD)).unwrap();
        let mut bytes = shard.clone();
        if corrupt {
            bytes[100] ^= 1;
        }
        std::fs::remove_file(blobs.join(&hash)).unwrap();
        std::fs::write(blobs.join(format!("{hash}.sync.part")), &bytes).unwrap();
        std::fs::write(
            blobs.join(format!("{hash}.sync.progress")),
            shard.len().to_string(),
        )
        .unwrap();
        let before = server.requests().len();
        let r = fetch(&hub(), &root.options(&server.endpoint()), &|_| {});
        let data_requests = server.requests()[before..]
            .iter()
            .filter(|r| r.is_file(SHARD) && r.method == "GET")
            .count();
        assert_eq!(data_requests, 0, "nothing was left to fetch");
        if corrupt {
            let e = r.unwrap_err().to_string();
            assert!(e.contains("corrupt (SHA-256"), "{e}");
            assert!(!root.snapshot().join(SHARD).exists());
            assert!(!blobs.join(&hash).exists());
            assert!(!blobs.join(format!("{hash}.sync.part")).exists());
        } else {
            r.expect("the checked part is published");
            assert_eq!(std::fs::read(root.snapshot().join(SHARD)).unwrap(), shard);
        }
    }
}

#[test]
fn a_silent_hub_is_given_up_within_the_configured_wait() {
    let mut st = state();
    st.stall_always.insert("config.json".into());
    let server = Server::start(st);
    let root = Root::new();
    let mut opts = root.options(&server.endpoint());
    opts.set_timeout(3);
    opts.retries = 10;
    opts.retry_delay = Duration::from_millis(100);
    let started = Instant::now();
    let e = fetch(&hub(), &opts, &|_| {}).unwrap_err().to_string();
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert!(e.contains("nothing received"), "{e}");
    assert!(e.contains("DPA_HUB_TIMEOUT"), "{e}");
}

#[test]
fn retries_are_announced_on_stderr_and_the_wait_is_bounded() {
    let mut st = state();
    st.stall_always.insert("config.json".into());
    let server = Server::start(st);
    let root = Root::new();
    let mut c = Command::new(env!("CARGO_BIN_EXE_dpa-explorer"));
    for var in [
        "HF_TOKEN",
        "HF_HUB_OFFLINE",
        "HF_HUB_CACHE",
        "HUGGINGFACE_HUB_CACHE",
        "DPA_LOG",
    ] {
        c.env_remove(var);
    }
    c.env("HF_ENDPOINT", server.endpoint())
        .env("HF_HOME", root.path().join("hf"))
        .env("XDG_CACHE_HOME", root.path().join("xdg"))
        .env("DPA_HUB_TIMEOUT", "4")
        .env("NO_PROXY", "127.0.0.1")
        .env("no_proxy", "127.0.0.1")
        .args([
            "score",
            "--model",
            "org/tiny",
            "--prompt",
            "p",
            "--response",
            "r",
        ])
        .args(["--device", "cpu", "--dtype", "f32"]);
    let started = Instant::now();
    let out = c.output().expect("run dpa-explorer");
    let elapsed = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
    assert!(
        err.contains("downloading config.json from org/tiny: nothing received"),
        "{err}"
    );
    assert!(err.contains("retrying in"), "{err}");
    assert!(err.contains("DPA_HUB_TIMEOUT) is 4s"), "{err}");
}
