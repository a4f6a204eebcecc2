//! The real binary in a pseudo-terminal, on the tiny fixture model: type a prompt and a
//! response, wait for the scores, turn the dial, and check that the R on screen is
//! cos θ·helpfulness + sin θ·verbosity from the `score` command's output for the same text.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{native_pty_system, Child, CommandBuilder, PtySize};

const ROWS: u16 = 48;
const COLS: u16 = 160;
/// Generous: a loaded CI machine may be slow to start the binary and load the model.
const WAIT: Duration = Duration::from_secs(90);

const PROMPT: &str = "Name a colour of the sky.";
const RESPONSE: &str = "Blue, on a clear day; grey when it rains.";

/// Points every directory the app writes to (autosave, presets, cache, log) into `home`.
fn isolate(home: &Path, set: &mut dyn FnMut(&str, &Path)) {
    set("HOME", home);
    set("XDG_CONFIG_HOME", &home.join("config"));
    set("XDG_DATA_HOME", &home.join("data"));
    set("XDG_CACHE_HOME", &home.join("cache"));
}

/// Kills the child if the test fails part way, so no process outlives it.
struct Running(Box<dyn Child + Send + Sync>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
    }
}

struct Screen {
    parser: Arc<Mutex<vt100::Parser>>,
}

impl Screen {
    fn text(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    /// Waits until `what` holds for the screen text, or fails showing the screen.
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + WAIT;
        loop {
            let text = self.text();
            if ok(&text) {
                return text;
            }
            assert!(
                Instant::now() < end,
                "timed out waiting for {what}; the screen:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

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

    let parser = Arc::new(Mutex::new(vt100::Parser::new(ROWS, COLS, 0)));
    let mut reader = pair.master.try_clone_reader().expect("pty reader");
    let sink = parser.clone();
    let reading = std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        // Ends when the child exits and the terminal closes.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().process(&buf[..n]);
        }
    });
    let mut keys = pair.master.take_writer().expect("pty writer");
    let mut send = |bytes: &[u8]| {
        keys.write_all(bytes).expect("write keys");
        keys.flush().expect("flush keys");
    };
    let screen = Screen { parser };

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
