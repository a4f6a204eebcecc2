//! Which files make a checkpoint, and how a model directory's files are opened without trusting
//! them. This is the one place that knows the weight file names and their precedence
//! ([`plan`]), and how a shard index is parsed into shard names that stay inside the model
//! directory ([`shard_names`]). The weight loader uses it on a directory; the hub uses the same
//! two functions on a repository's file listing and on a downloaded index's bytes. Small files
//! this crate writes (the hub's refs, the kept kernel choices) are published whole through
//! [`write_atomic`].

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::ModelError;

pub const CONFIG: &str = "config.json";
pub const TOKENIZER: &str = "tokenizer.json";
pub const ST_SINGLE: &str = "model.safetensors";
pub const ST_INDEX: &str = "model.safetensors.index.json";
pub const PT_SINGLE: &str = "pytorch_model.bin";
pub const PT_INDEX: &str = "pytorch_model.bin.index.json";

/// A shard index of a 7B model is about 25 KB; anything near this is not an index.
pub const MAX_INDEX_BYTES: u64 = 64 << 20;
/// Longest shard name accepted (the usual `PATH_MAX`), and longest path component (`NAME_MAX`).
const MAX_NAME_BYTES: usize = 4096;
const MAX_COMPONENT_BYTES: usize = 255;
/// Longest name or message fragment quoted in an error.
const SHOWN_CHARS: usize = 120;

/// How a checkpoint's weights are stored, chosen by [`plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeightPlan {
    /// A shard index; the shards are named inside it.
    Index(String),
    Single(String),
}

impl WeightPlan {
    pub fn name(&self) -> &str {
        match self {
            WeightPlan::Index(n) | WeightPlan::Single(n) => n,
        }
    }

    /// Safetensors (memory-mapped) rather than PyTorch pickles.
    pub fn is_safetensors(&self) -> bool {
        self.name().starts_with("model.safetensors")
    }
}

/// Picks the weight files among the file names a checkpoint has, as transformers does:
/// safetensors before PyTorch pickles, an index before a single file.
pub fn plan<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<WeightPlan> {
    let names: std::collections::BTreeSet<&str> = names.into_iter().collect();
    [ST_INDEX, ST_SINGLE, PT_INDEX, PT_SINGLE]
        .into_iter()
        .find(|n| names.contains(n))
        .map(|n| {
            if n.ends_with(".index.json") {
                WeightPlan::Index(n.to_string())
            } else {
                WeightPlan::Single(n.to_string())
            }
        })
}

#[derive(serde::Deserialize)]
struct ShardIndex {
    weight_map: std::collections::BTreeMap<String, String>,
}

/// The shard files a shard index's bytes name, each once, in name order; every name is a plain
/// relative path inside the checkpoint's directory (see [`check_shard_name`]).
pub fn shard_names(index: &[u8]) -> Result<Vec<String>, String> {
    let parsed: ShardIndex = serde_json::from_slice(index)
        .map_err(|e| format!("not a valid shard index: {}", shown(&e.to_string())))?;
    let names: std::collections::BTreeSet<String> = parsed.weight_map.into_values().collect();
    if names.is_empty() {
        return Err("not a valid shard index: its weight_map names no shard".into());
    }
    for n in &names {
        check_shard_name(n)?;
    }
    Ok(names.into_iter().collect())
}

/// Refuses a shard name that could reach outside the checkpoint's directory: absolute, with
/// `..` or `.`, with a backslash or a control character, empty, or longer than a path may be.
pub fn check_shard_name(name: &str) -> Result<(), String> {
    let outside = || {
        format!(
            "it names a shard outside the model directory: {:?}",
            shown(name)
        )
    };
    if name.is_empty() {
        return Err("it names a shard with an empty name".into());
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "it names a shard with a name of {} bytes: {:?}",
            name.len(),
            shown(name)
        ));
    }
    if name.contains('\\') || name.chars().any(char::is_control) {
        return Err(outside());
    }
    for c in Path::new(name).components() {
        match c {
            Component::Normal(part) if part.len() <= MAX_COMPONENT_BYTES => {}
            Component::Normal(_) => {
                return Err(format!(
                    "it names a shard with a path part over {MAX_COMPONENT_BYTES} bytes: {:?}",
                    shown(name)
                ))
            }
            _ => return Err(outside()),
        }
    }
    Ok(())
}

/// `s` as quoted in a message: at most [`SHOWN_CHARS`] characters, with the full length said
/// when it is cut.
pub fn shown(s: &str) -> String {
    match s.char_indices().nth(SHOWN_CHARS) {
        None => s.to_string(),
        Some((cut, _)) => format!("{}… ({} bytes in all)", &s[..cut], s.len()),
    }
}

/// What is at a path, following symbolic links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File,
    Absent,
    Directory,
    Fifo,
    Socket,
    Device,
    SymlinkLoop,
    /// A symbolic link to nothing.
    Dangling,
    /// It exists but cannot be examined (the error).
    Unreadable(String),
}

impl Kind {
    pub fn of(path: &Path) -> Kind {
        use std::io::ErrorKind;
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == ErrorKind::NotFound => return Kind::Absent,
            Err(e) => return Kind::Unreadable(e.to_string()),
            Ok(_) => {}
        }
        match std::fs::metadata(path) {
            Ok(m) => Self::of_type(m.file_type()),
            Err(e) if is_loop(&e) => Kind::SymlinkLoop,
            Err(e) if e.kind() == ErrorKind::NotFound => Kind::Dangling,
            Err(e) => Kind::Unreadable(e.to_string()),
        }
    }

    fn of_type(t: std::fs::FileType) -> Kind {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if t.is_fifo() {
                return Kind::Fifo;
            }
            if t.is_socket() {
                return Kind::Socket;
            }
            if t.is_block_device() || t.is_char_device() {
                return Kind::Device;
            }
        }
        if t.is_dir() {
            Kind::Directory
        } else if t.is_file() {
            Kind::File
        } else {
            Kind::Unreadable("an unknown kind of file".into())
        }
    }

    /// "a directory", "a named pipe (FIFO)", ... as the end of "X is ...".
    pub fn describe(&self) -> String {
        match self {
            Kind::File => "a file".into(),
            Kind::Absent => "absent".into(),
            Kind::Directory => "a directory".into(),
            Kind::Fifo => "a named pipe (FIFO)".into(),
            Kind::Socket => "a socket".into(),
            Kind::Device => "a device".into(),
            Kind::SymlinkLoop => "a symbolic link that loops".into(),
            Kind::Dangling => "a symbolic link to nothing".into(),
            Kind::Unreadable(e) => format!("unreadable ({e})"),
        }
    }
}

fn is_loop(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        e.raw_os_error() == Some(libc::ELOOP)
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// `path` when it is a regular file (through symbolic links); otherwise why not, naming `what`.
pub fn require_file(path: &Path, what: &str) -> Result<PathBuf, ModelError> {
    match Kind::of(path) {
        Kind::File => Ok(path.to_path_buf()),
        Kind::Absent => Err(ModelError::MissingFile {
            path: path.to_path_buf(),
            what: what.into(),
        }),
        other => Err(ModelError::NotAFile {
            path: path.to_path_buf(),
            what: what.into(),
            kind: other.describe(),
        }),
    }
}

/// Opens a regular file for reading. A FIFO or device is refused without blocking on it: the
/// file is opened non-blocking and examined before anything is read.
pub fn open_regular(path: &Path, what: &str) -> Result<File, ModelError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            match Kind::of(path) {
                Kind::Absent => ModelError::MissingFile {
                    path: path.to_path_buf(),
                    what: what.into(),
                },
                other => ModelError::NotAFile {
                    path: path.to_path_buf(),
                    what: what.into(),
                    kind: other.describe(),
                },
            }
        } else if is_loop(&e) {
            ModelError::NotAFile {
                path: path.to_path_buf(),
                what: what.into(),
                kind: Kind::SymlinkLoop.describe(),
            }
        } else {
            ModelError::io(path, e)
        }
    })?;
    let meta = file.metadata().map_err(|e| ModelError::io(path, e))?;
    let kind = Kind::of_type(meta.file_type());
    if kind != Kind::File {
        return Err(ModelError::NotAFile {
            path: path.to_path_buf(),
            what: what.into(),
            kind: kind.describe(),
        });
    }
    Ok(file)
}

/// The bytes of a small regular file (a config or an index), refused above `cap` bytes.
pub fn read_small(path: &Path, cap: u64, what: &str) -> Result<Vec<u8>, ModelError> {
    let file = open_regular(path, what)?;
    let len = file.metadata().map_err(|e| ModelError::io(path, e))?.len();
    let too_big = |len: u64| ModelError::Checkpoint {
        path: path.to_path_buf(),
        message: format!("{what} is {len} bytes; more than {cap} bytes is not a {what}"),
    };
    if len > cap {
        return Err(too_big(len));
    }
    // The size can change under us: never read more than the cap.
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ModelError::io(path, e))?;
    if bytes.len() as u64 > cap {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// The weight files a model directory holds, chosen by [`plan`] among the names present, each
/// checked to be a regular file, with index shards validated and required.
pub fn weight_paths(dir: &Path) -> Result<(WeightPlan, Vec<PathBuf>), ModelError> {
    let present: Vec<&str> = [ST_INDEX, ST_SINGLE, PT_INDEX, PT_SINGLE]
        .into_iter()
        .filter(|n| Kind::of(&dir.join(n)) != Kind::Absent)
        .collect();
    let Some(plan) = plan(present) else {
        return Err(ModelError::MissingFile {
            path: dir.to_path_buf(),
            what: format!(
                "weights: none of {ST_SINGLE}, {ST_INDEX}, {PT_SINGLE} or {PT_INDEX} is there"
            ),
        });
    };
    let chosen = require_file(&dir.join(plan.name()), "the weights")?;
    let paths = match &plan {
        WeightPlan::Single(_) => vec![chosen],
        WeightPlan::Index(_) => {
            let bytes = read_small(&chosen, MAX_INDEX_BYTES, "shard index")?;
            let names = shard_names(&bytes).map_err(|message| ModelError::Checkpoint {
                path: chosen.clone(),
                message,
            })?;
            let what = format!("a weight shard named by {}", chosen.display());
            names
                .iter()
                .map(|n| require_file(&dir.join(n), &what))
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    Ok((plan, paths))
}

/// A name beside `path` that no other writer uses.
pub fn unique_sibling(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.{n}.{nanos}.tmp", std::process::id()))
}

/// Writes `bytes` to `path` whole or not at all: a unique temporary file, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = unique_sibling(path);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
