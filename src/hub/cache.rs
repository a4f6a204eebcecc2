//! The hub cache on disk, in the layout huggingface_hub and transformers share:
//! `models--owner--name/{blobs/<hash>, snapshots/<commit>/<file> -> ../../blobs/<hash>,
//! refs/<revision>}`. Every path here is built from names checked in `names`; files are
//! published only whole (temporary name, fsync, rename). Only `hub` calls this.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::model::files::{unique_sibling, write_atomic};

use super::names::{is_commit, is_full_commit, ContentHash};
use super::verify;

/// One repository's folder in the cache.
pub(super) struct RepoCache {
    pub dir: PathBuf,
}

impl RepoCache {
    pub fn blob(&self, hash: &ContentHash) -> PathBuf {
        self.dir.join("blobs").join(hash.hex())
    }

    /// The bytes of a download in progress.
    pub fn part(&self, hash: &ContentHash) -> PathBuf {
        self.dir
            .join("blobs")
            .join(format!("{}.sync.part", hash.hex()))
    }

    /// How many leading bytes of the part are known to be written.
    pub fn part_progress(&self, hash: &ContentHash) -> PathBuf {
        self.dir
            .join("blobs")
            .join(format!("{}.sync.progress", hash.hex()))
    }

    /// `commit` must have passed `is_full_commit`.
    pub fn snapshot(&self, commit: &str) -> PathBuf {
        debug_assert!(is_full_commit(commit));
        self.dir.join("snapshots").join(commit)
    }

    /// Moves a checked part into `blobs/` and links `name` of the snapshot to it.
    pub fn publish(
        &self,
        part: &Path,
        hash: &ContentHash,
        snapshot: &Path,
        name: &str,
    ) -> std::io::Result<PathBuf> {
        let blob = self.blob(hash);
        std::fs::rename(part, &blob)?;
        let _ = std::fs::remove_file(self.part_progress(hash));
        verify::stamp(&self.dir, hash, &blob);
        self.link(snapshot, name, hash)?;
        Ok(blob)
    }

    /// Points `snapshot/name` at the blob, replacing whatever was there in one step.
    pub fn link(&self, snapshot: &Path, name: &str, hash: &ContentHash) -> std::io::Result<()> {
        let entry = snapshot.join(name);
        let dir = entry.parent().unwrap_or(snapshot);
        std::fs::create_dir_all(dir)?;
        let target = relative_blob_target(name, hash);
        let tmp = unique_sibling(&entry);
        make_link(&target, &self.blob(hash), &tmp)?;
        std::fs::rename(&tmp, &entry).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }

    /// Records which commit `revision` is, for offline runs.
    pub fn write_ref(&self, revision: &str, commit: &str) -> std::io::Result<()> {
        write_atomic(&self.dir.join("refs").join(revision), commit.as_bytes())
    }

    /// What `snapshot/name` is: absent, a plain file, a link to one of this cache's blobs,
    /// or a link elsewhere.
    pub fn entry(&self, snapshot: &Path, name: &str) -> Entry {
        let path = snapshot.join(name);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            return Entry::Missing;
        };
        if !meta.file_type().is_symlink() {
            return if meta.is_file() {
                Entry::Plain
            } else {
                Entry::Foreign("not a file".into())
            };
        }
        let Ok(target) = std::fs::read_link(&path) else {
            return Entry::Missing;
        };
        let hash = target
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(ContentHash::from_blob_name);
        match hash {
            Some(hash)
                if target == Path::new(&relative_blob_target(name, &hash))
                    || target == self.blob(&hash) =>
            {
                Entry::Blob(hash)
            }
            _ => Entry::Foreign(format!("a link to {}", target.display())),
        }
    }

    /// Checks a snapshot entry against its blob's name (hashing it unless it was checked
    /// before, unchanged). A plain file cannot be checked and is taken as it is.
    pub fn check_entry(&self, snapshot: &Path, name: &str) -> Result<(), String> {
        match self.entry(snapshot, name) {
            Entry::Missing => Err("it is missing".into()),
            Entry::Plain => Ok(()),
            Entry::Foreign(what) => Err(format!("it is {what}, not a blob of this cache")),
            Entry::Blob(hash) => {
                let blob = self.blob(&hash);
                if verify::is_stamped(&self.dir, &hash, &blob) {
                    return Ok(());
                }
                tracing::info!("checking the cached {name} ({})", blob.display());
                verify::check_file(&blob, &hash, None).map_err(|m| match m {
                    verify::Mismatch::Io(e) => {
                        format!("its blob {} cannot be read: {e}", blob.display())
                    }
                    m => format!("its blob {} is corrupt ({m})", blob.display()),
                })?;
                verify::stamp(&self.dir, &hash, &blob);
                Ok(())
            }
        }
    }
}

pub(super) enum Entry {
    Missing,
    Plain,
    Blob(ContentHash),
    Foreign(String),
}

/// `../../blobs/<hash>` from `snapshots/<commit>/`, one more `../` per folder in `name`.
fn relative_blob_target(name: &str, hash: &ContentHash) -> String {
    let depth = name.split('/').count() - 1;
    format!("{}../../blobs/{}", "../".repeat(depth), hash.hex())
}

#[cfg(unix)]
fn make_link(target: &str, _blob: &Path, at: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, at)
}

/// Where links need privileges, the snapshot holds a copy (as huggingface_hub does there).
#[cfg(not(unix))]
fn make_link(_target: &str, blob: &Path, at: &Path) -> std::io::Result<()> {
    std::fs::copy(blob, at).map(|_| ())
}

/// The snapshot a revision points to in a repository's cache folder: `refs/<revision>`, or the
/// revision itself when it is a commit with a snapshot.
pub fn cached_snapshot(repo_dir: &Path, revision: &str) -> Option<(String, PathBuf)> {
    if let Some(commit) = read_ref(&repo_dir.join("refs").join(revision)) {
        let dir = repo_dir.join("snapshots").join(&commit);
        if dir.is_dir() {
            return Some((commit, dir));
        }
    }
    let dir = repo_dir.join("snapshots").join(revision);
    (is_commit(revision) && dir.is_dir()).then(|| (revision.to_string(), dir))
}

/// A ref file's commit: read no further than a commit can be long, and only a commit counts.
fn read_ref(path: &Path) -> Option<String> {
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(128)
        .read_to_string(&mut text)
        .ok()?;
    let commit = text.trim();
    is_full_commit(commit).then(|| commit.to_string())
}

/// Bytes free for an unprivileged writer on the file system holding `dir` (or the nearest
/// folder above it that exists).
#[cfg(unix)]
pub(super) fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let existing = dir.ancestors().find(|d| d.is_dir())?;
    let c = std::ffi::CString::new(existing.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    (st.f_bavail as u64).checked_mul(st.f_frsize as u64)
}

#[cfg(not(unix))]
pub(super) fn free_bytes(_dir: &Path) -> Option<u64> {
    None
}
