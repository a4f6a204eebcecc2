//! The terminal while the explorer runs: raw mode on the alternate screen, and every way back
//! from it. The screen is restored when the guard drops, when the UI thread panics and when the
//! process aborts (an allocation failure, a stack overflow); a panic on any other thread is
//! logged only, since the thread that owns that work reports it as a failure and the UI stays.
//! Termination signals (SIGTERM, SIGHUP, SIGINT) become a quit the event loop handles.
//!
//! Used by [`super::run`] only.

use std::io::{stdout, Write};
use std::panic::PanicHookInfo;
use std::thread::ThreadId;

use anyhow::Context;
use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
};
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use crossterm::{cursor, execute};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

pub type Term = Terminal<CrosstermBackend<std::io::Stdout>>;

/// Puts the terminal in raw mode on the alternate screen with mouse and bracketed paste, and
/// restores it when dropped.
pub struct TerminalGuard {
    pub terminal: Term,
    #[cfg(unix)]
    _abort: abort::Restorer,
}

pub fn restore_terminal() {
    let mut out = stdout();
    let _ = execute!(
        out,
        DisableBracketedPaste,
        DisableMouseCapture,
        LeaveAlternateScreen,
        cursor::Show
    );
    let _ = disable_raw_mode();
    let _ = out.flush();
}

/// The panic hook while the screen is taken: a panic on `ui` restores the terminal and then
/// reports as before (`report`); one elsewhere goes to `log` only, never over the screen, and
/// leaves raw mode on so the keys keep working.
pub fn panic_hook(
    ui: ThreadId,
    restore: impl Fn() + Send + Sync + 'static,
    report: impl Fn(&PanicHookInfo<'_>) + Send + Sync + 'static,
    log: impl Fn(&PanicHookInfo<'_>) + Send + Sync + 'static,
) -> Box<dyn Fn(&PanicHookInfo<'_>) + Send + Sync + 'static> {
    Box::new(move |info| {
        if std::thread::current().id() == ui {
            restore();
            log(info);
            report(info);
        } else {
            log(info);
        }
    })
}

fn log_panic(info: &PanicHookInfo<'_>) {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("unnamed");
    tracing::error!(thread = name, "panic: {info}");
}

impl TerminalGuard {
    pub fn enter() -> anyhow::Result<Self> {
        let previous = std::sync::Arc::new(std::panic::take_hook());
        let report = previous.clone();
        std::panic::set_hook(panic_hook(
            std::thread::current().id(),
            restore_terminal,
            move |info| report(info),
            log_panic,
        ));
        #[cfg(unix)]
        let abort = abort::Restorer::install();
        enable_raw_mode().context("cannot put the terminal in raw mode")?;
        let entered = execute!(
            stdout(),
            EnterAlternateScreen,
            EnableMouseCapture,
            EnableBracketedPaste,
            cursor::Hide
        );
        if let Err(e) = entered {
            restore_terminal();
            return Err(e).context("cannot set up the terminal");
        }
        match Terminal::new(CrosstermBackend::new(stdout())) {
            Ok(terminal) => Ok(Self {
                terminal,
                #[cfg(unix)]
                _abort: abort,
            }),
            Err(e) => {
                restore_terminal();
                Err(e).context("cannot size the terminal")
            }
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
        // Leave the default hook for whatever runs after the explorer.
        let _ = std::panic::take_hook();
    }
}

/// Resolves on SIGTERM, SIGHUP or SIGINT (raw mode keeps Ctrl-C a key, so SIGINT comes from
/// `kill`); never elsewhere.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let (Ok(mut term), Ok(mut hup), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
            signal(SignalKind::interrupt()),
        ) {
            tokio::select! {
                _ = term.recv() => {}
                _ = hup.recv() => {}
                _ = int.recv() => {}
            }
            return;
        }
    }
    std::future::pending::<()>().await
}

/// Restores the terminal when the process aborts. An abort runs no destructors and no panic
/// hook, so a SIGABRT handler writes the fixed escape sequences and puts back the terminal
/// settings saved at start (both async-signal-safe), then lets the abort go on.
#[cfg(unix)]
mod abort {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::OnceLock;

    /// Bracketed paste, mouse modes and the alternate screen off; the cursor shown.
    const RESTORE: &[u8] =
        b"\x1b[?2004l\x1b[?1006l\x1b[?1015l\x1b[?1003l\x1b[?1002l\x1b[?1000l\x1b[?1049l\x1b[?25h";

    static SAVED: OnceLock<libc::termios> = OnceLock::new();
    static ACTIVE: AtomicBool = AtomicBool::new(false);

    extern "C" fn on_abort(sig: libc::c_int) {
        if ACTIVE.load(Ordering::SeqCst) {
            // SAFETY: write, tcsetattr, signal and raise are async-signal-safe; the buffer
            // and the saved settings are statics that live for the whole process.
            unsafe {
                let _ = libc::write(1, RESTORE.as_ptr().cast(), RESTORE.len());
                if let Some(t) = SAVED.get() {
                    let _ = libc::tcsetattr(0, libc::TCSANOW, t);
                }
            }
        }
        // SAFETY: as above; the default action then ends the process as the abort meant.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
    }

    /// Installed while the screen is taken; dropping it puts the previous handler back.
    pub struct Restorer {
        previous: Option<libc::sigaction>,
    }

    impl Restorer {
        pub fn install() -> Self {
            // SAFETY: plain libc calls with initialised arguments; `termios` is plain data.
            unsafe {
                if libc::isatty(0) == 1 {
                    let mut t: libc::termios = std::mem::zeroed();
                    if libc::tcgetattr(0, &mut t) == 0 {
                        let _ = SAVED.set(t);
                    }
                }
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_abort as extern "C" fn(libc::c_int) as usize;
                libc::sigemptyset(&mut action.sa_mask);
                let mut previous: libc::sigaction = std::mem::zeroed();
                ACTIVE.store(true, Ordering::SeqCst);
                let ok = libc::sigaction(libc::SIGABRT, &action, &mut previous) == 0;
                Self {
                    previous: ok.then_some(previous),
                }
            }
        }
    }

    impl Drop for Restorer {
        fn drop(&mut self) {
            ACTIVE.store(false, Ordering::SeqCst);
            if let Some(previous) = self.previous.take() {
                // SAFETY: puts back the handler `install` replaced.
                unsafe {
                    libc::sigaction(libc::SIGABRT, &previous, std::ptr::null_mut());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A loader panicking on its own thread while the screen is taken: nothing is restored or
    /// printed (the screen and raw mode stay, so the keys keep working), the log gets it; the
    /// same panic on the UI thread restores the terminal before it is reported.
    #[test]
    fn only_a_panic_on_the_ui_thread_touches_the_terminal() {
        const MARK: &str = "loader panic 5e1f: index out of range";
        // Restored, reported, logged; only this test's panics count (others may run alongside).
        let counts: Arc<[AtomicUsize; 3]> = Arc::new(Default::default());
        let ours = |info: &PanicHookInfo<'_>| {
            info.payload()
                .downcast_ref::<&str>()
                .is_some_and(|s| *s == MARK)
        };
        let (c0, c1, c2) = (counts.clone(), counts.clone(), counts.clone());
        let previous = Arc::new(std::panic::take_hook());
        let others = previous.clone();
        std::panic::set_hook(panic_hook(
            std::thread::current().id(),
            move || {
                c0[0].fetch_add(1, Ordering::SeqCst);
            },
            move |info| {
                if ours(info) {
                    c1[1].fetch_add(1, Ordering::SeqCst);
                } else {
                    others(info);
                }
            },
            move |info| {
                if ours(info) {
                    c2[2].fetch_add(1, Ordering::SeqCst);
                }
            },
        ));
        let off_ui = std::thread::spawn(|| {
            std::panic::catch_unwind(|| std::panic::panic_any(MARK)).is_err()
        });
        let off_ui = off_ui.join().unwrap();
        let off = [0, 1, 2].map(|i| counts[i].load(Ordering::SeqCst));
        let on_ui = std::panic::catch_unwind(|| std::panic::panic_any(MARK)).is_err();
        let on = [0, 1, 2].map(|i| counts[i].load(Ordering::SeqCst));
        std::panic::set_hook(Box::new(move |info| previous(info)));
        assert!(off_ui && on_ui);
        assert_eq!(off, [0, 0, 1], "off the UI thread: logged only");
        assert_eq!(
            on,
            [1, 1, 2],
            "on the UI thread: restored, reported, logged"
        );
    }
}
