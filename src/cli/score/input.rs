//! `score --input`: one JSON line at a time into a prompt, a response and the line's other
//! fields kept as their exact text (so ids of any size pass through unchanged), and a reader
//! thread that hands lines over in windows of bounded size. Used by `score` only.

use std::collections::HashMap;
use std::io::{self, BufRead};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};

/// The longest input line read; a longer one becomes an error line (and is skipped without
/// being held in memory).
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// How many bytes of read-but-not-yet-written lines may be held at once (plus one line).
pub const IN_FLIGHT_BYTES: usize = 64 << 20;

/// Lines queued between the reader thread and the scorer.
const QUEUE_LINES: usize = 1024;

/// What one queued line costs besides its bytes, so that many tiny lines are bounded too.
const LINE_OVERHEAD: usize = 256;

/// How long a window waits for one more line before it is scored with what it has, so that
/// a line typed on standard input is answered at once.
const FILL_WAIT: Duration = Duration::from_millis(2);

/// The UTF-8 byte-order mark some editors put at the start of a file.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A prompt/response pair and the fields of its line, in order, each value as its JSON text.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub fields: Vec<(String, String)>,
    pub prompt: String,
    pub response: String,
}

/// One line of input, read or failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Pair {
        line: usize,
        fields: Map<String, Value>,
        prompt: String,
        response: String,
    },
    Bad {
        line: usize,
        error: String,
    },
}

/// One non-blank line as the reader thread hands it over.
#[derive(Debug)]
pub struct Line {
    /// 1-based.
    pub number: usize,
    pub parsed: Result<Pair, String>,
    /// What the line counts against [`IN_FLIGHT_BYTES`].
    cost: usize,
}

/// Reads one line (without its `\n`, `\r\n`) of JSON: `None` for a blank line. Never panics,
/// whatever the bytes.
pub fn parse_line(number: usize, raw: &[u8]) -> Option<Result<Pair, String>> {
    let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let raw = match raw.strip_prefix(BOM) {
        Some(rest) if number == 1 => rest,
        Some(_) => return Some(Err(
            "starts with a UTF-8 byte-order mark, which is only allowed at the start of the file"
                .into(),
        )),
        None => raw,
    };
    if raw.iter().all(|b| b.is_ascii_whitespace()) {
        return None;
    }
    let text = match std::str::from_utf8(raw) {
        Ok(t) => t,
        Err(e) => {
            return Some(Err(format!(
                "not valid UTF-8 (bad byte at column {})",
                e.valid_up_to() + 1
            )))
        }
    };
    Some(parse_object(text))
}

fn parse_object(text: &str) -> Result<Pair, String> {
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        let message = e.to_string();
        let message = message
            .strip_suffix(&format!(" at line {} column {}", e.line(), e.column()))
            .unwrap_or(&message);
        return Err(format!(
            "not valid JSON at column {}: {message}",
            e.column()
        ));
    }
    let not_object = || "expected a JSON object with \"prompt\" and \"response\"".to_string();
    let spans = object_spans(text).ok_or_else(not_object)?;
    let mut fields: Vec<(String, String)> = Vec::with_capacity(spans.len());
    let mut index: HashMap<String, usize> = HashMap::with_capacity(spans.len());
    for (key, value) in spans {
        let key: String = serde_json::from_str(key).map_err(|_| not_object())?;
        // A repeated key keeps its first place and its last value, as a JSON map does.
        match index.get(&key) {
            Some(&i) => fields[i].1 = value.to_string(),
            None => {
                index.insert(key.clone(), fields.len());
                fields.push((key, value.to_string()));
            }
        }
    }
    let get = |k: &str| match index.get(k) {
        Some(&i) => serde_json::from_str::<String>(&fields[i].1)
            .map_err(|_| format!("\"{k}\" must be a string")),
        None => Err(format!("missing \"{k}\"")),
    };
    let prompt = get("prompt")?;
    let response = get("response")?;
    Ok(Pair {
        fields,
        prompt,
        response,
    })
}

/// The top-level (key, value) texts of a JSON object already known to be valid JSON; `None`
/// when it is not an object.
fn object_spans(text: &str) -> Option<Vec<(&str, &str)>> {
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    let mut out = Vec::new();
    if b.get(i) == Some(&b'}') {
        return Some(out);
    }
    loop {
        let key_end = value_end(b, i)?;
        let key = text.get(i..key_end)?;
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, i + 1);
        let end = value_end(b, i)?;
        out.push((key, text.get(i..end)?));
        i = skip_ws(b, end);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b'}') => return Some(out),
            _ => return None,
        }
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b
        .get(i)
        .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
    {
        i += 1;
    }
    i
}

/// Where the JSON value starting at `i` ends (exclusive).
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match b.get(j)? {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while b
                .get(j)
                .is_some_and(|c| !matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
            {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        match b.get(j)? {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
}

impl Pair {
    /// As a [`Record`], the fields read into JSON values.
    pub fn into_record(self, line: usize) -> Record {
        let fields = self
            .fields
            .iter()
            .map(|(k, v)| {
                let value = serde_json::from_str(v).unwrap_or(Value::Null);
                (k.clone(), value)
            })
            .collect();
        Record::Pair {
            line,
            fields,
            prompt: self.prompt,
            response: self.response,
        }
    }
}

/// Splits JSON-lines bytes into records; blank lines are skipped, every other line is either
/// a pair or an error that names its (1-based) line number.
pub fn parse_jsonl(bytes: &[u8]) -> Vec<Record> {
    bytes
        .split(|b| *b == b'\n')
        .enumerate()
        .filter_map(|(i, raw)| {
            let line = i + 1;
            parse_line(line, raw).map(|parsed| match parsed {
                Ok(pair) => pair.into_record(line),
                Err(error) => Record::Bad { line, error },
            })
        })
        .collect()
}

/// One line read with a length cap.
#[derive(Debug, PartialEq)]
enum Read {
    /// The line's bytes are in the buffer (with its `\n` if it had one).
    Line,
    /// The line was longer than the cap and was skipped; its length.
    TooLong(usize),
    End,
}

/// Reads up to and including the next `\n` into `buf` (cleared first), holding at most `cap`
/// bytes: the rest of a longer line is read and dropped.
fn read_line_capped(reader: &mut dyn BufRead, buf: &mut Vec<u8>, cap: usize) -> io::Result<Read> {
    buf.clear();
    let mut total = 0usize;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(match total {
                0 => Read::End,
                n if n > cap => Read::TooLong(n),
                _ => Read::Line,
            });
        }
        let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(p) => (p + 1, true),
            None => (chunk.len(), false),
        };
        total = total.saturating_add(take);
        if total <= cap {
            buf.extend_from_slice(&chunk[..take]);
        } else if !buf.is_empty() {
            // Past the cap: stop holding the line.
            buf.clear();
            buf.shrink_to(64 << 10);
        }
        reader.consume(take);
        if done {
            return Ok(if total > cap {
                Read::TooLong(total)
            } else {
                Read::Line
            });
        }
    }
}

/// How many bytes of lines are held between the reader and the writer.
struct Budget {
    held: Mutex<usize>,
    freed: Condvar,
    limit: usize,
}

impl Budget {
    fn wait_for_room(&self) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        while *held >= self.limit {
            held = self.freed.wait(held).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn take(&self, n: usize) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        *held = held.saturating_add(n);
    }

    fn give_back(&self, n: usize) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        *held = held.saturating_sub(n);
        self.freed.notify_all();
    }
}

/// Lines read and parsed on their own thread, ahead of the scorer but never more than
/// [`IN_FLIGHT_BYTES`] (and one line) ahead.
pub struct LineReader {
    // Behind a lock so that the next window can be read (and tokenised) on another thread
    // while this one is scored.
    lines: Mutex<Receiver<io::Result<Line>>>,
    budget: Arc<Budget>,
}

impl LineReader {
    /// Starts reading `input` (a file or standard input) on a thread of its own. The thread
    /// ends at the end of the input, on a read error, or when the reader is dropped.
    pub fn spawn(input: Box<dyn BufRead + Send>) -> io::Result<Self> {
        Self::spawn_with(input, MAX_LINE_BYTES, IN_FLIGHT_BYTES)
    }

    fn spawn_with(
        mut input: Box<dyn BufRead + Send>,
        max_line: usize,
        in_flight: usize,
    ) -> io::Result<Self> {
        let budget = Arc::new(Budget {
            held: Mutex::new(0),
            freed: Condvar::new(),
            limit: in_flight,
        });
        let (tx, rx) = mpsc::sync_channel(QUEUE_LINES);
        let thread_budget = Arc::clone(&budget);
        std::thread::Builder::new()
            .name("score-input".into())
            .spawn(move || read_lines(&mut *input, max_line, &thread_budget, &tx))?;
        Ok(Self {
            lines: Mutex::new(rx),
            budget,
        })
    }

    /// The next lines: waits for one, then takes what else has arrived, up to `max_lines`
    /// lines or `max_bytes` bytes. Empty at the end of the input.
    pub fn next_window(&self, max_lines: usize, max_bytes: usize) -> io::Result<Vec<Line>> {
        let mut window = Vec::new();
        let mut bytes = 0usize;
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        let first = match lines.recv() {
            Ok(line) => line?,
            Err(_) => return Ok(window),
        };
        bytes += first.cost;
        window.push(first);
        while window.len() < max_lines.max(1) && bytes < max_bytes {
            let next = match lines.try_recv() {
                Ok(l) => l,
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => match lines.recv_timeout(FILL_WAIT) {
                    Ok(l) => l,
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                },
            };
            let line = next?;
            bytes = bytes.saturating_add(line.cost);
            window.push(line);
        }
        Ok(window)
    }

    /// Lets the reader run ahead again once these lines have been written.
    pub fn done_with(&self, lines: &[Line]) {
        let n = lines.iter().fold(0usize, |n, l| n.saturating_add(l.cost));
        self.budget.give_back(n);
    }
}

fn read_lines(
    input: &mut dyn BufRead,
    max_line: usize,
    budget: &Budget,
    tx: &SyncSender<io::Result<Line>>,
) {
    let mut buf = Vec::new();
    let mut number = 0usize;
    loop {
        budget.wait_for_room();
        number += 1;
        let parsed = match read_line_capped(input, &mut buf, max_line) {
            Ok(Read::End) => return,
            Ok(Read::Line) => match parse_line(number, &buf) {
                Some(p) => p,
                None => continue,
            },
            Ok(Read::TooLong(n)) => Err(format!(
                "the line has {n} bytes; lines over {max_line} bytes are not read"
            )),
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        // The parsed line holds about two copies of its text.
        let cost = buf.len().saturating_mul(2).saturating_add(LINE_OVERHEAD);
        budget.take(cost);
        if tx
            .send(Ok(Line {
                number,
                parsed,
                cost,
            }))
            .is_err()
        {
            return;
        }
        if buf.capacity() > 1 << 20 {
            buf = Vec::new();
        }
    }
}

#[cfg(test)]
#[path = "input_tests.rs"]
mod tests;
