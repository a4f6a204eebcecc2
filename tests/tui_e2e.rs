//! The real binary in a pseudo-terminal, on the tiny fixture model: type a prompt and a
//! response, wait for the scores, turn the dial, and check that the R on screen is
//! cos θ·helpfulness + sin θ·verbosity from the `score` command's output for the same text.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::pty::{isolate, Pty, Running, Screen, WAIT};
use portable_pty::{native_pty_system, CommandBuilder, PtySize};

const ROWS: u16 = 48;
const COLS: u16 = 160;

const PROMPT: &str = "Name a colour of the sky.";
const RESPONSE: &str = "Blue, on a clear day; grey when it rains.";

/// The number after `key` on the line that contains `marker`.
fn number_after(text: &str, marker: &str, key: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.contains(marker))?;
    let rest = &line[line.find(key)? + key.len()..];
    let num: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
        .collect();
    num.parse().ok()
}

/// The score command's JSON for the same text, with the dial's angle.
fn score_json(home: &Path, model: &Path, angle: f64) -> serde_json::Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dpa-explorer"));
    cmd.args(["score", "--model"])
        .arg(model)
        .args(["--prompt", PROMPT, "--response", RESPONSE])
        .arg(format!("--angle={angle}"))
        .arg("--log")
        .arg(home.join("score.log"));
    isolate(home, &mut |k, v| {
        cmd.env(k, v);
    });
    let out = cmd.output().expect("run the score command");
    assert!(
        out.status.success(),
        "score failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8 output");
    serde_json::from_str(text.trim()).expect("one JSON object")
}

/// The first file called `name` under `dir`.
fn find(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let p = entry.path();
        if p.is_dir() {
            if let Some(f) = find(&p, name) {
                return Some(f);
            }
        } else if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
    }
    None
}

#[test]
fn explorer_scores_and_turns_the_dial_like_the_score_command() {
    let home = tempfile::tempdir().expect("temp dir");
    let model = common::fixture("tiny-mha");
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: ROWS,
            cols: COLS,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("open a pseudo-terminal");
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_dpa-explorer"));
    cmd.arg("--model");
    cmd.arg(&model);
    cmd.arg("--log");
    cmd.arg(home.path().join("explorer.log"));
    cmd.cwd(home.path());
    cmd.env("TERM", "xterm-256color");
    isolate(home.path(), &mut |k, v| cmd.env(k, v));
    let child = pair.slave.spawn_command(cmd).expect("start the explorer");
    let mut child = Running(child);
    drop(pair.slave);

    // The reader ends when the child exits and the terminal closes.
    let reader = pair.master.try_clone_reader().expect("pty reader");
    let (screen, reading) = Screen::feed(reader, ROWS, COLS);
    let mut keys = pair.master.take_writer().expect("pty writer");
    let mut send = |bytes: &[u8]| {
        keys.write_all(bytes).expect("write keys");
        keys.flush().expect("flush keys");
    };

    screen.wait_for("the model to be ready", |t| t.contains(" ready "));
    // Focus starts in the prompt editor; Tab moves to the response.
    send(PROMPT.as_bytes());
    screen.wait_for("the prompt to appear", |t| t.contains(PROMPT));
    send(b"\t");
    send(RESPONSE.as_bytes());
    // Rescoring starts by itself after a pause in typing.
    screen.wait_for("fresh scores", |t| {
        t.contains("Scores · A fresh") && t.contains(RESPONSE)
    });
    // Tab to the dial and turn it three steps of 5°.
    send(b"\t");
    for _ in 0..3 {
        send(b"\x1b[C");
    }
    let text = screen.wait_for("θ = 15°", |t| {
        t.contains("θ = 15°  v = (0.97, 0.26)  R = ")
    });
    let r15 = number_after(&text, "θ = 15°", "R = ").expect("R on screen");
    // Shift+Right: one more degree.
    send(b"\x1b[1;2C");
    let text = screen.wait_for("θ = 16°", |t| t.contains("θ = 16°"));
    let r16 = number_after(&text, "θ = 16°", "R = ").expect("R on screen");

    for (deg, shown) in [(15.0f64, r15), (16.0, r16)] {
        let json = score_json(home.path(), &model, deg);
        let scores = &json["scores"];
        let h = scores["helpsteer-helpfulness"]
            .as_f64()
            .expect("helpfulness");
        let v = scores["helpsteer-verbosity"].as_f64().expect("verbosity");
        let (s, c) = deg.to_radians().sin_cos();
        let expected = c * h + s * v;
        assert!(
            (shown - expected).abs() <= 0.006,
            "θ = {deg}°: screen R = {shown}, cos θ·{h} + sin θ·{v} = {expected}"
        );
        let weighted = json["weighted"].as_f64().expect("weighted");
        assert!(
            (weighted - expected).abs() < 1e-3,
            "{weighted} vs {expected}"
        );
        if deg == 16.0 {
            // The bars show the same helpfulness, to two decimals.
            assert!(
                text.contains(&format!("{h:.2}")),
                "helpfulness {h:.2} not on screen:\n{text}"
            );
        }
    }

    // Ctrl-Q quits and restores the terminal.
    send(b"\x11");
    let end = Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = child.0.try_wait().expect("child status") {
            break s;
        }
        assert!(Instant::now() < end, "the explorer did not quit");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status:?}");
    drop(pair.master);
    let _ = reading.join();
    {
        let p = screen.parser.lock().unwrap();
        let s = p.screen();
        assert!(!s.alternate_screen(), "left the alternate screen");
        assert_eq!(s.mouse_protocol_mode(), vt100::MouseProtocolMode::None);
        assert!(!s.bracketed_paste());
        assert!(!s.hide_cursor(), "cursor shown again");
    }
    // The typed text was autosaved inside the temporary home, not the real one.
    let autosave = find(home.path(), "autosave.json").expect("autosave written on quit");
    let saved = std::fs::read_to_string(&autosave).expect("autosave readable");
    assert!(
        saved.contains(RESPONSE) && saved.contains(PROMPT),
        "{saved}"
    );
}

/// `n` characters of text made of short words, ending in `end`.
fn long_text(n: usize, end: &str) -> String {
    let words = ["sky ", "blue ", "cloud ", "rain ", "grey "];
    let mut s = String::new();
    let mut i = 0;
    while s.len() + end.len() < n {
        s.push_str(words[i % words.len()]);
        i += 1;
    }
    s.truncate(n - end.len());
    s.push_str(end);
    s
}

#[test]
fn a_20000_character_burst_appears_in_full_without_another_key() {
    let home = tempfile::tempdir().expect("temp dir");
    let pty = Pty::start(home.path(), &["--demo".as_ref()], ROWS, COLS);
    pty.screen
        .wait_for("the explorer to start", |t| t.contains("Prompt"));
    // The demo starts with sample text: start a fresh session (nothing unsaved yet).
    pty.send(b"\x1bn");
    pty.screen.wait_for("an empty prompt", |t| {
        t.contains("Type the user's prompt here")
    });
    let text = long_text(20_000, " END-OF-BURST");
    let writer = pty.send_burst(text.clone().into_bytes());
    pty.screen
        .wait_for("the end of the burst", |t| t.contains("END-OF-BURST"));
    writer.join().expect("writer");
    pty.quit();
    let autosave = find(home.path(), "autosave-demo.json").expect("autosave written on quit");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&autosave).unwrap()).unwrap();
    assert_eq!(saved["prompt"].as_str().map(str::len), Some(20_000));
    assert_eq!(saved["prompt"].as_str(), Some(text.as_str()));
}

#[test]
fn long_prompt_emptied_candidate_weight_mode_ranking_r_and_export() {
    let home = tempfile::tempdir().expect("temp dir");
    let model = common::fixture("tiny-mha");
    // A window shorter than the 20,000-character prompt's ~4,100 tokens, so it is cut.
    let pty = Pty::start(
        home.path(),
        &[
            "--model".as_ref(),
            model.as_os_str(),
            "--max-tokens".as_ref(),
            "2048".as_ref(),
        ],
        ROWS,
        COLS,
    );
    pty.screen
        .wait_for("the model to be ready", |t| t.contains(" ready "));
    let prompt = long_text(20_000, " END-OF-PROMPT");
    pty.send_burst(prompt.clone().into_bytes())
        .join()
        .expect("writer");
    pty.screen
        .wait_for("the whole prompt", |t| t.contains("END-OF-PROMPT"));
    // Candidate A, then B.
    pty.send(b"\t");
    pty.send(b"Blue, on a clear day.");
    pty.send(b"\x0e"); // Ctrl-N
    pty.send(b"Grey when it rains, blue otherwise.");
    pty.screen.wait_for("both scored", |t| {
        t.contains("last: ") && !t.contains("scoring") && t.contains("B ")
    });
    // The long prompt was cut to the model's limit, and the screen says so.
    pty.screen
        .wait_for("the truncation marker", |t| t.contains("start cut"));
    // Weight mode on the dial: correctness +0.5 next to helpfulness 1.
    pty.send(b"\t");
    pty.send(b"m");
    pty.send(b"\x1b[B");
    for _ in 0..5 {
        pty.send(b"\x1b[C");
    }
    pty.screen.wait_for("weights mode", |t| t.contains("0.50"));
    // Empty candidate A: select it, edit, select all, delete.
    pty.send(b"1");
    pty.send(b"e");
    pty.send(b"\x01"); // Ctrl-A
    pty.send(b"\x7f"); // Backspace
    pty.screen.wait_for("A emptied", |t| {
        t.contains("Type a candidate response here")
    });
    // Export next to the home.
    let out = home.path().join("scores.jsonl");
    pty.send(b"\x05"); // Ctrl-E
    pty.send(b"\x01");
    pty.send(out.to_string_lossy().as_bytes());
    pty.send(b"\r");
    pty.screen
        .wait_for("the export", |t| t.contains("exported 2 candidates"));
    // B (selected last, and the only one with scores) is first in the ranking panel.
    let screen = pty.screen.text();
    pty.quit();

    let rows: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .expect("export written")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(rows.len(), 2);
    let (b, a) = (&rows[0], &rows[1]);
    assert_eq!(b["candidate"], "B", "the scored candidate ranks first");
    assert_eq!(b["rank"], 1);
    assert_eq!(b["response"], "Grey when it rains, blue otherwise.");
    assert_eq!(b["prompt"].as_str(), Some(prompt.as_str()));
    assert_eq!(a["candidate"], "A");
    assert_eq!(a["response"], "");
    assert!(a["scores"].is_null() && a["weighted"].is_null() && a["rank"].is_null());
    // R is v·r over every attribute, for the weights on the dial.
    let scores = b["scores"].as_object().expect("scores");
    let h = scores["helpsteer-helpfulness"].as_f64().unwrap();
    let c = scores["helpsteer-correctness"].as_f64().unwrap();
    let norm = (1.0f64 + 0.25).sqrt();
    let expected = (h + 0.5 * c) / norm;
    let weighted = b["weighted"].as_f64().expect("weighted");
    assert!(
        (weighted - expected).abs() < 1e-4,
        "{weighted} vs {expected}"
    );
    let shown = screen
        .lines()
        .filter_map(|l| {
            let at = l.find("R = ")?;
            let num: String = l[at + 4..]
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
                .collect();
            num.parse::<f64>().ok()
        })
        .next();
    // The dial shows the selected candidate (A, now empty): no R for it.
    assert!(
        shown.is_none_or(|r| (r - expected).abs() < 0.006),
        "screen R {shown:?} vs {expected}:\n{screen}"
    );
}

#[test]
fn the_trajectory_view_shows_where_the_reward_moves() {
    let home = tempfile::tempdir().expect("temp dir");
    let model = common::fixture("tiny-mha");
    let pty = Pty::start(
        home.path(),
        &["--model".as_ref(), model.as_os_str()],
        ROWS,
        COLS,
    );
    pty.screen
        .wait_for("the model to be ready", |t| t.contains(" ready "));
    pty.send(PROMPT.as_bytes());
    pty.screen
        .wait_for("the prompt to appear", |t| t.contains(PROMPT));
    pty.send(b"\t");
    pty.send(RESPONSE.as_bytes());
    pty.screen.wait_for("fresh scores", |t| {
        t.contains("Scores · A fresh") && t.contains(RESPONSE)
    });
    // F3 until the trajectory view shows (the charts cycle; four presses cover them all).
    for _ in 0..4 {
        if pty.screen.text().contains("prefix scores:") {
            break;
        }
        pty.send(b"\x1bOR");
        std::thread::sleep(Duration::from_millis(300));
    }
    pty.screen.wait_for("the trajectory view", |t| {
        t.contains("prefix scores:") && t.contains("not per-word credit")
    });
    let text = pty.screen.wait_for("a rise or a drop", |t| {
        t.contains("R of A") && (t.contains("rise +") || t.contains("drop −"))
    });
    // The words named are words of the response.
    let line = text
        .lines()
        .find(|l| l.contains("rise +") || l.contains("drop −"))
        .expect("a move line");
    let quoted = line
        .split('“')
        .nth(1)
        .and_then(|s| s.split('”').next())
        .expect("quoted words");
    let quoted = quoted.trim_end_matches('…');
    assert!(RESPONSE.contains(quoted), "{quoted:?} not in {RESPONSE:?}");
    // Alt-E exports what the view shows, one row per word.
    let out = home.path().join("trajectory.csv");
    pty.send(b"\x1be");
    pty.send(b"\x01"); // Ctrl-A: replace the suggested name
    pty.send(out.to_string_lossy().as_bytes());
    pty.send(b"\r");
    pty.screen.wait_for("the trajectory export", |t| {
        t.contains("exported the trajectory of A (9 points)")
    });
    pty.quit();
    let csv = std::fs::read_to_string(&out).expect("trajectory written");
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("end,prefix,") && lines[0].ends_with(",weighted"));
    assert_eq!(lines.len(), 1 + 9, "{csv}");
    assert!(lines[1].starts_with("5,\"Blue,\","), "{csv}");
    let last = format!("{}, rains.,", RESPONSE.len());
    assert!(lines[9].starts_with(&last), "{csv}");
}

/// The ArmoRM demo: 19 bars at 80×24 scroll with the weight cursor and say how many are
/// hidden, and the dial shows R under the model's own gating direction beside the user's.
#[test]
fn the_armo_demo_scrolls_its_19_bars_and_shows_the_gating_r() {
    let home = tempfile::tempdir().expect("temp dir");
    let pty = Pty::start(home.path(), &["--demo".as_ref(), "armo".as_ref()], 24, 80);
    let screen = pty.screen.wait_for("the ArmoRM demo to score", |t| {
        t.contains(" ready ") && t.contains("gating R = ") && t.contains("fresh")
    });
    assert!(screen.contains("demo armo"), "{screen}");
    // The model's own direction on the dial, with the share of it in the plane.
    assert!(
        screen.contains('◆') && screen.contains("% in plane"),
        "{screen}"
    );
    // Grouped under their datasets' names, even while they scroll.
    assert!(screen.contains("HelpSteer"), "{screen}");
    assert!(screen.contains("more (weights mode"), "{screen}");
    assert!(!screen.contains("readability"), "{screen}");
    // Weights mode on the dial, then down to the last objective: the bars follow.
    pty.send(b"\x1b");
    pty.send(b"\x1bm");
    pty.screen
        .wait_for("weights mode", |t| t.contains("Direction · weights"));
    for _ in 0..18 {
        pty.send(b"\x1b[B");
    }
    let screen = pty
        .screen
        .wait_for("the last objective in view", |t| t.contains("readability"));
    assert!(screen.contains("↑ "), "{screen}");
    assert!(screen.contains("Code"), "{screen}");
    assert!(!screen.contains("HelpSteer"), "{screen}");
    pty.quit();
}
