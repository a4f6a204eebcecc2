//! Checks on every value from a server (or the cache) that becomes part of a path: commit
//! hashes, etags (blob names), file names, sizes. Nothing else in `hub` builds a path from
//! such a value without passing it through here.

use std::path::{Component, Path};

/// A path inside a repository: relative, normalised, no `..`, no separators other than `/`,
/// nothing odd. File names become cache paths.
pub(super) fn is_plain_relative(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 1024
        && !name.contains('\\')
        && !name.chars().any(|c| c.is_control())
        && !name.starts_with('/')
        && name
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..")
        && Path::new(name)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// A commit as the user may name one when looking in the cache (abbreviations included).
pub(super) fn is_commit(s: &str) -> bool {
    (7..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// A full commit hash as the hub sends it: 40 lowercase hex digits. Only such a value names
/// a snapshot directory.
pub(super) fn is_full_commit(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What a file's content must hash to; its hex digest is also the name of its blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ContentHash {
    /// LFS files: the SHA-256 of the bytes.
    Sha256(String),
    /// Files stored in git: the git blob SHA-1 (of `blob <len>\0` and the bytes).
    GitSha1(String),
}

impl ContentHash {
    /// From an etag (quotes and a weak `W/` prefix allowed): 64 or 40 hex digits, nothing
    /// else, so the blob name can hold no separator, no `..` and no absolute path.
    pub(super) fn from_etag(etag: &str) -> Option<Self> {
        let v = etag.trim();
        let v = v.strip_prefix("W/").unwrap_or(v);
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        Self::from_blob_name(&v.to_ascii_lowercase())
    }

    /// From a blob's file name in the cache.
    pub(super) fn from_blob_name(name: &str) -> Option<Self> {
        let hex = name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        match name.len() {
            64 if hex => Some(ContentHash::Sha256(name.to_string())),
            40 if hex => Some(ContentHash::GitSha1(name.to_string())),
            _ => None,
        }
    }

    pub(super) fn hex(&self) -> &str {
        match self {
            ContentHash::Sha256(h) | ContentHash::GitSha1(h) => h,
        }
    }

    pub(super) fn kind(&self) -> &'static str {
        match self {
            ContentHash::Sha256(_) => "SHA-256",
            ContentHash::GitSha1(_) => "git SHA-1",
        }
    }
}

/// A byte count from a header: decimal digits only, within `u64`.
pub(super) fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim();
    if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// A server value as quoted in a message: at most 80 characters, escaped.
pub(super) fn shown(v: &str) -> String {
    let mut s: String = v.chars().take(80).collect();
    if s.len() < v.len() {
        s.push('…');
    }
    format!("{s:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn etags_name_blobs_only_when_they_are_hashes() {
        let sha = "a".repeat(64);
        assert_eq!(
            ContentHash::from_etag(&format!("\"{sha}\"")),
            Some(ContentHash::Sha256(sha.clone()))
        );
        let git = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            ContentHash::from_etag(&format!("W/\"{}\"", git.to_uppercase())),
            Some(ContentHash::GitSha1(git.into()))
        );
        for bad in [
            "\"/abs/path\"",
            "../../../x",
            "\"..\"",
            "",
            "\"\"",
            "abc",
            &format!("{sha}/x"),
            &format!("../{}", "a".repeat(37)),
        ] {
            assert_eq!(ContentHash::from_etag(bad), None, "{bad}");
        }
    }

    #[test]
    fn commits_and_file_names_are_checked() {
        assert!(is_full_commit("0123456789abcdef0123456789abcdef01234567"));
        for bad in [
            "../../x",
            "0123456789ABCDEF0123456789abcdef01234567",
            "abc",
            "",
        ] {
            assert!(!is_full_commit(bad), "{bad}");
        }
        for ok in ["config.json", "sub/model-1.safetensors"] {
            assert!(is_plain_relative(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a\\b",
            "a\nb",
            "a/",
        ] {
            assert!(!is_plain_relative(bad), "{bad:?}");
        }
        assert_eq!(parse_size("18446744073709551615"), Some(u64::MAX));
        for bad in ["18446744073709551616", "-1", "1e9", "", " ", "0x10"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Whatever a server sends, an accepted etag or file name stays inside its folder.
        #[test]
        fn accepted_server_values_never_leave_their_folder(v in ".{0,80}") {
            if let Some(h) = ContentHash::from_etag(&v) {
                prop_assert!(h.hex().bytes().all(|b| b.is_ascii_hexdigit()));
            }
            if is_plain_relative(&v) {
                let p = Path::new("/cache/snap").join(&v);
                prop_assert!(p.starts_with("/cache/snap/"));
                prop_assert!(!p.components().any(|c| c == Component::ParentDir));
            }
            let _ = parse_size(&v);
        }
    }
}
