//! `dpa-explorer score`: prompt/response pairs in, one JSON object of scores per pair out.

use std::io::{BufWriter, IsTerminal, Read, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::{ArgGroup, Args};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Map, Value};

use super::{DirectionArgs, ModelArgs};
use crate::hub::DownloadProgress;
use crate::model::reuse::{self, Job, DEFAULT_KV_BUDGET};
use crate::model::{Encoded, KvStore, ReuseOptions, RewardModel, Scored};
use crate::preference::weighted;

#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["prompt", "input"])))]
pub struct ScoreArgs {
    /// The user prompt (with --response).
    #[arg(long, requires = "response", allow_hyphen_values = true)]
    pub prompt: Option<String>,
    /// The assistant response to score (with --prompt).
    #[arg(long, requires = "prompt", allow_hyphen_values = true)]
    pub response: Option<String>,
    /// JSON lines with "prompt" and "response" fields (other fields are passed through); `-`
    /// reads standard input.
    #[arg(long, short, value_name = "FILE.jsonl|-", conflicts_with_all = ["prompt", "response"])]
    pub input: Option<PathBuf>,
    /// Write results here instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Inputs per forward pass.
    #[arg(long, default_value_t = 8, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: u64,
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

/// Splits JSON-lines bytes into records; blank lines are skipped, every other line is either
/// a pair or an error that names its (1-based) line number.
pub fn parse_jsonl(bytes: &[u8]) -> Vec<Record> {
    let mut out = Vec::new();
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let text = match std::str::from_utf8(raw) {
            Ok(t) => t,
            Err(e) => {
                out.push(Record::Bad {
                    line,
                    error: format!(
                        "not valid UTF-8 (bad byte at column {})",
                        e.valid_up_to() + 1
                    ),
                });
                continue;
            }
        };
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                out.push(Record::Bad {
                    line,
                    error: format!("not valid JSON: {e}"),
                });
                continue;
            }
        };
        let Value::Object(fields) = value else {
            out.push(Record::Bad {
                line,
                error: "expected a JSON object with \"prompt\" and \"response\"".into(),
            });
            continue;
        };
        let get = |k: &str| match fields.get(k) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(format!("\"{k}\" must be a string")),
            None => Err(format!("missing \"{k}\"")),
        };
        match (get("prompt"), get("response")) {
            (Ok(prompt), Ok(response)) => out.push(Record::Pair {
                line,
                fields,
                prompt,
                response,
            }),
            (Err(e), _) | (_, Err(e)) => out.push(Record::Bad { line, error: e }),
        }
    }
    out
}

/// The output object for one scored pair: the input's fields, then the results.
pub fn result_object(
    mut fields: Map<String, Value>,
    labels: &[String],
    s: &Scored,
    weights: &[f64],
) -> Value {
    let scores: Map<String, Value> = labels
        .iter()
        .zip(&s.scores)
        .map(|(l, v)| (l.clone(), Value::from(shortest(*v))))
        .collect();
    fields.insert("tokens".into(), Value::from(s.tokens));
    fields.insert("truncated".into(), Value::from(s.truncated));
    fields.insert("scores".into(), Value::Object(scores));
    fields.insert("weighted".into(), Value::from(weighted(weights, &s.scores)));
    if !s.warnings.is_empty() {
        fields.insert("warnings".into(), Value::from(s.warnings.clone()));
    }
    Value::Object(fields)
}

/// An f32 as the f64 with the same shortest decimal form, so JSON shows `68.99269`, not
/// `68.99269104003906`.
pub fn shortest(v: f32) -> f64 {
    format!("{v}").parse().unwrap_or(v as f64)
}

fn error_object(line: usize, error: &str) -> Value {
    let mut m = Map::new();
    m.insert("line".into(), Value::from(line));
    m.insert("error".into(), Value::from(error));
    Value::Object(m)
}

/// Scores the pairs among `records`, at most `batch` inputs per forward pass; results come in
/// the records' order and a failed pair becomes an error for its own line only.
pub fn score_records(
    model: &RewardModel,
    records: &[Record],
    batch: usize,
) -> Vec<Result<Scored, String>> {
    score_records_with(model, &mut KvStore::new(DEFAULT_KV_BUDGET), records, batch)
}

/// As [`score_records`], reusing and adding to the prefix caches in `store`. Pairs that share a
/// prompt compute the template and the prompt once and batch their responses, longest first;
/// every pair shares the template's head, with the pairs of earlier calls too.
pub fn score_records_with(
    model: &RewardModel,
    store: &mut KvStore,
    records: &[Record],
    batch: usize,
) -> Vec<Result<Scored, String>> {
    let mut out: Vec<Option<Result<Scored, String>>> = vec![None; records.len()];
    let mut encoded: Vec<(usize, Encoded)> = Vec::new();
    for (i, r) in records.iter().enumerate() {
        match r {
            Record::Bad { error, .. } => out[i] = Some(Err(error.clone())),
            Record::Pair {
                prompt, response, ..
            } => match model.encode(prompt, response) {
                Ok(e) => encoded.push((i, e)),
                Err(e) => out[i] = Some(Err(e.to_string())),
            },
        }
    }
    let jobs: Vec<Job> = encoded
        .iter()
        .map(|(_, e)| Job {
            ids: &e.ids,
            slot: None,
        })
        .collect();
    let options = ReuseOptions {
        max_batch: batch.max(1),
        keep_slots: false,
        ..ReuseOptions::default()
    };
    let outcome = reuse::score(
        model.decoder(),
        store,
        &jobs,
        &options,
        &|| false,
        &mut |j, result| {
            let (i, e) = &encoded[j];
            out[*i] = Some(result.map(|row| model.scored(e, row)));
        },
    );
    let failure = outcome.err().map(|e| e.to_string());
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(failure.clone().unwrap_or_else(|| "not scored".into()))))
        .collect()
}

fn download_bar() -> impl Fn(DownloadProgress) {
    let bar = ProgressBar::with_draw_target(None, stderr_target());
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    move |p: DownloadProgress| {
        bar.set_length(p.total);
        bar.set_position(p.bytes);
        bar.set_message(format!("[{}/{}] {}", p.index + 1, p.files, p.file));
        if p.bytes >= p.total && p.index + 1 == p.files {
            bar.finish_and_clear();
        }
    }
}

fn stderr_target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// Runs the subcommand; returns the process exit code (1 when some lines failed).
pub fn run(
    model_args: &ModelArgs,
    direction: &DirectionArgs,
    args: &ScoreArgs,
) -> anyhow::Result<i32> {
    let direction = direction.direction()?;
    // Read and check the input before the (slow) model load, so a typo fails at once.
    let records = match (&args.input, &args.prompt, &args.response) {
        (Some(path), _, _) => {
            let mut bytes = Vec::new();
            if path.as_os_str() == "-" {
                std::io::stdin()
                    .read_to_end(&mut bytes)
                    .context("reading standard input")?;
            } else {
                bytes =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            }
            parse_jsonl(&bytes)
        }
        (None, Some(p), Some(r)) => vec![Record::Pair {
            line: 1,
            fields: Map::from_iter([
                ("prompt".to_string(), Value::from(p.as_str())),
                ("response".to_string(), Value::from(r.as_str())),
            ]),
            prompt: p.clone(),
            response: r.clone(),
        }],
        _ => anyhow::bail!("give --prompt and --response, or --input FILE"),
    };
    let mut sink: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };

    let files = model_args.files(&download_bar())?;
    let model = RewardModel::load(&files, &model_args.load_options()).with_context(|| {
        format!(
            "loading the model from {}",
            files.config.parent().unwrap_or(&files.config).display()
        )
    })?;
    let labels = model.info().labels.clone();
    let weights = direction.resolve(&labels)?;

    let bar = if args.input.is_some() {
        ProgressBar::with_draw_target(Some(records.len() as u64), stderr_target())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("scoring [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut failed = 0usize;
    // Score in windows so that results stream out and memory stays bounded on big files.
    let window = (args.batch_size as usize) * 8;
    // Prefixes computed for one window serve the next (a prompt's pairs split by the window
    // boundary, the template head).
    let mut store = KvStore::new(DEFAULT_KV_BUDGET);
    for chunk in records.chunks(window) {
        let results = score_records_with(&model, &mut store, chunk, args.batch_size as usize);
        for (record, result) in chunk.iter().zip(results) {
            let value = match (record, result) {
                (Record::Pair { fields, .. }, Ok(s)) => {
                    result_object(fields.clone(), &labels, &s, &weights)
                }
                (Record::Pair { line, .. } | Record::Bad { line, .. }, Err(e)) => {
                    failed += 1;
                    bar.suspend(|| eprintln!("line {line}: {e}"));
                    error_object(*line, &e)
                }
                (Record::Bad { line, error }, Ok(_)) => error_object(*line, error),
            };
            serde_json::to_writer(&mut sink, &value)?;
            sink.write_all(b"\n")?;
            bar.inc(1);
        }
        sink.flush()?;
    }
    bar.finish_and_clear();
    if failed > 0 {
        eprintln!(
            "{failed} of {} line(s) could not be scored (see above)",
            records.len()
        );
        return Ok(1);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_lines_are_numbered_and_bad_ones_named() {
        let input = b"{\"prompt\": \"p\", \"response\": \"r\", \"id\": 7}\n\n{bad\n[1]\n{\"prompt\": \"p\"}\n\xff\xfe\n{\"prompt\": 1, \"response\": \"r\"}\r\n";
        let recs = parse_jsonl(input);
        assert_eq!(recs.len(), 6);
        match &recs[0] {
            Record::Pair { line, fields, .. } => {
                assert_eq!(*line, 1);
                assert_eq!(fields["id"], 7);
            }
            r => panic!("{r:?}"),
        }
        let bad: Vec<(usize, String)> = recs
            .iter()
            .filter_map(|r| match r {
                Record::Bad { line, error } => Some((*line, error.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(bad[0].0, 3);
        assert!(bad[0].1.contains("JSON"));
        assert_eq!(bad[1].0, 4);
        assert!(bad[2].1.contains("missing \"response\""));
        assert_eq!(bad[3].0, 6);
        assert!(bad[3].1.contains("UTF-8"));
        assert_eq!(bad[4].0, 7);
        assert!(bad[4].1.contains("must be a string"));
    }

    #[test]
    fn result_keeps_input_fields_first() {
        let fields = Map::from_iter([
            ("id".to_string(), Value::from(3)),
            ("prompt".to_string(), Value::from("p")),
            ("response".to_string(), Value::from("r")),
        ]);
        let s = Scored {
            tokens: 5,
            truncated: false,
            scores: vec![10.0, 20.0],
            warnings: vec![],
        };
        let v = result_object(fields, &["a".into(), "b".into()], &s, &[0.6, 0.8]);
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "id",
                "prompt",
                "response",
                "tokens",
                "truncated",
                "scores",
                "weighted"
            ]
        );
        assert!((v["weighted"].as_f64().unwrap() - 22.0).abs() < 1e-9);
        assert_eq!(v["scores"]["b"], 20.0);
    }
}
