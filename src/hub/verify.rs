//! Checking a file's bytes against the size and hash the hub gave, and remembering (in the
//! repository's cache folder) which blobs were checked so a large model is hashed once.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::names::ContentHash;

/// Why a file's bytes are not what the hub said.
#[derive(Debug)]
pub(super) enum Mismatch {
    Size {
        found: u64,
        expected: u64,
    },
    Hash {
        kind: &'static str,
        found: String,
        expected: String,
    },
    Io(std::io::Error),
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::Size { found, expected } => {
                write!(f, "{found} bytes where the hub gave {expected}")
            }
            Mismatch::Hash {
                kind,
                found,
                expected,
            } => write!(f, "{kind} {found}, expected {expected}"),
            Mismatch::Io(e) => write!(f, "cannot read it: {e}"),
        }
    }
}

/// Hashes `path` as `hash` requires and compares; `size`, when known, is checked first.
pub(super) fn check_file(
    path: &Path,
    hash: &ContentHash,
    size: Option<u64>,
) -> Result<(), Mismatch> {
    let mut file = std::fs::File::open(path).map_err(Mismatch::Io)?;
    let len = file.metadata().map_err(Mismatch::Io)?.len();
    if let Some(expected) = size {
        if len != expected {
            return Err(Mismatch::Size {
                found: len,
                expected,
            });
        }
    }
    let found = match hash {
        ContentHash::Sha256(_) => digest_reader::<Sha256>(&mut file, None),
        ContentHash::GitSha1(_) => {
            digest_reader::<Sha1>(&mut file, Some(format!("blob {len}\0").as_bytes()))
        }
    }
    .map_err(Mismatch::Io)?;
    if found == hash.hex() {
        Ok(())
    } else {
        Err(Mismatch::Hash {
            kind: hash.kind(),
            found,
            expected: hash.hex().to_string(),
        })
    }
}

fn digest_reader<D: Digest>(r: &mut impl Read, prefix: Option<&[u8]>) -> std::io::Result<String> {
    let mut hasher = D::new();
    if let Some(p) = prefix {
        hasher.update(p);
    }
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Where the stamp of a checked blob lives: `<repo>/.dpa-verified/<blob name>`.
fn stamp_path(repo_dir: &Path, hash: &ContentHash) -> PathBuf {
    repo_dir.join(".dpa-verified").join(hash.hex())
}

/// The blob's length and modification time: a stamp holds them, so a blob changed (or
/// replaced) after its check is checked again.
fn fingerprint(blob: &Path) -> Option<String> {
    let meta = std::fs::metadata(blob).ok()?;
    let mtime = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some(format!("{} {}", meta.len(), mtime.as_nanos()))
}

/// Whether `blob` was checked as it is now.
pub(super) fn is_stamped(repo_dir: &Path, hash: &ContentHash, blob: &Path) -> bool {
    match (
        std::fs::read_to_string(stamp_path(repo_dir, hash)),
        fingerprint(blob),
    ) {
        (Ok(stamp), Some(now)) => stamp == now,
        _ => false,
    }
}

/// Records that `blob` was checked. A failure only costs a later re-check.
pub(super) fn stamp(repo_dir: &Path, hash: &ContentHash, blob: &Path) {
    let Some(now) = fingerprint(blob) else {
        return;
    };
    let path = stamp_path(repo_dir, hash);
    if let Err(e) = crate::model::files::write_atomic(&path, now.as_bytes()) {
        tracing::debug!("cannot record the check of {}: {e}", blob.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_blobs_and_lfs_files_are_hashed_as_the_hub_hashes_them() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x");
        std::fs::write(&f, b"hello\n").unwrap();
        // `git hash-object` of "hello\n".
        let git = ContentHash::GitSha1("ce013625030ba8dba906f756967f9e9ca394464a".into());
        check_file(&f, &git, Some(6)).unwrap();
        let sha = ContentHash::Sha256(
            "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03".into(),
        );
        check_file(&f, &sha, None).unwrap();
        let e = check_file(&f, &sha, Some(7)).unwrap_err().to_string();
        assert_eq!(e, "6 bytes where the hub gave 7");
        std::fs::write(&f, b"hellO\n").unwrap();
        let e = check_file(&f, &git, None).unwrap_err().to_string();
        assert!(e.starts_with("git SHA-1 "), "{e}");
    }
}
