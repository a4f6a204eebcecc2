//! One file from the hub: its metadata (commit, hash, size, checked before any byte is
//! written), its bytes in ranged chunks (resumable from the chunks already written, the part
//! file locked), the check against the hub's size and hash, and publication into the
//! snapshot. Only `hub::session` calls this.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::header::{HeaderMap, CONTENT_LENGTH, CONTENT_RANGE, ETAG};
use reqwest::{Method, Url};

use super::cache::{free_bytes, RepoCache};
use super::http::{Follow, Hub, SendError};
use super::names::{is_full_commit, parse_size, shown, ContentHash};
use super::session::{runtime, Session};
use super::verify::check_file;
use super::HubError;

/// No single model file is this large; a size above it is a lie.
pub(super) const MAX_FILE_BYTES: u64 = 1 << 40;

/// What the hub says about one file.
#[derive(Debug, Clone)]
pub(super) struct FileMeta {
    pub commit: String,
    pub hash: ContentHash,
    pub size: u64,
    /// Where the bytes are fetched from (the hub, or the CDN it redirects to).
    pub url: Url,
}

/// Why one try failed.
pub(super) enum Failure {
    /// The connection dropped, stalled or the server erred: try again (it resumes).
    Retry(String),
    /// The server's answer is wrong or refused: trying again will not help.
    Fatal(HubError),
    /// An HTTP status other than success, for the caller to explain.
    Status(u16, Option<String>),
}

impl From<SendError> for Failure {
    fn from(e: SendError) -> Self {
        match e {
            SendError::Transport(why) => Failure::Retry(why),
            SendError::Protocol(why) => Failure::Fatal(HubError::Other(why)),
        }
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The hub's metadata for `file`, every value checked before it is used in a path or a size.
pub(super) async fn metadata(
    hub: &Hub,
    repo: &str,
    revision: &str,
    file: &str,
    timeout: Duration,
) -> Result<FileMeta, Failure> {
    let url = hub.url(
        repo.split('/')
            .chain(["resolve", revision])
            .chain(file.split('/')),
    );
    let response = hub
        .send(Method::HEAD, url, None, Follow::SameOrigin, Some(timeout))
        .await?;
    let status = response.status();
    let headers = response.headers();
    let bad = |what: String| {
        Failure::Fatal(HubError::Other(format!(
            "{} did not answer like a Hugging Face hub for {file}: {what}",
            hub.endpoint.origin().ascii_serialization()
        )))
    };
    let url = if status.is_redirection() {
        // To another origin (a CDN): the hub's headers are on this answer.
        let location = header(headers, "location").unwrap_or_default();
        response
            .url()
            .join(location)
            .map_err(|_| bad("a bad Location".into()))?
    } else if status.is_success() {
        response.url().clone()
    } else if status.is_server_error() {
        return Err(Failure::Retry(format!("server error {status}")));
    } else {
        return Err(Failure::Status(
            status.as_u16(),
            header(headers, "x-error-code").map(str::to_string),
        ));
    };
    let commit =
        header(headers, "x-repo-commit").ok_or_else(|| bad("no X-Repo-Commit header".into()))?;
    if !is_full_commit(commit) {
        return Err(bad(format!(
            "X-Repo-Commit {} is not a commit hash (40 hex digits)",
            shown(commit)
        )));
    }
    let etag = header(headers, "x-linked-etag")
        .or_else(|| header(headers, ETAG.as_str()))
        .ok_or_else(|| bad("no ETag header".into()))?;
    let hash = ContentHash::from_etag(etag).ok_or_else(|| {
        bad(format!(
            "its ETag {} is not a content hash (64 or 40 hex digits)",
            shown(etag)
        ))
    })?;
    // A redirect's own Content-Length is that of its (empty) body, not the file's.
    let own_length = (!status.is_redirection())
        .then(|| header(headers, CONTENT_LENGTH.as_str()))
        .flatten();
    let size_text = header(headers, "x-linked-size")
        .or(own_length)
        .ok_or_else(|| bad("no size (X-Linked-Size, or Content-Length of the file)".into()))?;
    let size = parse_size(size_text)
        .ok_or_else(|| bad(format!("its size {} is not a byte count", shown(size_text))))?;
    if size > MAX_FILE_BYTES {
        return Err(Failure::Fatal(HubError::Other(format!(
            "{} gives {file} a size of {size} bytes, more than any model file \
             ({MAX_FILE_BYTES}); refusing it",
            hub.endpoint.origin().ascii_serialization()
        ))));
    }
    Ok(FileMeta {
        commit: commit.to_string(),
        hash,
        size,
        url,
    })
}

/// One attempt at the bytes of `meta` into `part` (already locked by the caller), starting
/// after the `committed` bytes known to be written. Chunks are fetched `parallel` at a time;
/// `progress` is rewritten with the count of leading bytes written, and `received` counts
/// every byte as it arrives. Returns when every byte is in `part`, synced.
#[allow(clippy::too_many_arguments)]
pub(super) async fn fetch_bytes(
    hub: &Hub,
    file: &str,
    meta: &FileMeta,
    part: &File,
    progress: &Path,
    committed: u64,
    chunk_size: u64,
    parallel: usize,
    received: &AtomicU64,
) -> Result<(), Failure> {
    let chunk_size = chunk_size.max(1);
    let starts: Vec<u64> = (committed..meta.size)
        .step_by(chunk_size as usize)
        .collect();
    let mut done = std::collections::BTreeSet::new();
    let mut prefix = committed;
    let mut chunks = futures::stream::iter(starts.into_iter().map(|start| {
        let end = start.saturating_add(chunk_size).min(meta.size) - 1;
        async move {
            fetch_chunk(hub, file, meta, part, start, end, received)
                .await
                .map(|()| (start, end))
        }
    }))
    .buffer_unordered(parallel.max(1));
    while let Some(result) = chunks.next().await {
        let (start, end) = result?;
        done.insert((start, end));
        // Only the contiguous prefix counts as written: a resume starts after it.
        while let Some(&(s, e)) = done.first() {
            if s != prefix {
                break;
            }
            done.pop_first();
            prefix = e + 1;
        }
        if let Err(e) = std::fs::write(progress, prefix.to_string()) {
            tracing::debug!("cannot note the download's progress: {e}");
        }
    }
    part.sync_all().map_err(|e| {
        Failure::Fatal(HubError::Other(format!(
            "writing {file} into the cache: {e}"
        )))
    })
}

async fn fetch_chunk(
    hub: &Hub,
    file: &str,
    meta: &FileMeta,
    part: &File,
    start: u64,
    end: u64,
    received: &AtomicU64,
) -> Result<(), Failure> {
    let mut response = hub
        .send(
            Method::GET,
            meta.url.clone(),
            Some((start, end)),
            Follow::All,
            None,
        )
        .await?;
    let status = response.status();
    let origin = response.url().origin().ascii_serialization();
    let refuse = |what: String| {
        Failure::Fatal(HubError::Other(format!(
            "{origin} {what} for {file}; refusing it"
        )))
    };
    match status.as_u16() {
        206 => {
            let range = header(response.headers(), CONTENT_RANGE.as_str()).unwrap_or_default();
            let expected = format!("bytes {start}-{end}/{}", meta.size);
            if range != expected {
                return Err(refuse(format!(
                    "sent Content-Range {} where {expected:?} was asked",
                    shown(range)
                )));
            }
        }
        200 if start == 0 && end + 1 == meta.size => {}
        200 => return Err(refuse("does not serve byte ranges".into())),
        // The file is shorter than the size the hub gave: it lied about one of the two.
        416 => {
            return Err(refuse(format!(
                "cannot serve bytes {start}-{end} of the {} bytes it said the file has (HTTP 416)",
                meta.size
            )))
        }
        s if status.is_server_error() => return Err(Failure::Retry(format!("server error {s}"))),
        s => {
            let code = header(response.headers(), "x-error-code").map(str::to_string);
            return Err(Failure::Status(s, code));
        }
    }
    let want = end - start + 1;
    let mut got: u64 = 0;
    loop {
        let piece = response
            .chunk()
            .await
            .map_err(|e| Failure::Retry(super::http::root_cause(&e)))?;
        let Some(piece) = piece else { break };
        let n = piece.len() as u64;
        if got.checked_add(n).is_none_or(|total| total > want) {
            return Err(refuse(format!("sent more than the {want} bytes asked")));
        }
        write_at(part, &piece, start + got).map_err(|e| {
            Failure::Fatal(HubError::Other(format!(
                "writing {file} into the cache: {e}"
            )))
        })?;
        got += n;
        received.fetch_add(n, Ordering::Relaxed);
    }
    if got < want {
        // A short body is never padded: the chunk is fetched again.
        return Err(Failure::Retry(format!(
            "the connection ended after {got} of {want} bytes"
        )));
    }
    Ok(())
}

#[cfg(unix)]
fn write_at(file: &File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

#[cfg(windows)]
fn write_at(file: &File, mut bytes: &[u8], mut offset: u64) -> std::io::Result<()> {
    while !bytes.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_write(file, bytes, offset)?;
        bytes = &bytes[n..];
        offset += n as u64;
    }
    Ok(())
}

/// Runs `work`, calling `report` with the bytes received every 100 ms; `None` when nothing
/// arrived for `stall` (the work is then dropped, with the requests it made). `last_byte`
/// is moved on whenever bytes arrive.
pub(super) async fn watch<T>(
    work: impl std::future::Future<Output = T>,
    received: &AtomicU64,
    report: &dyn Fn(u64),
    stall: Duration,
    last_byte: &mut Instant,
) -> Option<T> {
    tokio::pin!(work);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = 0;
    let mut last_change = Instant::now();
    loop {
        tokio::select! {
            out = &mut work => {
                if received.load(Ordering::Relaxed) != last {
                    *last_byte = Instant::now();
                }
                return Some(out);
            }
            _ = tick.tick() => {
                let now = received.load(Ordering::Relaxed);
                if now != last {
                    last = now;
                    last_change = Instant::now();
                    *last_byte = last_change;
                    report(now);
                } else if last_change.elapsed() > stall {
                    return None;
                }
            }
        }
    }
}

impl Session<'_> {
    /// Downloads into the part file, checks it against the hub's size and hash, then
    /// publishes it; a part that fails the check is deleted.
    pub(super) fn download(
        &self,
        hub: &Hub,
        cache: &RepoCache,
        snapshot: &Path,
        name: &str,
        meta: &FileMeta,
        report: &dyn Fn(u64, u64),
    ) -> Result<(), HubError> {
        let part_path = cache.part(&meta.hash);
        let progress_path = cache.part_progress(&meta.hash);
        if let Some(dir) = part_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| self.cache_error(name, e))?;
        }
        let part = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&part_path)
            .map_err(|e| self.cache_error(name, e))?;
        lock(&part).map_err(|_| {
            HubError::Other(format!(
                "another process is downloading {name} (into {}); wait for it to finish",
                part_path.display()
            ))
        })?;
        let committed = self
            .committed(&part, &progress_path, meta.size)
            .map_err(|e| self.cache_error(name, e))?;
        self.check_space(name, meta.size - committed)?;
        self.with_retries(name, &mut Instant::now(), |last_byte| {
            let committed = self
                .committed(&part, &progress_path, meta.size)
                .map_err(|e| Failure::Fatal(self.cache_error(name, e)))?;
            report(committed, meta.size);
            let rt = runtime().map_err(Failure::Fatal)?;
            let received = AtomicU64::new(0);
            let work = fetch_bytes(
                hub,
                name,
                meta,
                &part,
                &progress_path,
                committed,
                self.opts.chunk_size as u64,
                self.opts.parallel,
                &received,
            );
            let stall = self.opts.stall_timeout.min(self.opts.max_idle);
            let at = |n: u64| report(committed.saturating_add(n), meta.size);
            match rt.block_on(watch(work, &received, &at, stall, last_byte)) {
                Some(r) => r,
                None => Err(Failure::Retry(format!("nothing received for {stall:?}"))),
            }
        })?;
        if let Err(m) = check_file(&part_path, &meta.hash, Some(meta.size)) {
            // Not what the hub promised: never published; the next run starts over.
            let _ = part.set_len(0);
            let _ = std::fs::remove_file(&progress_path);
            let _ = std::fs::remove_file(&part_path);
            return Err(HubError::Download {
                repo: self.repo.into(),
                file: name.into(),
                message: format!(
                    "the downloaded file is corrupt ({m}); it was deleted, run again to \
                     download it anew"
                ),
            });
        }
        cache
            .publish(&part_path, &meta.hash, snapshot, name)
            .map_err(|e| self.cache_error(name, e))?;
        report(meta.size, meta.size);
        Ok(())
    }

    /// The leading bytes of the part known to be written, no more than the part holds or the
    /// file has; the part is cut back to them (which never grows it).
    fn committed(&self, part: &std::fs::File, progress: &Path, size: u64) -> std::io::Result<u64> {
        let noted = std::fs::read_to_string(progress)
            .ok()
            .and_then(|t| parse_size(&t))
            .unwrap_or(0);
        let have = part.metadata()?.len();
        let committed = noted.min(have).min(size);
        if have != committed {
            part.set_len(committed)?;
        }
        Ok(committed)
    }

    /// Refuses a download the disk cannot hold, naming both numbers.
    fn check_space(&self, name: &str, needed: u64) -> Result<(), HubError> {
        match free_bytes(&self.opts.cache_dir) {
            Some(free) if free < needed => Err(HubError::Other(format!(
                "{name} needs {needed} more bytes but only {free} are free in {}; refusing to start",
                self.opts.cache_dir.display()
            ))),
            _ => Ok(()),
        }
    }
}

/// Takes the part file for this process alone (released when it is closed).
#[cfg(unix)]
fn lock(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: a valid open descriptor; flock has no other preconditions.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(unix))]
fn lock(_file: &std::fs::File) -> std::io::Result<()> {
    Ok(())
}
