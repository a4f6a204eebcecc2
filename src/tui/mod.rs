//! The terminal explorer: type a prompt and candidate responses, see their ten attribute
//! scores, turn a preference direction and watch the weighted reward and the ranking change.
//!
//! Shape: [`app`] holds the state and applies events; [`keys`] maps input to actions;
//! [`view`] draws the state; [`widgets`] are the pieces it draws with. This module owns the
//! terminal and the event loop: terminal input, engine events and timers meet in one
//! `select!`, and the screen is redrawn after whatever changed.

pub mod app;
pub mod autosave;
pub mod keys;
pub mod layout;
pub mod presets;
pub mod session;
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

use crate::cli::Cli;
use crate::engine::{self, Engine, EngineEvent};
use crate::hub::HubOptions;
use crate::model::DPA_LABELS;

/// Results kept by the engine, by input text.
const CACHE_CAPACITY: usize = 512;

/// The shortest pause between two frames while events stream in.
const FRAME: Duration = Duration::from_millis(16);

/// Runs the explorer until the user quits.
pub fn run(cli: &Cli) -> anyhow::Result<()> {
    // Refuse bad arguments before the screen is taken over, where the message can be read.
    let direction = cli.direction.direction()?;
    let labels: Vec<String> = DPA_LABELS.iter().map(|s| s.to_string()).collect();
    direction
        .resolve(&labels)
        .context("the starting direction (--angle/--weights)")?;
    let source = cli.model.source()?;
    let model_name = if cli.model.is_demo() {
        "demo (assets/demo)".to_string()
    } else {
        cli.model.model.clone()
    };
    if let Some(dir) = cli.ui.session.as_deref().filter(|p| p.is_dir()) {
        anyhow::bail!(
            "--session {} is a directory; name a session file (it is created when missing)",
            dir.display()
        );
    }
    let data = crate::assets::data_root();
    // Held until the explorer ends: no other explorer writes this autosave meanwhile.
    let claim = autosave::claim(&data.join(session::autosave_name(
        cli.model.is_demo(),
        cli.ui.session.as_deref(),
    )));
    let paths = Paths {
        autosave: Some(claim.path.clone()),
        presets: Some(crate::assets::config_root().join("presets.json")),
        session: cli.ui.session.clone(),
    };
    let config = AppConfig {
        model_name,
        demo: cli.model.is_demo(),
        direction,
        device: format!("{:?}", cli.model.device).to_lowercase(),
        dtype: format!("{:?}", cli.model.dtype).to_lowercase(),
        paths,
    };
    let loader = engine::model_loader(source, HubOptions::from_env(), cli.model.load_options());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let (tx, rx) = mpsc::unbounded_channel();
        // The engine calls back on its own thread; the channel hands events to the loop.
        let engine = Engine::spawn(loader, CACHE_CAPACITY, move |e| {
            let _ = tx.send(e);
        });
        let mut app = App::new(config, Box::new(engine));
        app.restore_start(Instant::now());
        if let Some(note) = &claim.note {
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
