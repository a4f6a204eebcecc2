//! Faults of `score`: outputs that must survive failed runs, the input given as the output,
//! non-finite scores, hostile flags, huge and endless inputs, byte-order marks, huge ids,
//! extreme weights, repeated error text and closed pipes. Each runs the real binary.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

use crate::common::{fixture, model_copy};

fn tiny() -> PathBuf {
    fixture("tiny-mha")
}

/// The binary with a clean hub environment, on the CPU in f32, logging into `scratch`.
fn command(scratch: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dpa-explorer"));
    for var in [
        "HF_TOKEN",
        "HF_HUB_OFFLINE",
        "HF_HUB_CACHE",
        "HF_ENDPOINT",
        "DPA_LOG",
    ] {
        c.env_remove(var);
    }
    c.env("HF_HOME", scratch.join("hf"))
        .env("XDG_CACHE_HOME", scratch.join("cache"))
        .env("HF_HUB_OFFLINE", "1")
        .args(args)
        .args(["--device", "cpu", "--dtype", "f32", "--log"])
        .arg(scratch.join("log.txt"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Runs `score` to the end; (exit code, stdout, stderr).
fn score(args: &[&str]) -> (i32, String, String) {
    let scratch = tempfile::tempdir().unwrap();
    let mut all = vec!["score"];
    all.extend_from_slice(args);
    let out = command(scratch.path(), &all).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn pair_line(id: usize, response: &str) -> String {
    serde_json::json!({"id": id, "prompt": "Is water wet?", "response": response}).to_string()
}

fn no_panic(stderr: &str) {
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The names in `dir` other than `keep`: temporary files left behind.
fn leftovers(dir: &Path, keep: &[&str]) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect()
}

#[test]
fn a_failed_run_leaves_an_existing_output_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, pair_line(1, "Yes.") + "\n").unwrap();
    let output = dir.path().join("results.jsonl");
    let before = "{\"earlier\": \"results\"}\n";
    // The model has no weights: the load fails.
    let broken = model_copy(&tiny(), |d| {
        for f in std::fs::read_dir(d).unwrap() {
            let p = f.unwrap().path();
            if p.to_string_lossy().ends_with(".safetensors") {
                std::fs::remove_file(p).unwrap();
            }
        }
    });
    let cases: [(&str, &Path, &str); 2] = [
        ("failed load", broken.path(), "correctness=1"),
        ("unknown attribute", &tiny(), "nosuch=1"),
    ];
    for (what, model, weights) in cases {
        std::fs::write(&output, before).unwrap();
        let (code, _, err) = score(&[
            "--model",
            model.to_str().unwrap(),
            "--weights",
            weights,
            "--input",
            input.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
        ]);
        assert_eq!(code, 2, "{what}: {err}");
        no_panic(&err);
        assert_eq!(std::fs::read_to_string(&output).unwrap(), before, "{what}");
        assert!(
            leftovers(dir.path(), &["in.jsonl", "results.jsonl"]).is_empty(),
            "{what}"
        );
    }
    // A run that completes replaces it, keeping the file's permissions.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&output, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (code, _, err) = score(&[
        "--model",
        tiny().to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let lines = json_lines(&std::fs::read_to_string(&output).unwrap());
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["id"], 1);
    let mode = std::fs::metadata(&output).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640);
    assert!(leftovers(dir.path(), &["in.jsonl", "results.jsonl"]).is_empty());
}

#[test]
fn the_input_is_refused_as_the_output_by_any_name() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let text = pair_line(1, "Yes.") + "\n";
    std::fs::write(&input, &text).unwrap();
    let link = dir.path().join("link.jsonl");
    std::os::unix::fs::symlink(&input, &link).unwrap();
    let hard = dir.path().join("hard.jsonl");
    std::fs::hard_link(&input, &hard).unwrap();
    let relative = dir.path().join(".").join("in.jsonl");
    for output in [&input, &link, &hard, &relative] {
        let (code, out, err) = score(&[
            "--model",
            tiny().to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
        ]);
        assert_eq!(code, 2, "{}: {err}", output.display());
        assert!(err.contains("same file as --input"), "{err}");
        assert!(out.is_empty());
        assert_eq!(std::fs::read_to_string(&input).unwrap(), text);
    }
    // Standard input read from the output file.
    let scratch = tempfile::tempdir().unwrap();
    let out = command(
        scratch.path(),
        &[
            "score",
            "--model",
            tiny().to_str().unwrap(),
            "--input",
            "-",
            "--output",
            link.to_str().unwrap(),
        ],
    )
    .stdin(std::fs::File::open(&input).unwrap())
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("standard input"), "{err}");
    assert_eq!(std::fs::read_to_string(&input).unwrap(), text);
    assert!(leftovers(dir.path(), &["in.jsonl", "link.jsonl", "hard.jsonl"]).is_empty());
}

type Tensors = BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)>;

/// tiny-mha with its tensors edited, in one `model.safetensors` in a temporary directory.
fn edited_checkpoint(edit: impl FnOnce(&mut Tensors)) -> tempfile::TempDir {
    let mut tensors = Tensors::new();
    for shard in [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ] {
        let bytes = std::fs::read(tiny().join(shard)).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        for (name, view) in st.tensors() {
            tensors.insert(
                name,
                (view.dtype(), view.shape().to_vec(), view.data().to_vec()),
            );
        }
    }
    edit(&mut tensors);
    let dir = tempfile::tempdir().unwrap();
    for name in ["config.json", "tokenizer.json"] {
        std::os::unix::fs::symlink(tiny().join(name), dir.path().join(name)).unwrap();
    }
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(k, (dt, shape, data))| {
            (
                k.clone(),
                TensorView::new(*dt, shape.clone(), data).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.path().join("model.safetensors")).unwrap();
    dir
}

/// Sets every element of a tensor (bf16, f16 or f32) to `v`, alternating its sign.
fn fill(t: &mut (Dtype, Vec<usize>, Vec<u8>), v: f32) {
    let (dtype, _, data) = t;
    let width = match dtype {
        Dtype::F32 => 4,
        Dtype::BF16 | Dtype::F16 => 2,
        d => panic!("{d:?}"),
    };
    for (i, chunk) in data.chunks_mut(width).enumerate() {
        let x = if i % 2 == 0 { v } else { -v };
        match dtype {
            Dtype::F32 => chunk.copy_from_slice(&x.to_le_bytes()),
            Dtype::BF16 => chunk.copy_from_slice(&half::bf16::from_f32(x).to_le_bytes()),
            _ => chunk.copy_from_slice(&half::f16::from_f32(x).to_le_bytes()),
        }
    }
}

#[test]
fn non_finite_scores_are_errors_per_line_never_null() {
    // Every weight is finite: the overflow happens in the forward pass (1e30 · 1e30 · 32
    // exceeds f32), so a load-time check for NaN/Inf tensors does not change this case.
    let model = edited_checkpoint(|t| {
        fill(t.get_mut("model.norm.weight").unwrap(), 1e30);
        fill(t.get_mut("score.weight").unwrap(), 1e30);
    });
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        format!("{}\n{}\n", pair_line(1, "Yes."), pair_line(2, "No.")),
    )
    .unwrap();
    let (code, out, err) = score(&[
        "--model",
        model.path().to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ]);
    no_panic(&err);
    if code == 2 {
        // Refused at load: also never a score.
        assert!(out.is_empty(), "{out}");
        return;
    }
    assert_eq!(code, 1, "{err}");
    assert!(!out.contains("null"), "{out}");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["line"], i + 1, "{l}");
        assert!(l["error"].as_str().unwrap().contains("non-finite"), "{l}");
        assert!(l.get("scores").is_none(), "{l}");
        assert!(err.contains(&format!("line {}: ", i + 1)), "{err}");
    }
    assert!(err.contains("2 of 2 line(s) could not be scored"), "{err}");
}

#[test]
fn a_huge_batch_size_is_refused_naming_the_value() {
    for n in ["4611686018427387904", "18446744073709551615", "0"] {
        let (code, out, err) = score(&[
            "--model",
            tiny().to_str().unwrap(),
            "--batch-size",
            n,
            "--prompt",
            "p",
            "--response",
            "r",
        ]);
        assert_eq!(code, 2, "{err}");
        no_panic(&err);
        assert!(err.contains(n) && err.contains("--batch-size"), "{err}");
        assert!(out.is_empty());
    }
    // The largest allowed still runs.
    let (code, _, err) = score(&[
        "--model",
        tiny().to_str().unwrap(),
        "--batch-size",
        "1024",
        "--prompt",
        "p",
        "--response",
        "r",
    ]);
    assert_eq!(code, 0, "{err}");
}

/// Reads stdout lines of a child on a thread, so a test can wait with a deadline.
fn line_reader(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

#[test]
fn lines_on_standard_input_are_answered_before_it_ends() {
    let scratch = tempfile::tempdir().unwrap();
    let mut child = command(
        scratch.path(),
        &["score", "--model", tiny().to_str().unwrap(), "--input", "-"],
    )
    .stdin(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let lines = line_reader(&mut child);
    for id in 1..=2 {
        writeln!(stdin, "{}", pair_line(id, "Yes, it is.")).unwrap();
        stdin.flush().unwrap();
        let got = lines
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("no result for line {id} while standard input is open")
            });
        let v: Value = serde_json::from_str(&got).unwrap();
        assert_eq!(v["id"], id);
        assert!(v["scores"].is_object());
    }
    drop(stdin);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

/// The peak resident set (VmHWM, kB) of a running child, sampled until it exits.
fn peak_rss_kb(child: &mut Child) -> u64 {
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        if let Ok(text) = std::fs::read_to_string(&status) {
            if let Some(kb) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            {
                peak = kb;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    peak
}

/// Scores `n` tiny lines from a file; (peak RSS in kB, lines written).
fn score_many(n: usize) -> (u64, usize) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let mut text = String::new();
    for id in 0..n {
        text.push_str(&pair_line(id, "Yes."));
        text.push('\n');
    }
    std::fs::write(&input, text).unwrap();
    let mut child = command(
        dir.path(),
        &[
            "score",
            "--model",
            tiny().to_str().unwrap(),
            "--batch-size",
            "64",
            "--input",
            input.to_str().unwrap(),
        ],
    )
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let stdout = child.stdout.take().unwrap();
    let counter = std::thread::spawn(move || BufReader::new(stdout).lines().count());
    let peak = peak_rss_kb(&mut child);
    (peak, counter.join().unwrap())
}

#[test]
fn memory_stays_bounded_however_many_lines() {
    let (small, n_small) = score_many(1_000);
    let (big, n_big) = score_many(100_000);
    assert_eq!((n_small, n_big), (1_000, 100_000));
    // Today's whole-file reading held every line (and its parsed fields): some 70 MB here.
    assert!(
        big < small + 30_000,
        "peak RSS {small} kB for 1k lines, {big} kB for 100k"
    );
}

#[test]
fn an_out_of_range_max_tokens_is_refused_naming_the_flag() {
    for (n, says) in [
        ("1", "at least 2"),
        ("100000", "exceed the model's context"),
    ] {
        let (code, out, err) = score(&[
            "--model",
            tiny().to_str().unwrap(),
            "--max-tokens",
            n,
            "--prompt",
            "p",
            "--response",
            "r",
        ]);
        assert_ne!(code, 0);
        assert!(out.is_empty(), "{out}");
        assert!(err.contains("--max-tokens") && err.contains(says), "{err}");
    }
}

#[test]
fn a_huge_line_is_scored_quickly_from_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let response = "The answer is that it depends on what you call wet. ".repeat(400_000);
    std::fs::write(&input, pair_line(1, &response) + "\n").unwrap();
    let started = Instant::now();
    let (code, out, err) = score(&[
        "--model",
        tiny().to_str().unwrap(),
        "--max-tokens",
        "256",
        "--input",
        input.to_str().unwrap(),
    ]);
    let took = started.elapsed();
    assert_eq!(code, 0, "{err}");
    let v = &json_lines(&out)[0];
    assert_eq!(v["tokens"], 256);
    assert_eq!(v["truncated"], true);
    assert!(v["warnings"][0].as_str().unwrap().contains("over "), "{v}");
    // Tokenizing all 21 MB took over a minute; the end alone takes well under a second.
    assert!(took < Duration::from_secs(30), "{took:?}");
}

#[test]
fn tokenizing_the_end_of_a_long_text_gives_the_same_input() {
    use dpa_explorer::model::InputEncoder;
    let path = tiny().join("tokenizer.json");
    let tokenizer = tokenizers::Tokenizer::from_file(&path).unwrap();
    let texts = [
        "It depends. ".repeat(5_000),
        "ünïcödé wörds ✓ and </s> control tokens, ".repeat(3_000),
        "x".repeat(60_000),
        "  \n\t ".repeat(20_000),
        "</s>".to_string() + &"plain words go here ".repeat(4_000),
    ];
    for max_tokens in [2usize, 64, 513] {
        let encoder = InputEncoder::from_file(&path, None, max_tokens).unwrap();
        for text in &texts {
            let got = encoder.encode_text(text).unwrap();
            let all = tokenizer.encode(text.as_str(), false).unwrap();
            let all = all.get_ids();
            let keep = all.len().min(max_tokens - 1);
            assert_eq!(&got.ids[1..], &all[all.len() - keep..], "{max_tokens}");
            assert_eq!(got.truncated(), all.len() + 1 > max_tokens);
            assert!(got.full_len <= all.len() + 1);
            assert_eq!(
                got.control_tokens.contains(&"</s>".to_string()),
                text.contains("</s>"),
                "{max_tokens}"
            );
        }
    }
}

#[test]
fn a_bom_is_accepted_and_huge_ids_pass_through_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let id = "123456789012345678901234567890";
    let text = format!(
        "\u{feff}{{\"id\": {id}, \"f\": 0.10000000000000000555, \"prompt\": \"p\", \"response\": \"r\"}}\r\n"
    );
    std::fs::write(&input, text).unwrap();
    let (code, out, err) = score(&[
        "--model",
        tiny().to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!("{{\"id\":{id},\"f\":0.10000000000000000555,")),
        "{out}"
    );
    assert!(json_lines(&out)[0]["scores"].is_object());
}

#[test]
fn extreme_weights_give_the_same_direction() {
    let run = |weights: &str| {
        let (code, out, err) = score(&[
            "--model",
            tiny().to_str().unwrap(),
            "--weights",
            weights,
            "--prompt",
            "p",
            "--response",
            "r",
        ]);
        assert_eq!(code, 0, "{weights}: {err}");
        json_lines(&out).remove(0)
    };
    let (a, b) = ("helpsteer-correctness", "helpsteer-coherence");
    let plain = run(&format!("{a}=1,{b}=1"));
    let expected = plain["weighted"].as_f64().unwrap();
    let s = &plain["scores"];
    let by_hand = (s[a].as_f64().unwrap() + s[b].as_f64().unwrap()) / 2f64.sqrt();
    assert!((expected - by_hand).abs() < 1e-4, "{expected} {by_hand}");
    for w in ["1e308", "1e-200"] {
        let v = run(&format!("{a}={w},{b}={w}"));
        let got = v["weighted"].as_f64().unwrap();
        assert!((got - expected).abs() < 1e-9, "{w}: {got} vs {expected}");
    }
}

#[test]
fn an_error_is_not_printed_twice() {
    // A config.json that is not UTF-8: the read fails with an I/O error.
    let model = model_copy(&tiny(), |d| {
        std::fs::remove_file(d.join("config.json")).unwrap();
        std::fs::write(d.join("config.json"), b"\xff\xfe{}").unwrap();
    });
    let (code, _, err) = score(&[
        "--model",
        model.path().to_str().unwrap(),
        "--prompt",
        "p",
        "--response",
        "r",
    ]);
    assert_eq!(code, 2, "{err}");
    let line = err.lines().find(|l| l.starts_with("error: ")).unwrap();
    let parts: Vec<&str> = line.split(": ").collect();
    for w in parts.windows(2) {
        assert_ne!(w[0], w[1], "{line}");
    }
    // No part of the message is repeated further along either.
    for (i, p) in parts.iter().enumerate().skip(1) {
        assert!(!parts[i + 1..].contains(p), "{line}");
    }
}

#[test]
fn a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let text: String = (0..3_000).map(|i| pair_line(i, "Yes.") + "\n").collect();
    std::fs::write(&input, text).unwrap();
    let mut child = command(
        dir.path(),
        &[
            "score",
            "--model",
            tiny().to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
        ],
    )
    .spawn()
    .unwrap();
    // `| head -1`: read one line, then close the pipe.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.contains("\"scores\""), "{first}");
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        !err.contains("Broken pipe") && !err.contains("error"),
        "{err}"
    );
}
