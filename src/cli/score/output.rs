//! Where `score` writes: standard output, or `--output FILE` through a temporary file beside
//! it that replaces it only when the run completes, so a failed run never truncates an
//! existing file. Used by `score` only.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;

/// Whether two paths name one file (device and inode, through symlinks and hard links).
/// False when either does not exist.
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => same_inode(&a, &b),
        _ => false,
    }
}

#[cfg(unix)]
fn same_inode(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_inode(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    false
}

/// Whether standard input is read from the file at `path` (`< file`).
pub fn stdin_is(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        let Ok(fd) = io::stdin().as_fd().try_clone_to_owned() else {
            return false;
        };
        match (File::from(fd).metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => same_inode(&a, &b),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// The results' destination.
pub enum Output {
    Stdout(BufWriter<io::StdoutLock<'static>>),
    /// Written in place: a FIFO or a device (`/dev/null`), which cannot be replaced.
    Direct(BufWriter<File>),
    File(AtomicFile),
    /// `--resume`: appended to as the run goes, synced after every window.
    Journal(BufWriter<File>),
}

impl Output {
    /// Standard output, or a temporary file beside `path` (created now, so that a directory
    /// that cannot be written fails before the model loads).
    pub fn open(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Output::Stdout(BufWriter::new(io::stdout().lock())));
        };
        match std::fs::metadata(path) {
            Ok(m) if !m.is_file() && !m.is_dir() => {
                let f = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .with_context(|| format!("opening {}", path.display()))?;
                Ok(Output::Direct(BufWriter::new(f)))
            }
            Ok(m) if m.is_dir() => anyhow::bail!("--output {} is a directory", path.display()),
            _ => Ok(Output::File(AtomicFile::create(path)?)),
        }
    }

    pub fn writer(&mut self) -> &mut dyn Write {
        match self {
            Output::Stdout(w) => w,
            Output::Direct(w) => w,
            Output::File(f) => &mut f.writer,
            Output::Journal(w) => w,
        }
    }

    /// The end of a window: a journal makes its lines durable.
    pub fn checkpoint(&mut self) -> io::Result<()> {
        match self {
            Output::Journal(w) => super::resume::sync(w),
            other => other.writer().flush(),
        }
    }

    /// Ends the run: flushes, and puts a file in its place.
    pub fn finish(self) -> anyhow::Result<()> {
        match self {
            Output::Stdout(mut w) => Ok(w.flush()?),
            Output::Direct(mut w) => Ok(w.flush()?),
            Output::File(f) => f.commit(),
            Output::Journal(mut w) => Ok(super::resume::sync(&mut w)?),
        }
    }
}

/// A file written under a unique temporary name beside its target and renamed onto it by
/// [`AtomicFile::commit`]; dropped uncommitted, it is removed and the target is untouched.
pub struct AtomicFile {
    writer: BufWriter<File>,
    temp: PathBuf,
    target: PathBuf,
    committed: bool,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl AtomicFile {
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        // A symlink is followed, so that the file it names is replaced and the link is kept.
        let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let name = target
            .file_name()
            .with_context(|| format!("--output {} names no file", path.display()))?
            .to_string_lossy()
            .into_owned();
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let existing = std::fs::metadata(&target).ok();
        let mut attempt = 0;
        let (file, temp) = loop {
            let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
            let temp = dir.join(format!(".{name}.{}-{n}.tmp", std::process::id()));
            match OpenOptions::new().write(true).create_new(true).open(&temp) {
                Ok(f) => break (f, temp),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("creating a temporary file in {}", dir.display()))
                }
            }
        };
        if let Some(m) = existing {
            // The replacement keeps the permissions of the file it replaces.
            let _ = file.set_permissions(m.permissions());
        }
        Ok(Self {
            writer: BufWriter::new(file),
            temp,
            target,
            committed: false,
        })
    }

    pub fn writer(&mut self) -> &mut BufWriter<File> {
        &mut self.writer
    }

    /// Flushes, syncs and renames the temporary file onto the target.
    pub fn commit(mut self) -> anyhow::Result<()> {
        let context = || format!("writing {}", self.target.display());
        self.writer.flush().with_context(context)?;
        self.writer.get_ref().sync_all().with_context(context)?;
        std::fs::rename(&self.temp, &self.target).with_context(context)?;
        self.committed = true;
        if let Some(dir) = self.target.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Makes the rename itself durable; not every platform can open a directory.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Writes a JSON object whose values are JSON texts, in order.
pub fn write_object(w: &mut dyn Write, fields: &[(String, String)]) -> io::Result<()> {
    w.write_all(b"{")?;
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            w.write_all(b",")?;
        }
        serde_json::to_writer(&mut *w, key)?;
        w.write_all(b":")?;
        w.write_all(value.as_bytes())?;
    }
    w.write_all(b"}\n")
}

/// Sets `key` to `value` (a JSON text): in its place if the object has it, else at the end.
pub fn set_field(fields: &mut Vec<(String, String)>, key: &str, value: String) {
    match fields.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => fields.push((key.to_string(), value)),
    }
}
