//! The real binary in a pseudo-terminal, with a vt100 screen fed from what it draws: for the
//! tests that drive the explorer as a user would.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{native_pty_system, Child, CommandBuilder, ExitStatus, MasterPty, PtySize};

/// Generous: a loaded CI machine may be slow to start the binary and load the model.
pub const WAIT: Duration = Duration::from_secs(90);

/// Points every directory the app writes to (autosave, presets, cache, log, temp) into `home`.
pub fn isolate(home: &Path, set: &mut dyn FnMut(&str, &Path)) {
    set("HOME", home);
    set("XDG_CONFIG_HOME", &home.join("config"));
    set("XDG_DATA_HOME", &home.join("data"));
    set("XDG_CACHE_HOME", &home.join("cache"));
    let tmp = home.join("tmp");
    let _ = std::fs::create_dir_all(&tmp);
    set("TMPDIR", &tmp);
}

/// Kills the child if the test fails part way, so no process outlives it.
pub struct Running(pub Box<dyn Child + Send + Sync>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
    }
}

pub struct Screen {
    pub parser: Arc<Mutex<vt100::Parser>>,
}

impl Screen {
    /// A screen fed from `reader` on a thread of its own, until the terminal closes.
    pub fn feed(
        reader: Box<dyn Read + Send>,
        rows: u16,
        cols: u16,
    ) -> (Self, std::thread::JoinHandle<()>) {
        let parser = Arc::new(Mutex::new(vt100::Parser::new(rows, cols, 0)));
        let sink = parser.clone();
        let mut reader = reader;
        let reading = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().process(&buf[..n]);
            }
        });
        (Self { parser }, reading)
    }

    pub fn text(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    /// Waits until `what` holds for the screen text, or fails showing the screen.
    pub fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
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
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The explorer running in a pseudo-terminal of `rows × cols`.
pub struct Pty {
    pub screen: Screen,
    keys: Arc<Mutex<Box<dyn Write + Send>>>,
    pub child: Running,
    // The master must outlive the child, or the child sees its terminal close.
    _master: Box<dyn MasterPty + Send>,
}

impl Pty {
    /// Starts the binary with `args`, every directory it writes to inside `home` and its log
    /// in `home/explorer.log`.
    pub fn start(home: &Path, args: &[&OsStr], rows: u16, cols: u16) -> Pty {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("open a pseudo-terminal");
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_dpa-explorer"));
        for a in args {
            cmd.arg(a);
        }
        cmd.arg("--log");
        cmd.arg(home.join("explorer.log"));
        cmd.cwd(home);
        cmd.env("TERM", "xterm-256color");
        isolate(home, &mut |k, v| cmd.env(k, v));
        let child = Running(pair.slave.spawn_command(cmd).expect("start the explorer"));
        drop(pair.slave);
        let reader = pair.master.try_clone_reader().expect("pty reader");
        let (screen, _reading) = Screen::feed(reader, rows, cols);
        let keys = Arc::new(Mutex::new(pair.master.take_writer().expect("pty writer")));
        Pty {
            screen,
            keys,
            child,
            _master: pair.master,
        }
    }

    pub fn text(&self) -> String {
        self.screen.text()
    }

    pub fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        self.screen.wait_for(what, ok)
    }

    pub fn send(&self, bytes: &[u8]) {
        let mut k = self.keys.lock().unwrap();
        k.write_all(bytes).expect("write keys");
        k.flush().expect("flush keys");
    }

    /// Writes a long burst from another thread, so a stalled reader fails the wait on the
    /// screen instead of blocking the test in `write`.
    pub fn send_burst(&self, bytes: Vec<u8>) -> std::thread::JoinHandle<()> {
        let keys = self.keys.clone();
        std::thread::spawn(move || {
            let mut k = keys.lock().unwrap();
            for chunk in bytes.chunks(512) {
                if k.write_all(chunk).is_err() {
                    return;
                }
            }
            let _ = k.flush();
        })
    }

    /// Sends a signal (`INT`, `TERM`, `ABRT`, …) to the explorer.
    pub fn signal(&self, sig: &str) {
        let pid = self.child.0.process_id().expect("pid");
        let ok = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -{sig} {pid}");
    }

    /// Waits for the explorer to exit, then for the last bytes it wrote to reach the screen.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let end = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.0.try_wait().expect("wait") {
                std::thread::sleep(Duration::from_millis(200));
                return status;
            }
            assert!(
                Instant::now() < end,
                "the explorer did not exit; the screen:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Ctrl-Q, and a successful exit.
    pub fn quit(mut self) {
        self.send(b"\x11");
        let status = self.wait_exit();
        assert!(status.success(), "exit status {status:?}");
    }

    pub fn on_alternate_screen(&self) -> bool {
        self.screen
            .parser
            .lock()
            .unwrap()
            .screen()
            .alternate_screen()
    }
}
