//! `score --resume`: the output is the run's journal. Results are appended as each window is
//! scored and flushed to disk, so a run that stops (a crash, a kill, a lost server) leaves every
//! finished line behind; the same command run again keeps them and scores only the rest.
//!
//! Output line k is the result of the k-th non-blank input line (`score` writes exactly one
//! line, a result or an error, for each), so resuming skips as many input lines as the output
//! has complete lines, after checking that the last of them belongs to that input line.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;

use anyhow::{bail, Context};
use serde_json::Value;

use super::input::Pair;
use super::output::AtomicFile;

/// What an earlier run left in the output.
pub struct Journal {
    pub writer: BufWriter<File>,
    /// Complete result lines kept.
    pub kept: usize,
    /// The last of them.
    pub last: Option<Value>,
    /// How many of them are errors (they count in the exit status as in the first run).
    pub errors: usize,
}

/// Opens `path` to go on writing after its complete lines. A torn last line (a run stopped
/// while writing it) is dropped: the complete part is written to a temporary file and renamed
/// over, so no finished line is ever at risk. A line that is not JSON is refused: the file is
/// not this command's output.
pub fn open(path: &Path) -> anyhow::Result<Journal> {
    let (kept, last, good, errors) = match File::open(path) {
        Ok(f) => scan(f, path)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (0, None, 0, 0),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if good < size {
        tracing::warn!(
            "--output {}: dropping a torn last line ({} bytes)",
            path.display(),
            size - good
        );
        let mut copy = AtomicFile::create(path)?;
        let mut from = File::open(path)?.take(good);
        std::io::copy(&mut from, copy.writer()).context("copying the finished lines")?;
        copy.commit()?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {} to go on", path.display()))?;
    Ok(Journal {
        writer: BufWriter::new(file),
        kept,
        last,
        errors,
    })
}

/// Complete lines, the last as JSON, the bytes they take, and how many are errors.
fn scan(file: File, path: &Path) -> anyhow::Result<(usize, Option<Value>, u64, usize)> {
    let mut reader = BufReader::new(file);
    let (mut kept, mut last, mut good, mut errors) = (0usize, None, 0u64, 0usize);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 || line.last() != Some(&b'\n') {
            return Ok((kept, last, good, errors));
        }
        match serde_json::from_slice::<Value>(&line) {
            Ok(v) if v.is_object() => {
                errors += usize::from(v.get("error").is_some());
                last = Some(v);
            }
            _ => bail!(
                "line {} of --output {} is not a result: it is not this command's output, so --resume will not add to it",
                kept + 1,
                path.display()
            ),
        }
        kept += 1;
        good += n as u64;
    }
}

/// Whether `result` (an output line) is what was written for input line `number` holding
/// `input`: the same line number for an error, the same prompt and response for a result.
pub fn belongs(result: &Value, number: usize, input: &Result<Pair, String>) -> bool {
    if let Some(line) = result.get("line").filter(|_| result.get("error").is_some()) {
        return line.as_u64() == Some(number as u64);
    }
    match input {
        Ok(pair) => {
            result.get("prompt").and_then(Value::as_str) == Some(pair.prompt.as_str())
                && result.get("response").and_then(Value::as_str) == Some(pair.response.as_str())
        }
        Err(_) => false,
    }
}

/// Makes what was written so far durable (after each window).
pub fn sync(writer: &mut BufWriter<File>) -> std::io::Result<()> {
    writer.flush()?;
    writer.get_ref().sync_data()
}
