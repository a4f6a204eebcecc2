//! A small stand-in for the Hugging Face Hub on 127.0.0.1: the repository listing
//! (`/api/models/{repo}/revision/{rev}`) and file downloads (`/{repo}/resolve/{rev}/{file}`,
//! HEAD and GET with `Range`), with the headers a hub client relies on. It records every
//! request, can cut a file's first download after some bytes, can gate a repository behind a
//! token and serve a file whose bytes do not match its SHA-256. For the fault suite it can
//! also be hostile: replace any header (path-like etags and commits, lying sizes and ranges),
//! redirect (to another origin, or without `Location`), send short bodies, stall every time.
//! It stops when dropped, and on its own after two minutes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha1::Sha1;
use sha2::{Digest, Sha256};

const LIFETIME: Duration = Duration::from_secs(120);
const STALL: Duration = Duration::from_secs(30);

/// One revision of a repository.
#[derive(Clone)]
pub struct Revision {
    pub commit: String,
    pub files: BTreeMap<String, Arc<Vec<u8>>>,
}

#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub range: Option<String>,
    pub auth: Option<String>,
}

impl Request {
    /// The first byte asked for, for data requests (not the 1-byte metadata probe).
    pub fn data_range_start(&self) -> Option<u64> {
        let r = self.range.as_deref()?.strip_prefix("bytes=")?;
        if r == "0-0" {
            return None;
        }
        r.split('-').next()?.parse().ok()
    }

    pub fn is_file(&self, file: &str) -> bool {
        self.path.contains("/resolve/") && self.path.ends_with(&format!("/{file}"))
    }
}

#[derive(Default)]
pub struct State {
    /// repo id → revision name (and commit) → revision.
    pub repos: BTreeMap<String, BTreeMap<String, Revision>>,
    /// Repositories that need `Authorization: Bearer <token>`.
    pub gated: BTreeMap<String, String>,
    /// File name → body bytes the server sends before it cuts the connection, once.
    pub cut: BTreeMap<String, usize>,
    /// Like `cut`, but the connection is then held open, silent, for a few seconds.
    pub stall: BTreeMap<String, usize>,
    /// File names served with a flipped byte (their etag stays that of the true bytes).
    pub corrupt: BTreeSet<String>,
    /// File name → headers that replace the same-named ones on its answers (HEAD and GET);
    /// an empty value removes the header. `Content-Length` given here is sent as it is.
    pub headers: BTreeMap<String, Vec<(String, String)>>,
    /// File name → answer `302` (with the hub's headers) to this `Location`, or with none.
    pub redirect: BTreeMap<String, Option<String>>,
    /// Replaces the commit in every repository listing.
    pub listing_sha: Option<String>,
    /// File names whose ranged answers carry half the bytes their `Content-Range` names.
    pub short_body: BTreeSet<String>,
    /// File names whose every download goes silent at once.
    pub stall_always: BTreeSet<String>,
    pub log: Vec<Request>,
}

impl State {
    /// Adds `repo` at `revision` (and at its commit) with the files of `dir` plus `extra`.
    pub fn add(
        &mut self,
        repo: &str,
        revision: &str,
        commit: &str,
        dir: &Path,
        extra: &[(&str, &[u8])],
    ) {
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(dir).expect("fixture dir") {
            let entry = entry.expect("entry");
            if entry.path().is_file() {
                let bytes = std::fs::read(entry.path()).expect("fixture file");
                files.insert(
                    entry.file_name().to_string_lossy().into_owned(),
                    Arc::new(bytes),
                );
            }
        }
        for (name, bytes) in extra {
            files.insert(name.to_string(), Arc::new(bytes.to_vec()));
        }
        let rev = Revision {
            commit: commit.to_string(),
            files,
        };
        let revs = self.repos.entry(repo.to_string()).or_default();
        revs.insert(commit.to_string(), rev.clone());
        revs.insert(revision.to_string(), rev);
    }
}

pub struct Server {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(state: State) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(state));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let born = Instant::now();
            while !sp.load(Ordering::Relaxed) && born.elapsed() < LIFETIME {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let st = st.clone();
                        std::thread::spawn(move || serve(conn, &st));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(2))
                    }
                    Err(_) => break,
                }
            }
            // The listener is dropped here: the port refuses connections from now on.
        });
        Server {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().log.clone()
    }

    /// Stops accepting connections; returns when the port is closed.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The etag of a git-stored file, as the hub gives it: the git blob SHA-1.
pub fn git_sha1_hex(bytes: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(format!("blob {}\0", bytes.len()).as_bytes());
    h.update(bytes);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
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
    /// Body bytes to send before cutting the connection.
    cut_at: Option<usize>,
    /// Whether to go silent, rather than close, after `cut_at`.
    stall: bool,
}

impl Reply {
    fn error(status: u16, code: &str) -> Reply {
        Reply {
            status,
            headers: vec![
                ("X-Error-Code".into(), code.into()),
                ("Content-Type".into(), "application/json".into()),
            ],
            body: format!("{{\"error\":\"{code}\"}}").into_bytes(),
            cut_at: None,
            stall: false,
        }
    }
}

fn read_request(conn: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 || buf.len() > 64 * 1024 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let mut range = None;
    let mut auth = None;
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "range" => range = Some(v.trim().to_string()),
                "authorization" => auth = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    Some(Request {
        method,
        path,
        range,
        auth,
    })
}

fn serve(mut conn: TcpStream, state: &Mutex<State>) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(10)));
    let Some(req) = read_request(&mut conn) else {
        return;
    };
    let reply = {
        let mut st = state.lock().unwrap();
        st.log.push(req.clone());
        route(&mut st, &req)
    };
    let reason = match reply.status {
        200 => "OK",
        302 => "Found",
        206 => "Partial Content",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        _ => "Other",
    };
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", reply.status);
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !reply
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        head.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    if conn.write_all(head.as_bytes()).is_err() {
        return;
    }
    if req.method != "HEAD" {
        let body = match reply.cut_at {
            Some(n) => &reply.body[..n.min(reply.body.len())],
            None => &reply.body[..],
        };
        let _ = conn.write_all(body);
    }
    if reply.stall {
        let _ = conn.flush();
        std::thread::sleep(STALL);
    }
    let _ = conn.flush();
    let _ = conn.shutdown(Shutdown::Both);
}

fn route(st: &mut State, req: &Request) -> Reply {
    let path = req.path.split('?').next().unwrap_or("");
    if let Some(rest) = path.strip_prefix("/api/models/") {
        let Some((repo, rev)) = rest.split_once("/revision/") else {
            return Reply::error(404, "RepoNotFound");
        };
        let rev = decode(rev);
        if let Some(r) = check(st, repo, &rev, req) {
            return r;
        }
        let revision = &st.repos[repo][&rev];
        let siblings: Vec<String> = revision
            .files
            .keys()
            .map(|f| format!("{{\"rfilename\":\"{f}\"}}"))
            .collect();
        let sha = st.listing_sha.clone().unwrap_or(revision.commit.clone());
        let body = format!(
            "{{\"_id\":\"x\",\"id\":\"{repo}\",\"private\":false,\"sha\":{},\"siblings\":[{}]}}",
            serde_json::Value::String(sha),
            siblings.join(",")
        );
        return Reply {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.into_bytes(),
            cut_at: None,
            stall: false,
        };
    }
    let Some((repo, rest)) = path.trim_start_matches('/').split_once("/resolve/") else {
        return Reply::error(404, "RepoNotFound");
    };
    let Some((rev, file)) = rest.split_once('/') else {
        return Reply::error(404, "EntryNotFound");
    };
    let (rev, file) = (decode(rev), decode(file));
    if let Some(r) = check(st, repo, &rev, req) {
        return r;
    }
    let revision = &st.repos[repo][&rev];
    let Some(data) = revision.files.get(&file).cloned() else {
        return Reply::error(404, "EntryNotFound");
    };
    let commit = revision.commit.clone();
    let len = data.len();
    let mut headers = vec![
        ("X-Repo-Commit".to_string(), commit),
        ("ETag".into(), format!("\"{}\"", git_sha1_hex(&data))),
        ("Accept-Ranges".into(), "bytes".into()),
    ];
    if file.ends_with(".safetensors") {
        // As for LFS files on the hub: the linked etag is the SHA-256 of the content.
        headers.push(("X-Linked-Etag".into(), format!("\"{}\"", sha256_hex(&data))));
        headers.push(("X-Linked-Size".into(), len.to_string()));
    }
    if let Some(replaced) = st.headers.get(&file) {
        for (k, v) in replaced {
            headers.retain(|(name, _)| !name.eq_ignore_ascii_case(k));
            if !v.is_empty() {
                headers.push((k.clone(), v.clone()));
            }
        }
    }
    if let Some(location) = st.redirect.get(&file) {
        headers.extend(location.iter().map(|l| ("Location".to_string(), l.clone())));
        return Reply {
            status: 302,
            headers,
            body: Vec::new(),
            cut_at: None,
            stall: false,
        };
    }
    let mut served: Vec<u8> = data.as_ref().clone();
    if st.corrupt.contains(&file) && !served.is_empty() {
        let mid = served.len() / 2;
        served[mid] ^= 0xff;
    }
    let (status, body) = match req.range.as_deref().and_then(|r| r.strip_prefix("bytes=")) {
        None => (200, served),
        Some(r) => {
            let (a, b) = r.split_once('-').unwrap_or((r, ""));
            let start: usize = a.parse().unwrap_or(0);
            let end: usize = b
                .parse()
                .unwrap_or(len.saturating_sub(1))
                .min(len.saturating_sub(1));
            if start >= len || start > end {
                headers.push(("Content-Range".into(), format!("bytes */{len}")));
                return Reply {
                    status: 416,
                    headers,
                    body: Vec::new(),
                    cut_at: None,
                    stall: false,
                };
            }
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-range"))
            {
                headers.push(("Content-Range".into(), format!("bytes {start}-{end}/{len}")));
            }
            let mut body = served[start..=end].to_vec();
            if st.short_body.contains(&file) {
                body.truncate(body.len() / 2);
            }
            (206, body)
        }
    };
    let mut cut_at = None;
    let mut stall = false;
    if req.method == "GET" && st.stall_always.contains(&file) {
        cut_at = Some(0);
        stall = true;
    } else if req.method == "GET" {
        for (budgets, stalls) in [(&mut st.cut, false), (&mut st.stall, true)] {
            if let Some(budget) = budgets.get_mut(&file) {
                if body.len() > *budget {
                    cut_at = Some(*budget);
                    stall = stalls;
                    budgets.remove(&file);
                } else {
                    *budget -= body.len();
                }
            }
        }
    }
    Reply {
        status,
        headers,
        body,
        cut_at,
        stall,
    }
}

/// The hub's answers for a repository or revision that is not there, or not for this caller.
fn check(st: &State, repo: &str, rev: &str, req: &Request) -> Option<Reply> {
    let Some(revs) = st.repos.get(repo) else {
        return Some(Reply::error(401, "RepoNotFound"));
    };
    if let Some(token) = st.gated.get(repo) {
        if req.auth.as_deref() != Some(&format!("Bearer {token}")) {
            return Some(Reply::error(401, "GatedRepo"));
        }
    }
    if !revs.contains_key(rev) {
        return Some(Reply::error(404, "RevisionNotFound"));
    }
    None
}
