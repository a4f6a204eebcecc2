//! Faults: persist.
//! The explorer's files and terminal under faults: concurrent writers, broken and oversized
//! session files, an unwritable data directory, SIGINT and SIGABRT. The real binary runs in a
//! pseudo-terminal on the tiny fixture model, with every directory it writes to in a temp dir.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dpa_explorer::tui::session::{self, SavedCandidate, Session};

use crate::common;
use crate::common::pty::{Pty, WAIT};

const ROWS: u16 = 40;
const COLS: u16 = 140;

/// The explorer's data directory (autosaves) under an isolated home.
fn data_dir(home: &Path) -> PathBuf {
    home.join("data/dpa-explorer")
}

fn a_session(prompt: &str, responses: &[&str]) -> Session {
    Session {
        version: session::VERSION,
        model: "m".into(),
        labels: vec![],
        prompt: prompt.into(),
        candidates: responses
            .iter()
            .map(|r| SavedCandidate {
                name: String::new(),
                response: r.to_string(),
                scores: None,
            })
            .collect(),
        selected: 0,
        direction: Default::default(),
        axes: None,
    }
}

/// The explorer in a pseudo-terminal on a model; killed if the test fails part way.
struct Explorer(Pty);

impl std::ops::Deref for Explorer {
    type Target = Pty;
    fn deref(&self) -> &Pty {
        &self.0
    }
}

impl std::ops::DerefMut for Explorer {
    fn deref_mut(&mut self) -> &mut Pty {
        &mut self.0
    }
}

impl Explorer {
    fn start(home: &Path, args: &[&str]) -> Self {
        Self::start_model(home, &common::fixture("tiny-mha"), args)
    }

    fn start_model(home: &Path, model: &Path, args: &[&str]) -> Self {
        let mut all: Vec<&OsStr> = vec!["--model".as_ref(), model.as_os_str()];
        all.extend(args.iter().map(|a| OsStr::new(*a)));
        Self(Pty::start(home, &all, ROWS, COLS))
    }
}

/// Issue 9, point 18: `kill -INT` quits like SIGTERM: the text typed within the autosave's
/// pause is kept and the terminal is restored.
#[test]
fn sigint_keeps_the_last_keystrokes_and_restores_the_terminal() {
    let home = tempfile::tempdir().unwrap();
    let mut app = Explorer::start(home.path(), &[]);
    app.wait_for("the model to be ready", |t| t.contains(" ready "));
    app.send(b"interrupted-prompt-77");
    app.wait_for("the typed text", |t| t.contains("interrupted-prompt-77"));
    app.signal("INT");
    let status = app.wait_exit();
    assert!(!app.on_alternate_screen(), "left on the alternate screen");
    assert!(status.success(), "exit: {status:?}");
    let saved = session::load(&data_dir(home.path()).join("autosave.json")).expect("autosave");
    assert_eq!(saved.prompt, "interrupted-prompt-77");
}

/// Issue 9, point 6: an abort (what an impossible allocation ends in) restores the terminal.
#[test]
fn an_abort_restores_the_terminal() {
    let home = tempfile::tempdir().unwrap();
    let mut app = Explorer::start(home.path(), &[]);
    app.wait_for("the model to be ready", |t| t.contains(" ready "));
    assert!(app.on_alternate_screen());
    app.signal("ABRT");
    let status = app.wait_exit();
    assert!(!status.success());
    assert!(!app.on_alternate_screen(), "left on the alternate screen");
    assert!(!app.screen.parser.lock().unwrap().screen().hide_cursor());
}

/// Issue 9, point 6: a checkpoint whose loading panics (a layer count of 2^62 overflowed a
/// capacity) shows the error panel on the still-intact screen, and Ctrl-Q quits.
#[test]
fn a_loader_failure_leaves_the_screen_and_the_keys_working() {
    let home = tempfile::tempdir().unwrap();
    let model = common::model_copy(&common::fixture("tiny-mha"), |dir| {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).unwrap();
        let mut config: serde_json::Value = serde_json::from_str(&text).unwrap();
        config["num_hidden_layers"] = serde_json::Value::from(1u64 << 62);
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, config.to_string()).unwrap();
    });
    let mut app = Explorer::start_model(home.path(), model.path(), &[]);
    let text = app.wait_for("the error panel", |t| t.contains("Model not loaded"));
    assert!(
        !text.contains("panicked at"),
        "panic text over the UI:\n{text}"
    );
    assert!(app.on_alternate_screen());
    app.send(b"still typing");
    app.wait_for("the typed text", |t| t.contains("still typing"));
    app.send(b"\x11");
    let status = app.wait_exit();
    assert!(status.success(), "exit: {status:?}");
    assert!(!app.on_alternate_screen());
}

/// Issue 9, point 8: a broken `--session` file opens its autosave instead of a blank app, and
/// quitting leaves that autosave as it was.
#[test]
fn a_broken_session_file_never_blanks_its_autosave() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("work.json");
    let autosave = data_dir(home.path()).join(session::autosave_name(false, Some(&file)));
    session::save(
        &autosave,
        &a_session("kept-prompt-31", &["kept-response-31"]),
    )
    .unwrap();
    let before = std::fs::read(&autosave).unwrap();
    // The session file is newer than its autosave and broken.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(&file, "{\"version\": 1, \"prompt\": ").unwrap();
    let mut app = Explorer::start(home.path(), &["--session", file.to_str().unwrap()]);
    // Both at once: a screen read part way through a frame can hold the text without the
    // notice drawn below it.
    app.wait_for("the autosave's text and the notice", |t| {
        t.contains("kept-prompt-31") && t.contains("restored its autosave: ")
    });
    app.send(b"\x11");
    let status = app.wait_exit();
    assert!(status.success(), "exit: {status:?}");
    assert_eq!(
        std::fs::read(&autosave).unwrap(),
        before,
        "the autosave changed"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "{\"version\": 1, \"prompt\": "
    );
}

/// Issue 9, point 18: when the data directory cannot be written, the explorer says so at start
/// and at exit (non-zero), and the text goes to a rescue file instead of nowhere.
#[test]
fn an_unwritable_data_directory_is_said_and_the_text_rescued() {
    let home = tempfile::tempdir().unwrap();
    // A file where the data directory belongs: unwritable for root too.
    std::fs::create_dir_all(home.path().join("data")).unwrap();
    std::fs::write(data_dir(home.path()), b"not a directory").unwrap();
    let mut app = Explorer::start(home.path(), &[]);
    app.wait_for("the warning at start", |t| {
        t.contains("cannot keep an autosave")
    });
    app.send(b"rescued-prompt-12");
    app.wait_for("the typed text", |t| t.contains("rescued-prompt-12"));
    app.send(b"\x11");
    let status = app.wait_exit();
    assert!(!status.success(), "a lost autosave must not exit 0");
    let text = app.text();
    assert!(text.contains("could not autosave"), "{text}");
    let rescued: Vec<_> = std::fs::read_dir(home.path().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("dpa-explorer-rescue"))
        .collect();
    assert_eq!(rescued.len(), 1, "{rescued:?}");
    assert_eq!(
        session::load(&rescued[0]).unwrap().prompt,
        "rescued-prompt-12"
    );
}

/// Issue 9, point 18: `--session` naming a directory is refused before the screen is taken.
#[test]
fn a_session_directory_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dpa-explorer"))
        .arg("--model")
        .arg(common::fixture("tiny-mha"))
        .arg("--session")
        .arg(home.path())
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_CACHE_HOME", home.path().join("cache"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is a directory"), "{err}");
}

/// Issue 9, point 7: writers of one file never share a temporary file, so a reader sees the
/// old file or a whole new one, never an empty or half-written one.
#[test]
fn concurrent_writers_never_show_a_reader_half_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("autosave.json");
    session::save(&path, &a_session("start", &["x"])).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let path = path.clone();
            // Large enough that a write takes a while and overlaps the others'.
            let s = a_session(&format!("writer {w} ").repeat(20_000), &["r"]);
            std::thread::spawn(move || {
                for _ in 0..40 {
                    session::save(&path, &s).unwrap();
                }
            })
        })
        .collect();
    let reader = {
        let (path, stop) = (path.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                if let Err(e) = session::load(&path) {
                    return Err(format!("{e:#}"));
                }
                reads += 1;
            }
            Ok(reads)
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let reads = reader
        .join()
        .unwrap()
        .expect("every read is a whole session");
    assert!(reads > 0);
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "no temporary file is left: {left:?}");
}

/// Issue 9, point 18: a second unreadable autosave is set aside beside the first, not over it.
#[test]
fn every_unreadable_autosave_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let autosave = dir.path().join("autosave.json");
    let mut kept = Vec::new();
    for body in ["first broken", "second broken", "third broken"] {
        std::fs::write(&autosave, body).unwrap();
        let mut app = dpa_explorer::tui::App::new(
            dpa_explorer::tui::AppConfig {
                model_name: "m".into(),
                demo: false,
                direction: Default::default(),
                axes: None,
                device: "cpu".into(),
                dtype: "f32".into(),
                paths: dpa_explorer::tui::Paths {
                    autosave: Some(autosave.clone()),
                    presets: None,
                    session: None,
                },
            },
            Box::new(NoScorer),
        );
        app.restore_start(Instant::now());
        let flash = app
            .flash
            .as_ref()
            .map(|f| f.text.clone())
            .unwrap_or_default();
        assert!(flash.contains("could not read the autosave"), "{flash}");
        kept.push(body);
    }
    let mut found: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    found.sort();
    assert_eq!(found, kept);
}

struct NoScorer;

impl dpa_explorer::tui::Scorer for NoScorer {
    fn score(&mut self, _items: Vec<dpa_explorer::engine::ScoreItem>) -> u64 {
        1
    }
}

/// Issue 9, point 19: sessions beyond the stated limits are refused with a message naming the
/// limit, before they can make every frame and autosave slow.
#[test]
fn sessions_beyond_the_limits_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    let many = vec!["r"; session::MAX_CANDIDATES + 1];
    session::save(&path, &a_session("p", &many)).unwrap();
    let e = format!("{:#}", session::load(&path).unwrap_err());
    assert!(e.contains("at most 200"), "{e}");
    let long = "x".repeat(session::MAX_TEXT_BYTES + 1);
    session::save(&path, &a_session("p", &["ok", &long])).unwrap();
    let e = format!("{:#}", session::load(&path).unwrap_err());
    assert!(
        e.contains("response 2") && e.contains("at most 1024 KiB"),
        "{e}"
    );
    // A file over the size limit is not even read (sparse: no disk used).
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(session::MAX_SESSION_BYTES + 1).unwrap();
    let e = format!("{:#}", session::load(&path).unwrap_err());
    assert!(e.contains("larger than 64 MiB"), "{e}");
    // At the limits it opens.
    let at = vec!["r"; session::MAX_CANDIDATES];
    session::save(&path, &a_session("p", &at)).unwrap();
    assert_eq!(session::load(&path).unwrap().candidates.len(), 200);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![".{0,40}", "[a-z \\n\"\\\\]{0,40}"]
    }

    fn a_direction() -> impl Strategy<Value = dpa_explorer::preference::Direction> {
        use dpa_explorer::preference::Direction;
        prop_oneof![
            // Quarters of a degree: exact in binary, so equality after a round trip is fair.
            (
                -720i32..720,
                proptest::option::of(("[a-z-]{1,12}", "[a-z-]{1,12}"))
            )
                .prop_map(|(q, axes)| Direction::Angle {
                    degrees: q as f64 / 4.0,
                    axes,
                }),
            proptest::collection::vec(("[a-z-]{1,12}", -40i32..40), 0..4).prop_map(|w| {
                Direction::Weights {
                    weights: w.into_iter().map(|(n, q)| (n, q as f64 / 8.0)).collect(),
                }
            }),
        ]
    }

    fn a_valid_session() -> impl Strategy<Value = Session> {
        let candidate = (
            text(),
            text(),
            proptest::option::of((
                text(),
                text(),
                proptest::collection::vec(
                    (-8_000_000i32..8_000_000).prop_map(|q| q as f32 / 8.0),
                    0..10,
                ),
                0usize..100_000,
                any::<bool>(),
            )),
        )
            .prop_map(|(name, response, scores)| SavedCandidate {
                name,
                response,
                scores: scores.map(|(prompt, response, values, tokens, truncated)| {
                    session::SavedScores {
                        prompt,
                        response,
                        values,
                        tokens,
                        truncated,
                        gating: None,
                    }
                }),
            });
        (
            text(),
            proptest::collection::vec(text(), 0..10),
            text(),
            proptest::collection::vec(candidate, 0..6),
            0usize..10,
            (
                a_direction(),
                proptest::option::of(("[a-z-]{1,12}", "[a-z-]{1,12}")),
            ),
        )
            .prop_map(
                |(model, labels, prompt, candidates, selected, (direction, axes))| Session {
                    version: session::VERSION,
                    model,
                    labels,
                    prompt,
                    candidates,
                    selected,
                    direction,
                    axes,
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any bytes at all: an error or a session, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = session::parse(&bytes);
        }

        /// A valid session with one part changed to arbitrary JSON: still no panic.
        #[test]
        fn mangled_sessions_never_panic(s in a_valid_session(), at in 0usize..4096, junk in "[\\[\\]{}\",:0-9a-z\\-.eE ]{0,12}") {
            let json = serde_json::to_string(&s).unwrap();
            let at = (0..=at.min(json.len())).rev().find(|i| json.is_char_boundary(*i)).unwrap_or(0);
            let mangled = format!("{}{}{}", &json[..at], junk, &json[at..]);
            let _ = session::parse(mangled.as_bytes());
        }

        /// What is saved is what is loaded.
        #[test]
        fn valid_sessions_round_trip(s in a_valid_session()) {
            let json = serde_json::to_vec_pretty(&s).unwrap();
            prop_assert_eq!(session::parse(&json).unwrap(), s);
        }
    }
}

/// Issue 9, point 6: a loader that panics reaches the explorer as a load failure: the error
/// panel names it, the editors still take text and Ctrl-Q still quits.
#[test]
fn a_panicking_loader_shows_an_error_panel_and_the_explorer_stays_usable() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use dpa_explorer::engine::{Engine, EngineEvent, Loader};
    use dpa_explorer::tui::{App, AppConfig, Event, Paths};
    use ratatui::{backend::TestBackend, Terminal};

    let loader: Loader = Box::new(|_| panic!("shape [2147483647, 32] is too large"));
    let (tx, rx) = std::sync::mpsc::channel();
    let engine = Engine::spawn(loader, 16, move |e| {
        let _ = tx.send(e);
    });
    let mut app = App::new(
        AppConfig {
            model_name: "crafted".into(),
            demo: false,
            direction: Default::default(),
            axes: None,
            device: "cpu".into(),
            dtype: "f32".into(),
            paths: Paths::default(),
        },
        Box::new(engine),
    );
    let now = Instant::now();
    app.restore_start(now);
    loop {
        let ev = rx.recv_timeout(WAIT).expect("the engine reports");
        let failed = matches!(ev, EngineEvent::LoadFailed { .. });
        app.handle(Event::Engine(ev), now);
        if failed {
            break;
        }
    }
    app.handle(Event::Resize(COLS, ROWS), now);
    let key = |code, modifiers| Event::Key(KeyEvent::new(code, modifiers));
    for c in "still typing".chars() {
        app.handle(key(KeyCode::Char(c), KeyModifiers::NONE), now);
    }
    let mut terminal = Terminal::new(TestBackend::new(COLS, ROWS)).unwrap();
    terminal
        .draw(|f| dpa_explorer::tui::view::view(&app, f))
        .unwrap();
    let screen: String = terminal
        .backend()
        .buffer()
        .content()
        .chunks(COLS as usize)
        .map(|row| row.iter().map(|c| c.symbol()).collect::<String>() + "\n")
        .collect();
    assert!(screen.contains("Model not loaded"), "{screen}");
    assert!(screen.contains("panicked"), "{screen}");
    assert!(screen.contains("still typing"), "{screen}");
    assert!(!app.quit);
    app.handle(key(KeyCode::Char('q'), KeyModifiers::CONTROL), now);
    assert!(app.quit, "Ctrl-Q quits after a loader panic");
}
