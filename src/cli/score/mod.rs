//! `dpa-explorer score`: prompt/response pairs in, one JSON object of scores per pair out,
//! streamed: lines are read, scored and written a window at a time, in input order.

pub mod input;
pub mod output;
mod resume;

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::{ArgGroup, Args};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use serde_json::{Map, Value};

use super::{DirectionArgs, ModelArgs};
use crate::hub::DownloadProgress;
use crate::model::RewardModel;
use crate::preference::{self, shortest};
use crate::scoring::{Every, Input, Pipeline, Point, Prepared, ScoreError, Scored};
use input::LineReader;
pub use input::{parse_jsonl, parse_line, Pair, Record};
use output::{same_file, set_field, stdin_is, write_object, Output};

/// The largest `--batch-size`.
pub const MAX_BATCH: u64 = 1024;

/// A window holds this many batches at most...
const WINDOW_BATCHES: usize = 8;
/// ...and about this many bytes of input lines (at least one line).
const WINDOW_BYTES: usize = 16 << 20;

#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["prompt", "input"])))]
pub struct ScoreArgs {
    /// The user prompt (with --response).
    #[arg(long, requires = "response", allow_hyphen_values = true)]
    pub prompt: Option<String>,
    /// The assistant response to score (with --prompt).
    #[arg(long, requires = "prompt", allow_hyphen_values = true)]
    pub response: Option<String>,
    /// JSON lines with "prompt" and "response" fields (other fields are passed through
    /// unchanged); `-` reads standard input. Results stream out in input order; lines over
    /// 64 MiB get an error line.
    #[arg(long, short, value_name = "FILE.jsonl|-", conflicts_with_all = ["prompt", "response"])]
    pub input: Option<PathBuf>,
    /// Write results here instead of standard output. The file is replaced only when the run
    /// completes; it may not be the input.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Inputs per forward pass (1 to 1024).
    #[arg(long, default_value_t = 8, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=MAX_BATCH))]
    pub batch_size: u64,
    /// Also score each response's prefixes, cut after every word (or --every sentence or
    /// token), as "trajectory": [{"end": E, "scores": {…}, "weighted": R}, …], where the
    /// prefix is the response's first E bytes. Each point is the model's score of that shorter
    /// response (not a credit given to its last word); it costs about one more pass per line.
    #[arg(long)]
    pub trajectory: bool,
    /// Go on from an earlier run: keep the results already in --output and score only the
    /// input lines after them. With it, --output is written as the run goes (synced after
    /// every window), so a run that stops can be resumed.
    #[arg(long, requires_all = ["output", "input"])]
    pub resume: bool,
    /// Where --trajectory cuts a response: word, sentence or token.
    #[arg(
        long,
        value_name = "WHERE",
        default_value = "word",
        requires = "trajectory"
    )]
    pub every: Every,
}

/// Scores by attribute name, each in its shortest decimal form.
fn scores_object(labels: &[String], scores: &[f32]) -> Value {
    Value::Object(
        labels
            .iter()
            .zip(scores)
            .map(|(l, v)| (l.clone(), Value::from(shortest(*v))))
            .collect(),
    )
}

/// The `trajectory` field: each prefix's end, scores by name and R, in order.
pub fn trajectory_field(
    points: &[Point],
    labels: &[String],
    weights: &[f64],
) -> Result<String, String> {
    let mut out = Vec::with_capacity(points.len());
    for p in points {
        let reward = preference::reward(weights, &p.scores)
            .filter(|_| p.scores.iter().all(|v| v.is_finite()))
            .ok_or_else(|| {
                format!(
                    "the model gave non-finite scores for the prefix ending at byte {}",
                    p.end
                )
            })?;
        let mut point = Map::new();
        point.insert("end".into(), Value::from(p.end));
        point.insert("scores".into(), scores_object(labels, &p.scores));
        point.insert("weighted".into(), Value::from(reward));
        out.push(Value::Object(point));
    }
    Ok(Value::Array(out).to_string())
}

/// The output fields for one scored pair: the input's `fields`, each as the exact text it had,
/// then the results. A non-finite score is never written as one: it is an error for its line.
pub fn result_fields(
    mut fields: Vec<(String, String)>,
    labels: &[String],
    s: &Scored,
    weights: &[f64],
) -> Result<Vec<(String, String)>, String> {
    let bad: Vec<String> = labels
        .iter()
        .zip(&s.scores)
        .filter(|(_, v)| !v.is_finite())
        .map(|(l, v)| format!("{l} = {v}"))
        .collect();
    if !bad.is_empty() {
        return Err(format!(
            "the model gave non-finite scores ({}); the checkpoint or its config is broken, so no scores are written",
            bad.join(", ")
        ));
    }
    let Some(reward) = preference::reward(weights, &s.scores) else {
        return Err(format!(
            "the weighted reward is not finite ({})",
            preference::weighted(weights, &s.scores)
        ));
    };
    let text = |v: Value| v.to_string();
    set_field(&mut fields, "tokens", text(Value::from(s.tokens)));
    set_field(&mut fields, "truncated", text(Value::from(s.truncated)));
    set_field(
        &mut fields,
        "scores",
        text(scores_object(labels, &s.scores)),
    );
    set_field(&mut fields, "weighted", text(Value::from(reward)));
    if let Some(g) = &s.gating {
        // A gating model's own prompt-dependent weighting and its score, named as its model
        // card names them.
        set_field(
            &mut fields,
            "gating",
            text(scores_object(labels, &g.weights)),
        );
        set_field(
            &mut fields,
            "preference_score",
            text(Value::from(shortest(g.score))),
        );
    }
    if !s.warnings.is_empty() {
        set_field(
            &mut fields,
            "warnings",
            text(Value::from(s.warnings.clone())),
        );
    }
    Ok(fields)
}

fn error_fields(line: usize, error: &str) -> Vec<(String, String)> {
    vec![
        ("line".into(), Value::from(line).to_string()),
        ("error".into(), Value::from(error).to_string()),
    ]
}

/// Scores the pairs among `records`; results come in the records' order and a failed pair
/// becomes an error for its own line only.
pub fn score_records(
    pipeline: &mut Pipeline,
    records: &[Record],
) -> Vec<Result<Scored, ScoreError>> {
    let inputs: Vec<Result<Input, ScoreError>> = records
        .iter()
        .map(|r| match r {
            Record::Pair {
                prompt, response, ..
            } => Ok(Input {
                prompt,
                response,
                slot: None,
            }),
            Record::Bad { error, .. } => Err(ScoreError::Input(error.clone())),
        })
        .collect();
    score_inputs(pipeline, &inputs)
}

/// Scores `inputs` (an `Err` is passed on as its line's error), one result each, in order.
/// Pairs that share a prompt compute the template and the prompt once and batch their
/// responses; every pair shares the template's head, with the pairs of earlier calls too.
fn score_inputs(
    pipeline: &mut Pipeline,
    inputs: &[Result<Input, ScoreError>],
) -> Vec<Result<Scored, ScoreError>> {
    collect(inputs.len(), |done| pipeline.score(inputs, &|| false, done))
}

/// As [`score_inputs`], for inputs already tokenised.
fn score_prepared(
    pipeline: &mut Pipeline,
    inputs: Vec<Result<Prepared, ScoreError>>,
) -> Vec<Result<Scored, ScoreError>> {
    let n = inputs.len();
    collect(n, |done| pipeline.score_prepared(inputs, &|| false, done))
}

/// The results a scoring call hands over, in input order; an input it left unanswered gets
/// the call's error.
fn collect(
    n: usize,
    score: impl FnOnce(&mut dyn FnMut(usize, Result<Scored, ScoreError>)) -> Result<(), ScoreError>,
) -> Vec<Result<Scored, ScoreError>> {
    let mut out: Vec<Option<Result<Scored, ScoreError>>> = vec![None; n];
    let outcome = score(&mut |i, r| out[i] = Some(r));
    let failure = outcome.err().unwrap_or(ScoreError::Cancelled);
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(failure.clone())))
        .collect()
}

/// A window read and tokenised ahead: its lines, how many of them an earlier run finished,
/// and the rest made into ids.
struct Ahead {
    window: Vec<input::Line>,
    skip: usize,
    prepared: Vec<Result<Prepared, ScoreError>>,
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

/// Where the pairs come from.
enum Source {
    Stdin,
    File(std::fs::File),
    Pair(String),
}

/// Writes one line to standard error; a closed standard error is not worth failing for.
fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// Runs the subcommand; returns the process exit code (1 when some lines failed).
pub fn run(
    model_args: &ModelArgs,
    direction: &DirectionArgs,
    args: &ScoreArgs,
) -> anyhow::Result<i32> {
    let direction = direction.direction()?;
    // Check the input and the output before the (slow) model load, so a typo fails at once.
    let source = match (&args.input, &args.prompt, &args.response) {
        (Some(path), _, _) if path.as_os_str() == "-" => {
            if let Some(out) = args.output.as_deref().filter(|o| stdin_is(o)) {
                anyhow::bail!(
                    "--output {} is the file standard input reads: writing it would destroy the input",
                    out.display()
                );
            }
            Source::Stdin
        }
        (Some(path), _, _) => {
            if let Some(out) = args.output.as_deref().filter(|o| same_file(path, o)) {
                anyhow::bail!(
                    "--output {} is the same file as --input {}: writing it would destroy the input",
                    out.display(),
                    path.display()
                );
            }
            let file =
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            Source::File(file)
        }
        (None, Some(p), Some(r)) => {
            Source::Pair(serde_json::json!({ "prompt": p, "response": r }).to_string())
        }
        _ => anyhow::bail!("give --prompt and --response, or --input FILE"),
    };
    let (mut output, kept, mut last_kept, kept_errors) = match (args.resume, args.output.as_deref())
    {
        (true, Some(path)) => {
            let journal = resume::open(path)?;
            if journal.kept > 0 {
                note(&format!(
                    "--resume: {} line(s) already in {}; scoring the rest",
                    journal.kept,
                    path.display()
                ));
            }
            (
                Output::Journal(journal.writer),
                journal.kept,
                journal.last,
                journal.errors,
            )
        }
        _ => (Output::open(args.output.as_deref())?, 0, None, 0),
    };

    let mut pipeline = match model_args.remote() {
        Some(remote) => {
            let source = model_args.source()?;
            let bar = download_bar();
            crate::engine::remote_pipeline(
                &source,
                &crate::hub::HubOptions::from_env(),
                model_args.max_tokens,
                remote,
                &|stage| {
                    if let crate::engine::LoadStage::Downloading {
                        file,
                        index,
                        files,
                        bytes,
                        total,
                    } = stage
                    {
                        bar(DownloadProgress {
                            file,
                            index,
                            files,
                            bytes,
                            total,
                        })
                    }
                },
            )
            .map_err(|e| anyhow::anyhow!(super::name_flag(e)))
            .context("connecting to the servers")?
        }
        None => {
            let files = model_args.files(&download_bar())?;
            let quant_cache = crate::assets::quant_cache();
            let opts = model_args.load_options();
            let model = RewardModel::load_with_cache(&files, &opts, Some(&quant_cache))
                .map_err(super::name_model_flag)
                .with_context(|| {
                    format!(
                        "loading the model from {}",
                        files.config.parent().unwrap_or(&files.config).display()
                    )
                })?;
            Pipeline::local(model)
        }
    };
    let labels = pipeline.info().labels.clone();
    let weights = direction.resolve(&labels)?;
    if args.trajectory {
        if let Some(cost) = pipeline.backend().trajectory_note() {
            note(&format!("--trajectory: {cost}"));
        }
    }

    let batch = usize::try_from(args.batch_size).unwrap_or(usize::MAX);
    pipeline.set_batch(batch);
    let bar = match source {
        Source::Pair(_) => ProgressBar::hidden(),
        _ => ProgressBar::with_draw_target(None, stderr_target()),
    };
    bar.set_style(
        ProgressStyle::with_template("scoring: {pos} line(s), {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let input: Box<dyn BufRead + Send> = match source {
        Source::Stdin => Box::new(BufReader::new(std::io::stdin())),
        Source::File(f) => Box::new(BufReader::new(f)),
        Source::Pair(line) => Box::new(std::io::Cursor::new(line.into_bytes())),
    };
    let reader = LineReader::spawn(input).context("starting to read the input")?;
    // A window is what is read ahead and scored together: pairs that share a prompt share
    // its keys and values within it. It stays small so results stream out and memory stays
    // bounded whatever the input's size.
    // Servers work on many batches at once: a window holds enough to keep them all busy.
    let max_lines = batch
        .saturating_mul(WINDOW_BATCHES.max(pipeline.backend().parallelism().saturating_mul(16)));
    // Prefixes computed for one window serve the next (a prompt's pairs split by the window
    // boundary, the template head): the pipeline's backend keeps them.
    // Lines an earlier run finished count as this run's (the exit status is the output's).
    let (mut lines, mut failed, mut seen) = (kept, kept_errors, 0usize);
    // The next window is read and tokenised on another thread while this one is scored, so
    // that a server never waits for the tokenizer.
    let encoder = pipeline.encoder().clone();
    let prepare = |seen: &mut usize,
                   last_kept: &mut Option<Value>,
                   max_lines: usize|
     -> anyhow::Result<Option<Ahead>> {
        loop {
            let window = reader
                .next_window(max_lines, WINDOW_BYTES)
                .context("reading the input")?;
            if window.is_empty() {
                return Ok(None);
            }
            // Lines an earlier run finished (--resume): skipped, the last one checked.
            let skip = kept.saturating_sub(*seen).min(window.len());
            *seen += window.len();
            if skip > 0 && *seen >= kept {
                let line = &window[skip - 1];
                if let Some(last) = last_kept.take() {
                    if !resume::belongs(&last, line.number, &line.parsed) {
                        anyhow::bail!(
                            "--resume: the last result in --output is not that of input line {}: the output belongs to another input",
                            line.number
                        );
                    }
                }
            }
            if skip == window.len() {
                reader.done_with(&window);
                continue;
            }
            // On every core: a server must not wait for the tokenizer.
            let prepared = window[skip..]
                .par_iter()
                .map(|l| match &l.parsed {
                    Ok(p) => Ok(Prepared {
                        encoded: encoder.encode(&p.prompt, &p.response)?,
                        slot: None,
                    }),
                    Err(e) => Err(ScoreError::Input(e.clone())),
                })
                .collect();
            return Ok(Some(Ahead {
                window,
                skip,
                prepared,
            }));
        }
    };
    // The first window is small, so that the servers start at once.
    let first = batch
        .saturating_mul(pipeline.backend().parallelism())
        .min(max_lines);
    let mut current = prepare(&mut seen, &mut last_kept, first)?;
    while let Some(Ahead {
        mut window,
        skip,
        prepared,
    }) = current.take()
    {
        current = std::thread::scope(|s| -> anyhow::Result<Option<Ahead>> {
            let ahead = s.spawn(|| prepare(&mut seen, &mut last_kept, max_lines));
            let started = std::time::Instant::now();
            let results = score_prepared(&mut pipeline, prepared);
            let scored = started.elapsed();
            let sink = output.writer();
            for (line, result) in window[skip..].iter_mut().zip(results) {
                lines += 1;
                let fields =
                    match (&mut line.parsed, result) {
                        // Taken, not copied: a line may be tens of megabytes.
                        (Ok(pair), Ok(scored)) => result_fields(
                            std::mem::take(&mut pair.fields),
                            &labels,
                            &scored,
                            &weights,
                        )
                        .and_then(|mut fields| {
                            if args.trajectory {
                                let points = pipeline
                                    .trajectory(&pair.prompt, &pair.response, args.every, &|| false)
                                    .map_err(|e| e.to_string())?;
                                let field = trajectory_field(&points, &labels, &weights)?;
                                set_field(&mut fields, "trajectory", field);
                            }
                            Ok(fields)
                        }),
                        (Err(e), _) => Err(e.clone()),
                        (Ok(_), Err(e)) => Err(e.to_string()),
                    };
                match fields {
                    Ok(fields) => write_object(sink, &fields)?,
                    Err(e) => {
                        failed += 1;
                        bar.suspend(|| note(&format!("line {}: {e}", line.number)));
                        write_object(sink, &error_fields(line.number, &e))?;
                    }
                }
                bar.inc(1);
            }
            output.checkpoint()?;
            // Frees the reader (and the thread reading ahead) to take more lines.
            reader.done_with(&window);
            let written = started.elapsed();
            let next = ahead
                .join()
                .map_err(|_| anyhow::anyhow!("reading the input ahead failed"))?;
            tracing::debug!(
                lines = window.len() - skip,
                ?scored,
                ?written,
                waited = ?started.elapsed().saturating_sub(written),
                "window done"
            );
            next
        })?;
    }
    if seen < kept {
        anyhow::bail!(
            "--resume: --output has {kept} result(s) but the input only {seen} line(s): the output belongs to another input"
        );
    }
    bar.finish_and_clear();
    output.finish()?;
    if failed > 0 {
        note(&format!(
            "{failed} of {lines} line(s) could not be scored (see above)"
        ));
        return Ok(1);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(line: &str) -> Pair {
        parse_line(1, line.as_bytes()).unwrap().unwrap()
    }

    fn scored(scores: Vec<f32>) -> Scored {
        Scored {
            gating: None,
            tokens: 5,
            truncated: false,
            scores,
            warnings: vec![],
        }
    }

    #[test]
    fn result_keeps_input_fields_first_and_exact() {
        let p = pair(
            r#"{"id": 123456789012345678901234567890, "prompt": "p", "response": "r", "x": 1.10}"#,
        );
        let labels = ["a".to_string(), "b".to_string()];
        let fields = result_fields(
            p.fields.clone(),
            &labels,
            &scored(vec![10.0, 20.0]),
            &[0.6, 0.8],
        )
        .unwrap();
        let mut out = Vec::new();
        write_object(&mut out, &fields).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(r#"{"id":123456789012345678901234567890,"prompt":"p","response":"r","x":1.10,"tokens":5,"truncated":false,"scores":{"a":10.0,"b":20.0},"weighted":"#),
            "{text}"
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!((v["weighted"].as_f64().unwrap() - 22.0).abs() < 1e-9);
    }

    #[test]
    fn a_result_field_in_the_input_is_replaced_in_place() {
        let p = pair(r#"{"scores": 1, "prompt": "p", "response": "r"}"#);
        let fields =
            result_fields(p.fields.clone(), &["a".into()], &scored(vec![1.0]), &[1.0]).unwrap();
        let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "scores",
                "prompt",
                "response",
                "tokens",
                "truncated",
                "weighted"
            ]
        );
        assert_eq!(fields[0].1, r#"{"a":1.0}"#);
    }

    #[test]
    fn non_finite_scores_are_an_error_never_a_result() {
        let p = pair(r#"{"prompt": "p", "response": "r"}"#);
        let labels = ["a".to_string(), "b".to_string()];
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let e = result_fields(
                p.fields.clone(),
                &labels,
                &scored(vec![1.0, bad]),
                &[0.6, 0.8],
            )
            .unwrap_err();
            assert!(e.contains("non-finite") && e.contains("b = "), "{e}");
        }
        // Finite scores whose weighted sum overflows.
        let e = result_fields(
            p.fields.clone(),
            &labels,
            &scored(vec![f32::MAX, f32::MAX]),
            &[1e300, 1e300],
        )
        .unwrap_err();
        assert!(e.contains("not finite"), "{e}");
    }
}
