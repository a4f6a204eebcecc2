//! Sessions on disk: save and load the prompt, candidates, scores and direction as JSON;
//! export scores as JSON lines or CSV, and a trajectory as CSV. Files are written beside under a
//! unique name, synced and renamed into place, so a crash or a second writer never leaves half a
//! file; an export never replaces a file unless asked to.
//!
//! A session file is untrusted: its size, the number of candidates and each text's length are
//! bounded (see [`MAX_CANDIDATES`], [`MAX_TEXT_BYTES`], [`MAX_SESSION_BYTES`]) so that opening
//! one can neither exhaust memory nor make every frame and autosave slow.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::preference::{self, Direction};

pub const VERSION: u32 = 1;

/// The most candidates a session may hold. Every frame lays out and every autosave writes all
/// of them; at this count both stay well under a frame's time.
pub const MAX_CANDIDATES: usize = 200;

/// The most bytes of text in one editor (the prompt or one response). The model reads at most
/// a few thousand tokens of it; more only slows every keystroke and autosave.
pub const MAX_TEXT_BYTES: usize = 1 << 20;

/// The largest session file that is read at all (scores repeat the texts they belong to).
pub const MAX_SESSION_BYTES: u64 = 64 << 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub version: u32,
    /// The model the scores came from; scores from another model are not reused.
    pub model: String,
    /// The attribute names the scores are in the order of.
    #[serde(default)]
    pub labels: Vec<String>,
    pub prompt: String,
    pub candidates: Vec<SavedCandidate>,
    #[serde(default)]
    pub selected: usize,
    #[serde(default)]
    pub direction: Direction,
    /// The dial's plane (x, y) by attribute name, when the user chose one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub axes: Option<(String, String)>,
}

impl Session {
    /// Whether there is no text in it at all.
    pub fn is_blank(&self) -> bool {
        self.prompt.trim().is_empty()
            && self.candidates.iter().all(|c| c.response.trim().is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedCandidate {
    #[serde(default)]
    pub name: String,
    pub response: String,
    /// The newest scores, with the text they belong to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scores: Option<SavedScores>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedScores {
    pub prompt: String,
    pub response: String,
    pub values: Vec<f32>,
    pub tokens: usize,
    #[serde(default)]
    pub truncated: bool,
    /// A gating model's own weighting of these scores (ArmoRM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gating: Option<crate::scoring::Gating>,
}

/// The autosave's file name: one per `--session` file (so that opening one session never
/// overwrites another's unsaved text), and the demo's apart from the real model's.
pub fn autosave_name(demo: bool, session: Option<&Path>) -> String {
    let mut name = String::from("autosave");
    if demo {
        name.push_str("-demo");
    }
    if let Some(p) = session {
        let full = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        // FNV-1a: stable across runs and platforms, unlike the std hasher.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in full.to_string_lossy().bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        name.push_str(&format!("-{h:016x}"));
    }
    name.push_str(".json");
    name
}

/// Writes `bytes` to `path` through a temporary file in the same directory: a name no other
/// writer uses, synced before the rename and the directory synced after, so a reader sees
/// either the old file or the whole new one, also after a crash.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let (tmp, dir) = write_temp(path, bytes)?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    sync_dir(dir);
    Ok(())
}

/// As [`write_atomic`], but leaves a file already at `path` alone: false when there is one
/// (nothing is written then).
pub fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<bool> {
    let (tmp, dir) = write_temp(path, bytes)?;
    // A hard link never replaces a file, so checking and publishing are one step.
    let published = match std::fs::hard_link(&tmp, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        // No hard links on this file system: rename, having checked the name is free.
        Err(_) if std::fs::symlink_metadata(path).is_err() => {
            std::fs::rename(&tmp, path).map(|()| true)
        }
        Err(_) => Ok(false),
    };
    let _ = std::fs::remove_file(&tmp);
    let published = published.with_context(|| format!("cannot write {}", path.display()))?;
    if published {
        sync_dir(dir);
    }
    Ok(published)
}

/// `bytes` in a synced temporary file beside `path`, under a name no other writer uses;
/// returns it and the directory.
fn write_temp<'a>(path: &'a Path, bytes: &[u8]) -> anyhow::Result<(PathBuf, &'a Path)> {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "session".into());
    let tmp = path.with_file_name(format!(
        ".{name}.{}-{}.tmp",
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", tmp.display()));
    }
    Ok((tmp, dir))
}

/// Makes a rename in `dir` durable. Best effort: some systems cannot open a directory.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Moves an unreadable file out of the way, to `<name>.unreadable`, or `<name>.unreadable.2`,
/// … when that is taken, so no earlier copy is ever replaced. Returns where it went.
pub fn set_aside(path: &Path) -> std::io::Result<PathBuf> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "session".into());
    for n in 1..=1000u32 {
        let aside = if n == 1 {
            path.with_file_name(format!("{name}.unreadable"))
        } else {
            path.with_file_name(format!("{name}.unreadable.{n}"))
        };
        // A hard link never replaces an existing file; the original goes once it is linked.
        match std::fs::hard_link(path, &aside) {
            Ok(()) => {
                std::fs::remove_file(path)?;
                return Ok(aside);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            // No hard links on this file system: rename, having checked the name is free.
            Err(_) if !aside.exists() => {
                std::fs::rename(path, &aside)?;
                return Ok(aside);
            }
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(
        "too many unreadable copies beside it",
    ))
}

pub fn save(path: &Path, session: &Session) -> anyhow::Result<()> {
    let mut json = serde_json::to_vec_pretty(session)?;
    json.push(b'\n');
    write_atomic(path, &json)
}

pub fn load(path: &Path) -> anyhow::Result<Session> {
    if path.is_dir() {
        anyhow::bail!("{} is a directory, not a session file", path.display());
    }
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let too_large = || {
        anyhow::anyhow!(
            "{} is larger than {} MiB; a session file is never that large",
            path.display(),
            MAX_SESSION_BYTES >> 20
        )
    };
    if file.metadata().is_ok_and(|m| m.len() > MAX_SESSION_BYTES) {
        return Err(too_large());
    }
    // Read at most one byte past the limit: a FIFO or a growing file has no trustworthy size.
    let mut bytes = Vec::new();
    file.take(MAX_SESSION_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > MAX_SESSION_BYTES {
        return Err(too_large());
    }
    parse(&bytes).map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))
}

/// A session from the bytes of a session file, checked against the limits.
pub fn parse(bytes: &[u8]) -> anyhow::Result<Session> {
    let s: Session = serde_json::from_slice(bytes).context("it is not a dpa-explorer session")?;
    if s.version > VERSION {
        anyhow::bail!(
            "it was written by a newer dpa-explorer (session version {})",
            s.version
        );
    }
    check_limits(&s)?;
    Ok(s)
}

/// Refuses a session beyond [`MAX_CANDIDATES`] or with a text over [`MAX_TEXT_BYTES`].
pub fn check_limits(s: &Session) -> anyhow::Result<()> {
    if s.candidates.len() > MAX_CANDIDATES {
        anyhow::bail!(
            "it holds {} candidates; the explorer takes at most {MAX_CANDIDATES}",
            s.candidates.len()
        );
    }
    let long = std::iter::once(("the prompt".to_string(), s.prompt.len())).chain(
        s.candidates
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("response {}", i + 1), c.response.len())),
    );
    for (what, len) in long {
        if len > MAX_TEXT_BYTES {
            anyhow::bail!(
                "{what} is {len} bytes; the explorer takes at most {} KiB per text",
                MAX_TEXT_BYTES >> 10
            );
        }
    }
    Ok(())
}

/// One candidate's scores, for export.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRow {
    pub candidate: String,
    /// Place in the ranking under the current direction (1 is best); none when unscored.
    pub rank: Option<usize>,
    pub prompt: String,
    pub response: String,
    /// Whether the scores belong to the current text.
    pub fresh: bool,
    pub tokens: Option<usize>,
    pub labels: Vec<String>,
    pub scores: Option<Vec<f32>>,
    pub weighted: Option<f64>,
    pub direction: String,
}

/// The rows as JSON lines, one object per candidate.
pub fn to_jsonl(rows: &[ExportRow]) -> String {
    let mut out = String::new();
    for r in rows {
        let mut m = Map::new();
        m.insert("candidate".into(), Value::from(r.candidate.clone()));
        m.insert(
            "rank".into(),
            r.rank.map(Value::from).unwrap_or(Value::Null),
        );
        m.insert("prompt".into(), Value::from(r.prompt.clone()));
        m.insert("response".into(), Value::from(r.response.clone()));
        m.insert("fresh".into(), Value::from(r.fresh));
        m.insert(
            "tokens".into(),
            r.tokens.map(Value::from).unwrap_or(Value::Null),
        );
        let scores = match &r.scores {
            Some(s) => Value::Object(
                r.labels
                    .iter()
                    .zip(s)
                    .map(|(l, v)| (l.clone(), Value::from(preference::shortest(*v))))
                    .collect(),
            ),
            None => Value::Null,
        };
        m.insert("scores".into(), scores);
        m.insert(
            "weighted".into(),
            r.weighted.map(Value::from).unwrap_or(Value::Null),
        );
        m.insert("direction".into(), Value::from(r.direction.clone()));
        out.push_str(&Value::Object(m).to_string());
        out.push('\n');
    }
    out
}

/// A CSV field, quoted when it holds a comma, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The rows as CSV with a header; unscored values are empty.
pub fn to_csv(rows: &[ExportRow]) -> String {
    let labels = rows.first().map(|r| r.labels.clone()).unwrap_or_default();
    let mut header = vec!["candidate", "rank", "prompt", "response", "fresh", "tokens"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    header.extend(labels.iter().cloned());
    header.push("weighted".into());
    header.push("direction".into());
    let mut out = header.join(",");
    out.push('\n');
    for r in rows {
        let mut f = vec![
            csv_field(&r.candidate),
            r.rank.map(|x| x.to_string()).unwrap_or_default(),
            csv_field(&r.prompt),
            csv_field(&r.response),
            r.fresh.to_string(),
            r.tokens.map(|x| x.to_string()).unwrap_or_default(),
        ];
        for i in 0..labels.len() {
            f.push(
                r.scores
                    .as_ref()
                    .and_then(|s| s.get(i))
                    .map(|v| preference::shortest(*v).to_string())
                    .unwrap_or_default(),
            );
        }
        f.push(r.weighted.map(|w| w.to_string()).unwrap_or_default());
        f.push(csv_field(&r.direction));
        out.push_str(&f.join(","));
        out.push('\n');
    }
    out
}

/// One candidate's prefix scores, for export: the points of its current text only.
#[derive(Debug, Clone, PartialEq)]
pub struct TrajectoryExport {
    pub candidate: String,
    /// The candidate and the revision of its text the points belong to.
    pub slot: u64,
    pub revision: u64,
    pub labels: Vec<String>,
    pub rows: Vec<TrajectoryRow>,
}

/// One prefix of the response, `response[..end]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrajectoryRow {
    pub end: usize,
    /// The text since the previous point (this point's word, with the space before it), so
    /// the column read down gives the response back.
    pub piece: String,
    pub scores: Vec<f32>,
    /// R under the direction at export; none when it is not a finite number.
    pub weighted: Option<f64>,
}

/// The points as CSV with a header: `end`, `prefix`, one column per attribute, `weighted`.
/// A value that is not a finite number is left empty.
pub fn trajectory_csv(t: &TrajectoryExport) -> String {
    let mut header = vec!["end".to_string(), "prefix".to_string()];
    header.extend(t.labels.iter().map(|l| csv_field(l)));
    header.push("weighted".into());
    let mut out = header.join(",");
    out.push('\n');
    for r in &t.rows {
        let mut f = vec![r.end.to_string(), csv_field(&r.piece)];
        for i in 0..t.labels.len() {
            f.push(
                r.scores
                    .get(i)
                    .filter(|v| v.is_finite())
                    .map(|v| preference::shortest(*v).to_string())
                    .unwrap_or_default(),
            );
        }
        f.push(
            r.weighted
                .filter(|w| w.is_finite())
                .map(|w| w.to_string())
                .unwrap_or_default(),
        );
        out.push_str(&f.join(","));
        out.push('\n');
    }
    out
}

/// What an export writes.
#[derive(Debug, Clone, PartialEq)]
pub enum Export {
    /// Every candidate's scores, as CSV or JSON lines by the file name.
    Scores(Vec<ExportRow>),
    /// One candidate's prefix scores, as CSV whatever the name.
    Trajectory(TrajectoryExport),
}

impl Export {
    /// What was exported, for messages.
    pub fn what(&self) -> String {
        match self {
            Export::Scores(rows) => format!("{} candidates", rows.len()),
            Export::Trajectory(t) => format!(
                "the trajectory of {} ({} points)",
                t.candidate,
                t.rows.len()
            ),
        }
    }

    /// The file's text for `path`, and its format.
    fn render(&self, path: &Path) -> (String, &'static str) {
        let csv = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        match self {
            Export::Scores(rows) if csv => (to_csv(rows), "CSV"),
            Export::Scores(rows) => (to_jsonl(rows), "JSON lines"),
            Export::Trajectory(t) => (trajectory_csv(t), "CSV"),
        }
    }
}

/// How an export went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Written, in this format.
    As(&'static str),
    /// A file is already there and was left alone: ask before replacing it.
    Exists,
}

/// Writes `export` to `path`; a file already there is replaced only when `replace` says so.
pub fn export(path: &Path, export: &Export, replace: bool) -> anyhow::Result<Written> {
    if path.is_dir() {
        anyhow::bail!("{} is a directory; type a file name", path.display());
    }
    let (text, kind) = export.render(path);
    if replace {
        write_atomic(path, text.as_bytes())?;
    } else if !write_new(path, text.as_bytes())? {
        return Ok(Written::Exists);
    }
    Ok(Written::As(kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> ExportRow {
        ExportRow {
            candidate: "A".into(),
            rank: Some(1),
            prompt: "Say \"hi\", please".into(),
            response: "hi\nthere".into(),
            fresh: true,
            tokens: Some(12),
            labels: vec!["a".into(), "b".into()],
            scores: Some(vec![68.99269, 35.5]),
            weighted: Some(57.25),
            direction: "θ = 15°".into(),
        }
    }

    #[test]
    fn sessions_round_trip_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/s.json");
        let s = Session {
            version: VERSION,
            model: "m".into(),
            labels: vec!["a".into()],
            prompt: "p".into(),
            candidates: vec![SavedCandidate {
                name: "A".into(),
                response: "r".into(),
                scores: Some(SavedScores {
                    prompt: "p".into(),
                    response: "r".into(),
                    values: vec![1.5],
                    tokens: 3,
                    truncated: false,
                    gating: Some(crate::scoring::Gating {
                        weights: vec![0.25],
                        coefficients: vec![0.5],
                        score: 0.75,
                    }),
                }),
            }],
            selected: 0,
            direction: Direction::angle(-15.0),
            axes: Some(("correctness".into(), "coherence".into())),
        };
        save(&path, &s).unwrap();
        assert_eq!(load(&path).unwrap(), s);
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");
    }

    #[test]
    fn each_session_file_has_its_own_autosave() {
        assert_eq!(autosave_name(false, None), "autosave.json");
        assert_eq!(autosave_name(true, None), "autosave-demo.json");
        let a = autosave_name(false, Some(Path::new("/tmp/a.json")));
        let b = autosave_name(false, Some(Path::new("/tmp/b.json")));
        assert_ne!(a, b);
        assert_eq!(a, autosave_name(false, Some(Path::new("/tmp/a.json"))));
        assert!(a.starts_with("autosave-") && a.ends_with(".json"));
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let missing = load(&dir.path().join("nope.json")).unwrap_err();
        assert!(format!("{missing:#}").contains("cannot read"));
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{not json").unwrap();
        let e = load(&bad).unwrap_err();
        assert!(format!("{e:#}").contains("not a dpa-explorer session"));
    }

    #[test]
    fn jsonl_has_one_object_per_row_with_named_scores() {
        let text = to_jsonl(&[row(), row()]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["scores"]["a"], Value::from(68.99269));
        assert_eq!(v["weighted"], Value::from(57.25));
        assert_eq!(v["response"], "hi\nthere");
        assert_eq!(v["rank"], 1);
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let text = to_csv(&[row()]);
        let mut lines = text.split('\n');
        assert_eq!(
            lines.next().unwrap(),
            "candidate,rank,prompt,response,fresh,tokens,a,b,weighted,direction"
        );
        assert!(text.contains("\"Say \"\"hi\"\", please\""));
        assert!(text.contains("\"hi\nthere\""));
        assert!(text.contains(",68.99269,35.5,57.25,θ = 15°\n"));
    }

    #[test]
    fn trajectory_csv_quotes_pieces_and_leaves_non_finite_values_empty() {
        let t = TrajectoryExport {
            candidate: "A".into(),
            slot: 1,
            revision: 2,
            labels: vec!["a".into(), "b".into()],
            rows: vec![
                TrajectoryRow {
                    end: 3,
                    piece: "Say".into(),
                    scores: vec![68.99269, 35.5],
                    weighted: Some(57.25),
                },
                TrajectoryRow {
                    end: 9,
                    piece: " \"hi\",".into(),
                    scores: vec![f32::NAN, 1.0],
                    weighted: None,
                },
                TrajectoryRow {
                    end: 15,
                    piece: "\nwave.".into(),
                    scores: vec![2.0, f32::INFINITY],
                    weighted: Some(f64::INFINITY),
                },
            ],
        };
        assert_eq!(
            trajectory_csv(&t),
            "end,prefix,a,b,weighted\n\
             3,Say,68.99269,35.5,57.25\n\
             9,\" \"\"hi\"\",\",,1,\n\
             15,\"\nwave.\",2,,\n"
        );
    }

    #[test]
    fn an_export_leaves_a_file_in_its_place_unless_asked_to_replace_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, "mine").unwrap();
        let rows = Export::Scores(vec![row()]);
        assert_eq!(export(&path, &rows, false).unwrap(), Written::Exists);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "mine");
        assert_eq!(
            export(&path, &rows, true).unwrap(),
            Written::As("JSON lines")
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), to_jsonl(&[row()]));
        let fresh = dir.path().join("new.csv");
        assert_eq!(export(&fresh, &rows, false).unwrap(), Written::As("CSV"));
        assert_eq!(std::fs::read_to_string(&fresh).unwrap(), to_csv(&[row()]));
        let e = export(dir.path(), &rows, true).unwrap_err();
        assert!(format!("{e:#}").contains("is a directory"), "{e:#}");
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        left.sort();
        assert_eq!(left, ["new.csv", "out.jsonl"], "no temporary file left");
    }
}
