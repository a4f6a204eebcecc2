//! The terminal explorer: type a prompt and candidate responses, see their ten attribute
//! scores, turn a preference direction and watch the weighted reward and the ranking change.
//!
//! Shape: [`state`] is the view-model the [`widgets`] draw; [`explorer`] holds the whole
//! state; `keys` maps input to actions; the reducer (`reducer`, `scoring`, `persist`) applies
//! them and returns [`effects`], which [`app`] carries out; [`view`] draws. This module owns
//! the terminal and the event loop: terminal input, engine events and timers meet in one
//! `select!`, and the screen is redrawn after whatever changed. It is handed its
//! configuration and model loader by the caller ([`Launch`]); it knows nothing of the CLI.

pub mod action;
pub mod app;
pub mod autosave;
mod direction;
pub mod effects;
pub mod explorer;
pub mod keymap;
pub mod keys;
pub mod layout;
mod perform;
mod persist;
pub mod presets;
pub mod rates;
mod reducer;
mod scoring;
pub mod session;
pub mod state;
pub mod terminal;
pub mod view;
pub mod widgets;

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossterm::event::{Event as TermEvent, EventStream};
use futures::{FutureExt, StreamExt};
use tokio::sync::mpsc;

pub use app::{App, AppConfig, Event, Paths, Scorer};
use terminal::{shutdown_signal, Term, TerminalGuard};

use crate::engine::{Engine, EngineEvent, Loader, RequestId, ScoreItem};

/// Results kept by the engine, by input text.
const CACHE_CAPACITY: usize = 512;

/// The shortest pause between two frames while events stream in.
const FRAME: Duration = Duration::from_millis(16);

/// What the caller (the composition root in `main`) hands the explorer.
pub struct Launch {
    pub config: AppConfig,
    /// What to do when the model cannot be loaded, first thing in the panel.
    pub hint: Vec<String>,
    /// Makes the model's loader; called again when F5 retries a failed load.
    pub loader: Box<dyn Fn() -> Loader>,
}

/// The engine as the explorer's scorer; a reload replaces it with a fresh one.
struct EngineScorer {
    engine: Engine,
    make: Box<dyn Fn() -> Loader>,
    events: mpsc::UnboundedSender<EngineEvent>,
}

impl EngineScorer {
    fn spawn(make: &dyn Fn() -> Loader, events: &mpsc::UnboundedSender<EngineEvent>) -> Engine {
        let tx = events.clone();
        // The engine calls back on its own thread; the channel hands events to the loop.
        Engine::spawn(make(), CACHE_CAPACITY, move |e| {
            let _ = tx.send(e);
        })
    }
}

impl Scorer for EngineScorer {
    fn score(&mut self, items: Vec<ScoreItem>) -> RequestId {
        self.engine.score(items)
    }

    fn trajectory(&mut self, slot: u64, prompt: String, response: String) -> RequestId {
        let every = crate::scoring::Every::Word;
        self.engine.trajectory(slot, prompt, response, every)
    }

    fn forget(&mut self, slot: u64) {
        self.engine.forget(slot)
    }

    fn reload(&mut self) -> bool {
        // The old engine failed to load, so its thread only waits for commands: replacing
        // it stops it at once.
        self.engine = Self::spawn(self.make.as_ref(), &self.events);
        true
    }
}

/// Runs the explorer until the user quits.
pub fn run(launch: Launch) -> anyhow::Result<()> {
    let Launch {
        mut config,
        hint,
        loader,
    } = launch;
    // Held until the explorer ends: no other explorer writes this autosave meanwhile.
    let claim = config.paths.autosave.as_deref().map(autosave::claim);
    if let Some(c) = &claim {
        config.paths.autosave = Some(c.path.clone());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let (tx, rx) = mpsc::unbounded_channel();
        let engine = EngineScorer::spawn(loader.as_ref(), &tx);
        let scorer = EngineScorer {
            engine,
            make: loader,
            events: tx,
        };
        let mut app = App::new(config, Box::new(scorer));
        app.load_hint = hint;
        app.restore_start(Instant::now());
        if let Some(note) = claim.as_ref().and_then(|c| c.note.as_ref()) {
            app.set_flash(note.clone(), true, Instant::now());
        }
        let start = app.session();
        let started = std::time::SystemTime::now();
        let mut guard = TerminalGuard::enter()?;
        let outcome = AssertUnwindSafe(event_loop(&mut guard.terminal, &mut app, rx))
            .catch_unwind()
            .await;
        // Whatever happened, keep the typed text; say so once the screen is back if that failed.
        let saved = autosave::save_at_exit(&mut app, &start, started);
        drop(guard);
        drop(claim);
        match outcome {
            Ok(r) => {
                // Dropping the engine waits for its thread, which cannot stop part way
                // through loading weights; the process exits next, which ends it.
                std::mem::forget(app);
                r?;
                saved.map_err(anyhow::Error::msg)
            }
            Err(panic) => {
                if let Err(e) = saved {
                    eprintln!("error: {e}");
                }
                std::panic::resume_unwind(panic)
            }
        }
    })
}

async fn event_loop(
    terminal: &mut Term,
    app: &mut App,
    mut engine_rx: mpsc::UnboundedReceiver<EngineEvent>,
) -> anyhow::Result<()> {
    let mut input = EventStream::new();
    let size = terminal.size()?;
    app.size = (size.width, size.height);
    let mut dirty = true;
    let mut last_draw = Instant::now() - FRAME;
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        if dirty {
            let wait = FRAME.saturating_sub(last_draw.elapsed());
            // Coalesce bursts (download progress, key repeat) into one frame.
            if wait.is_zero() || app.quit {
                terminal.draw(|f| view::view(app, f))?;
                last_draw = Instant::now();
                dirty = false;
            }
        }
        if app.quit {
            return Ok(());
        }
        let now = Instant::now();
        let mut deadline = app.deadline(now).unwrap_or(now + Duration::from_secs(3600));
        if dirty {
            deadline = deadline.min(last_draw + FRAME);
        }
        let sleep = tokio::time::sleep_until(deadline.into());
        tokio::select! {
            ev = input.next() => match ev {
                Some(Ok(ev)) => {
                    if let Some(ev) = translate(ev) {
                        app.handle(ev, Instant::now());
                        dirty = true;
                    }
                    // A burst (a long paste without bracketed paste, typed-ahead keys) can
                    // sit in the reader's buffer with no new readiness to wake the stream:
                    // take everything that is already there before drawing.
                    drain_pending(app)?;
                }
                Some(Err(e)) => return Err(e).context("reading terminal input"),
                // The terminal went away: quit (the caller autosaves).
                None => return Ok(()),
            },
            Some(ev) = engine_rx.recv() => {
                app.handle(Event::Engine(ev), Instant::now());
                while let Ok(ev) = engine_rx.try_recv() {
                    app.handle(Event::Engine(ev), Instant::now());
                }
                dirty = true;
            },
            // Asked to stop (terminal closed, kill): quit as with Ctrl-Q, keeping the text.
            () = &mut shutdown => return Ok(()),
            _ = sleep => {
                app.handle(Event::Tick, Instant::now());
                dirty = true;
            },
        }
    }
}

/// Applies every terminal event that can be read without waiting.
fn drain_pending(app: &mut App) -> anyhow::Result<()> {
    while !app.quit && crossterm::event::poll(Duration::ZERO).context("reading terminal input")? {
        let ev = crossterm::event::read().context("reading terminal input")?;
        if let Some(ev) = translate(ev) {
            app.handle(ev, Instant::now());
        }
    }
    Ok(())
}

fn translate(ev: TermEvent) -> Option<Event> {
    match ev {
        TermEvent::Key(k) => Some(Event::Key(k)),
        TermEvent::Mouse(m) => Some(Event::Mouse(m)),
        TermEvent::Paste(s) => Some(Event::Paste(s)),
        TermEvent::Resize(w, h) => Some(Event::Resize(w, h)),
        TermEvent::FocusGained | TermEvent::FocusLost => None,
    }
}

#[cfg(test)]
mod render_tests;

#[cfg(test)]
mod structure_tests;
