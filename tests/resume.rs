//! `score --resume`: an output left by a stopped run is kept and only the rest is scored; the
//! result equals one uninterrupted run. An output that belongs to another input, or is not
//! this command's output at all, is refused and left as it was.

mod common;

use std::path::Path;
use std::process::Command;

fn score(home: &Path, args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dpa-explorer"));
    cmd.arg("score")
        .arg("--model")
        .arg(common::fixture("tiny-mha"))
        .args(args)
        .arg("--log")
        .arg(home.join("score.log"));
    common::pty::isolate(home, &mut |k, v| {
        cmd.env(k, v);
    });
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Whether two outputs hold the same lines, scores equal within 1e-4 (inputs batched
/// differently sum in another order).
fn same_output(a: &str, b: &str) -> bool {
    fn close(x: &serde_json::Value, y: &serde_json::Value) -> bool {
        match (x, y) {
            (serde_json::Value::Number(p), serde_json::Value::Number(q)) => {
                (p.as_f64().unwrap() - q.as_f64().unwrap()).abs() <= 1e-4
            }
            (serde_json::Value::Object(p), serde_json::Value::Object(q)) => {
                p.len() == q.len()
                    && p.iter()
                        .zip(q)
                        .all(|((k, v), (l, w))| k == l && close(v, w))
            }
            _ => x == y,
        }
    }
    a.lines().count() == b.lines().count()
        && a.lines().zip(b.lines()).all(|(x, y)| {
            close(
                &serde_json::from_str(x).unwrap(),
                &serde_json::from_str(y).unwrap(),
            )
        })
}

fn input(dir: &Path, n: usize) -> std::path::PathBuf {
    let mut text = String::new();
    for i in 0..n {
        if i == 5 {
            text.push_str("\n{broken\n");
        }
        text.push_str(
            &serde_json::json!({"id": i, "prompt": format!("Q{}", i % 3), "response": format!("Answer {i}.")})
                .to_string(),
        );
        text.push('\n');
    }
    let path = dir.join("in.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_stopped_run_resumes_to_the_output_of_one_whole_run() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let input = input(home, 40);
    let whole = home.join("whole.jsonl");
    let (code, _, err) = score(
        home,
        &[
            "--input".as_ref(),
            input.as_os_str(),
            "-o".as_ref(),
            whole.as_os_str(),
        ],
    );
    assert_eq!(code, 1, "one line is broken JSON: {err}");
    let whole = std::fs::read_to_string(&whole).unwrap();
    assert_eq!(whole.lines().count(), 41);

    // A run stopped after 9 lines, in the middle of writing the 10th.
    let out = home.join("out.jsonl");
    let cut: String = whole.lines().take(9).map(|l| format!("{l}\n")).collect();
    let torn = &whole.lines().nth(9).unwrap()[..20];
    std::fs::write(&out, format!("{cut}{torn}")).unwrap();
    let args = [
        "--input".as_ref(),
        input.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--resume".as_ref(),
    ];
    let (code, _, err) = score(home, &args);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("9 line(s) already in"), "{err}");
    let resumed = std::fs::read_to_string(&out).unwrap();
    assert!(
        resumed.starts_with(&cut),
        "the finished lines are kept as they were"
    );
    assert!(same_output(&resumed, &whole));
    // Nothing left to do: the output stays as it is; its error line still counts.
    let (code, _, err) = score(home, &args);
    assert_eq!(code, 1, "{err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), resumed);
    // Resuming into a file that does not exist yet is a whole run.
    let fresh = home.join("fresh.jsonl");
    score(
        home,
        &[
            "--input".as_ref(),
            input.as_os_str(),
            "-o".as_ref(),
            fresh.as_os_str(),
            "--resume".as_ref(),
        ],
    );
    assert!(same_output(
        &std::fs::read_to_string(&fresh).unwrap(),
        &whole
    ));
}

#[test]
fn an_output_of_another_input_or_of_nothing_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let input = input(home, 12);
    let out = home.join("out.jsonl");
    let resume = |out: &Path| {
        score(
            home,
            &[
                "--input".as_ref(),
                input.as_os_str(),
                "-o".as_ref(),
                out.as_os_str(),
                "--resume".as_ref(),
            ],
        )
    };
    let cases = [
        // Another prompt on the last kept line.
        (
            "{\"id\":0,\"prompt\":\"Q0\",\"response\":\"Answer 0.\",\"scores\":{}}\n{\"id\":1,\"prompt\":\"other\",\"response\":\"Answer 1.\"}\n",
            "belongs to another input",
        ),
        ("not json at all\n", "not this command's output"),
        (&"{\"x\":1}\n".repeat(20), "belongs to another input"),
    ];
    for (text, why) in cases {
        std::fs::write(&out, text).unwrap();
        let (code, _, err) = resume(&out);
        assert_ne!(code, 0);
        assert!(err.contains(why), "{why}: {err}");
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            text,
            "left as it was"
        );
    }
}

#[test]
fn resume_needs_an_output_file_and_an_input_file() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = score(
        dir.path(),
        &[
            "--prompt".as_ref(),
            "p".as_ref(),
            "--response".as_ref(),
            "r".as_ref(),
            "--resume".as_ref(),
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--output") || err.contains("--input"), "{err}");
}
