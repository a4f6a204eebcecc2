//! Sessions on disk: save and load the prompt, candidates, scores and direction as JSON;
//! export scores as JSON lines or CSV. Files are written beside and renamed into place, so a
//! crash never leaves half a file.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::preference::Direction;

pub const VERSION: u32 = 1;

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

/// Writes `bytes` to `path` through a temporary file in the same directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "session".into());
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

pub fn save(path: &Path, session: &Session) -> anyhow::Result<()> {
    let mut json = serde_json::to_vec_pretty(session)?;
    json.push(b'\n');
    write_atomic(path, &json)
}

pub fn load(path: &Path) -> anyhow::Result<Session> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let s: Session = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a dpa-explorer session", path.display()))?;
    if s.version > VERSION {
        anyhow::bail!(
            "{} was written by a newer dpa-explorer (session version {})",
            path.display(),
            s.version
        );
    }
    Ok(s)
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

/// An f32 as the f64 with the same shortest decimal form (as the `score` command writes it).
fn shortest(v: f32) -> f64 {
    crate::cli::score::shortest(v)
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
                    .map(|(l, v)| (l.clone(), Value::from(shortest(*v))))
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
                    .map(|v| shortest(*v).to_string())
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

/// Writes the rows as CSV when the path ends in `.csv`, else as JSON lines; says which.
pub fn export(path: &Path, rows: &[ExportRow]) -> anyhow::Result<&'static str> {
    let csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if csv {
        write_atomic(path, to_csv(rows).as_bytes())?;
        Ok("CSV")
    } else {
        write_atomic(path, to_jsonl(rows).as_bytes())?;
        Ok("JSON lines")
    }
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
                }),
            }],
            selected: 0,
            direction: Direction::Angle { degrees: -15.0 },
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
}
