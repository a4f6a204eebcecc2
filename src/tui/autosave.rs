//! Who owns an autosave file, and the save at exit.
//!
//! One explorer owns an autosave at a time: it holds an exclusive lock on `.<name>.lock` beside
//! it for as long as it runs (the system drops the lock when the process ends, also on a crash).
//! A second explorer started meanwhile takes the first free `<stem>.2.json`, `<stem>.3.json`, …
//! and is told so, instead of overwriting the first one's text.
//!
//! Called by the explorer's composition in [`super::run`] (claim before the app is built, save
//! after the event loop ends); everything else goes through [`super::session`].

use super::app::App;
use super::session::{self, Session};
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// How many explorers may run side by side with their own autosaves.
const MAX_OWNERS: u32 = 64;

/// The autosave this process owns, held until it is dropped.
#[derive(Debug)]
pub struct Claim {
    /// The autosave file to read at start and write to.
    pub path: PathBuf,
    /// What to tell the user: another explorer had the usual file, or none could be locked.
    pub note: Option<String>,
    _lock: Option<File>,
}

fn lock_path(autosave: &Path) -> PathBuf {
    let name = autosave
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "autosave.json".into());
    autosave.with_file_name(format!(".{name}.lock"))
}

/// The n-th owner's autosave: `autosave.json`, `autosave.2.json`, …
fn nth(wanted: &Path, n: u32) -> PathBuf {
    if n == 1 {
        return wanted.to_path_buf();
    }
    let stem = wanted
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "autosave".into());
    wanted.with_file_name(format!("{stem}.{n}.json"))
}

/// Takes ownership of `wanted`, or of the first free sibling when other explorers hold it.
/// When no lock can be had at all (a read-only directory), the claim keeps `wanted` so the
/// last text can still be restored, and its note says that nothing will be kept.
pub fn claim(wanted: &Path) -> Claim {
    let unlocked = |why: String| Claim {
        path: wanted.to_path_buf(),
        note: Some(why),
        _lock: None,
    };
    if let Some(dir) = wanted.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Err(e) = std::fs::create_dir_all(dir) {
            return unlocked(format!(
                "cannot keep an autosave in {} ({e}): save with Ctrl-S to keep your text",
                dir.display()
            ));
        }
    }
    for n in 1..=MAX_OWNERS {
        let path = nth(wanted, n);
        let lock = lock_path(&path);
        let file = match OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock)
        {
            Ok(f) => f,
            Err(e) => {
                return unlocked(format!(
                    "cannot keep an autosave beside {} ({e}): save with Ctrl-S to keep your text",
                    lock.display()
                ))
            }
        };
        match file.try_lock() {
            Ok(()) => {
                let note = (n > 1).then(|| {
                    format!(
                        "another explorer is using {}; this one autosaves to {}",
                        wanted.display(),
                        path.display()
                    )
                });
                return Claim {
                    path,
                    note,
                    _lock: Some(file),
                };
            }
            Err(TryLockError::WouldBlock) => continue,
            // A file system without locks: go on unlocked rather than keep nothing.
            Err(TryLockError::Error(e)) => {
                tracing::warn!(error = %e, lock = %lock.display(), "autosave not locked");
                return Claim {
                    path,
                    note: None,
                    _lock: None,
                };
            }
        }
    }
    unlocked(format!(
        "{MAX_OWNERS} explorers already share {}: this one keeps no autosave",
        wanted.display()
    ))
}

/// The text the user made, with the scores left out: scores arrive by themselves and are no
/// reason to write anything.
fn work(s: &Session) -> (&str, Vec<(&str, &str)>, usize, String) {
    (
        s.prompt.as_str(),
        s.candidates
            .iter()
            .map(|c| (c.name.as_str(), c.response.as_str()))
            .collect(),
        s.selected,
        format!("{:?}", s.direction),
    )
}

/// Writes the autosave as the explorer ends, when the user changed something since `start`
/// (what the explorer started with, at `started`) that is not on disk yet. What the explorer
/// merely started with is never written over an autosave this run has not written: if it was
/// blank because a file could not be read, the autosave stays as it was.
///
/// On failure the text goes to a rescue file in the temporary directory, and the error says
/// where, for the caller to print once the terminal is back.
pub fn save_at_exit(app: &mut App, start: &Session, started: SystemTime) -> Result<(), String> {
    let Some(path) = app.paths.autosave.clone() else {
        return Ok(());
    };
    let now = app.session();
    // This run holds the lock, so a file modified since it started was written by it.
    let written_by_this_run = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t >= started);
    if app.autosave_at.is_none() && work(&now) == work(start) && !written_by_this_run {
        return Ok(());
    }
    if session::load(&path).is_ok_and(|on_disk| work(&on_disk) == work(&now)) {
        app.autosave_at = None;
        return Ok(());
    }
    app.autosave_at = None;
    let Err(e) = session::save(&path, &now) else {
        return Ok(());
    };
    let rescue = std::env::temp_dir().join(format!(
        "dpa-explorer-rescue-{}-{}.json",
        std::process::id(),
        SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    match session::save(&rescue, &now) {
        Ok(()) => Err(format!(
            "could not autosave to {} ({e:#}); your text is in {}",
            path.display(),
            rescue.display()
        )),
        Err(e2) => Err(format!(
            "could not autosave to {} ({e:#}) nor to {} ({e2:#}): your last changes are lost",
            path.display(),
            rescue.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_owner_gets_its_own_file_and_is_told() {
        let dir = tempfile::tempdir().unwrap();
        let wanted = dir.path().join("data/autosave.json");
        let first = claim(&wanted);
        assert_eq!(first.path, wanted);
        assert!(first.note.is_none());
        let second = claim(&wanted);
        assert_eq!(second.path, dir.path().join("data/autosave.2.json"));
        let note = second.note.clone().unwrap();
        assert!(note.contains("another explorer"), "{note}");
        // The first one gone, its file is free again.
        drop(first);
        let third = claim(&wanted);
        assert_eq!(third.path, wanted);
        drop(second);
    }

    struct NoScorer;

    impl crate::tui::Scorer for NoScorer {
        fn score(&mut self, _items: Vec<crate::engine::ScoreItem>) -> u64 {
            1
        }
    }

    fn app(autosave: &Path) -> App {
        let config = crate::tui::AppConfig {
            model_name: "m".into(),
            demo: false,
            direction: Default::default(),
            axes: None,
            device: "cpu".into(),
            dtype: "f32".into(),
            paths: crate::tui::Paths {
                autosave: Some(autosave.to_path_buf()),
                presets: None,
                session: None,
            },
        };
        App::new(config, Box::new(NoScorer))
    }

    fn type_text(app: &mut App, text: &str, now: std::time::Instant) {
        app.handle(crate::tui::Event::Paste(text.into()), now);
    }

    /// Quitting without a change leaves the autosave alone, even when the explorer started
    /// from something else (here: blank, as after a session file that failed to open).
    #[test]
    fn nothing_changed_nothing_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("autosave.json");
        let mut a = app(&path);
        let start = a.session();
        let mut kept = a.session();
        kept.prompt = "kept".into();
        session::save(&path, &kept).unwrap();
        // The run started after the file was last written.
        let written = std::fs::metadata(&path).unwrap().modified().unwrap();
        let started = written + std::time::Duration::from_millis(1);
        save_at_exit(&mut a, &start, started).unwrap();
        assert_eq!(session::load(&path).unwrap().prompt, "kept");
    }

    /// Text typed, autosaved, then typed back to what the run started with: the last text is
    /// what is on disk at the end.
    #[test]
    fn the_last_text_is_written_at_exit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("autosave.json");
        let started = SystemTime::now() - std::time::Duration::from_secs(1);
        let mut a = app(&path);
        let start = a.session();
        let now = std::time::Instant::now();
        type_text(&mut a, "draft", now);
        a.autosave(now);
        assert_eq!(session::load(&path).unwrap().prompt, "draft");
        a.set_texts("", &[]);
        save_at_exit(&mut a, &start, started).unwrap();
        assert_eq!(session::load(&path).unwrap().prompt, "");
        // Pending changes are written too.
        type_text(&mut a, "pending", now);
        assert!(a.autosave_at.is_some());
        save_at_exit(&mut a, &start, started).unwrap();
        assert_eq!(session::load(&path).unwrap().prompt, "pending");
    }

    #[cfg(unix)]
    #[test]
    fn an_unusable_directory_is_said_at_start() {
        // A regular file where the directory should be: refused for every user, root included,
        // unlike permission bits.
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::write(&data, b"not a directory").unwrap();
        let c = claim(&data.join("autosave.json"));
        assert_eq!(c.path, data.join("autosave.json"));
        assert!(c.note.unwrap().contains("cannot keep an autosave"));
    }
}
