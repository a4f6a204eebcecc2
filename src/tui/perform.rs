//! Carries out the reducer's effects: the only place in the explorer's state handling that
//! touches files or the scorer. Called by the driver in `app.rs`.

use std::time::Instant;

use super::effects::{Effect, Scorer};
use super::explorer::{demo_samples, Explorer};
use super::session;

/// Where the explorer starts from: the `--session` file (or its autosave, when that is
/// newer), else the last autosave, else (demo) the samples; says which in the status line.
pub fn restore_start(app: &mut Explorer, now: Instant) {
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let session_file = app.paths.session.clone().filter(|p| p.is_file());
    let autosave_file = app.paths.autosave.clone().filter(|p| p.is_file());
    let autosaved = match &autosave_file {
        Some(p) => match session::load(p) {
            Ok(s) if !s.is_blank() => Some(s),
            Ok(_) => None,
            Err(e) => {
                // Keep it for the user rather than overwrite it at the next change.
                let kept = match session::set_aside(p) {
                    Ok(aside) => format!("kept as {}", aside.display()),
                    Err(e) => format!("could not move it aside: {e}"),
                };
                app.set_flash(
                    format!("could not read the autosave ({e:#}); {kept}"),
                    true,
                    now,
                );
                None
            }
        },
        None => None,
    };
    let newer = match (&session_file, &autosave_file) {
        (Some(s), Some(a)) => modified(a) > modified(s),
        _ => false,
    };
    match (session_file, autosaved) {
        (Some(path), Some(a)) if newer => {
            app.apply_session(a);
            app.set_flash(
                format!(
                    "restored changes to {} not yet saved (Ctrl-S saves)",
                    path.display()
                ),
                false,
                now,
            );
        }
        (Some(path), autosaved) => match (session::load(&path), autosaved) {
            (Ok(s), _) => {
                app.apply_session(s);
                app.set_flash(format!("opened {}", path.display()), false, now);
            }
            // The file is broken: its autosave is the best there is, and starting blank
            // would let the next save replace it.
            (Err(e), Some(a)) => {
                app.apply_session(a);
                app.set_flash(format!("restored its autosave: {e:#}"), true, now);
            }
            (Err(e), None) => app.set_flash(format!("{e:#}"), true, now),
        },
        (None, Some(a)) => {
            app.apply_session(a);
            app.set_flash("restored your last session".to_string(), false, now);
        }
        (None, None) => {
            if app.demo {
                let (p, rs) = demo_samples();
                app.set_texts(&p, &rs);
            }
        }
    }
    app.rescore_at = Some(now);
}

/// Carries out one effect and files its outcome with the state. Outcomes may ask for more
/// effects (an opened session is scored); they are queued on the state for the caller.
pub fn perform(app: &mut Explorer, scorer: &mut dyn Scorer, effect: Effect, now: Instant) {
    match effect {
        Effect::Score { items, revisions } => {
            let id = scorer.score(items.clone());
            app.score_sent(id, items, revisions, now);
        }
        Effect::Trajectory {
            slot,
            revision,
            prompt,
            response,
        } => {
            let id = scorer.trajectory(slot, prompt, response);
            app.trajectory_sent(id, slot, revision);
        }
        Effect::Forget(slot) => scorer.forget(slot),
        Effect::Reload => {
            if scorer.reload() {
                app.reloading(now);
            } else {
                app.set_flash(
                    "the model cannot be loaded again here; restart the explorer".into(),
                    true,
                    now,
                );
            }
        }
        Effect::Save { path, session } => {
            let result = check_parent(&path).and_then(|()| session::save(&path, &session));
            app.saved(path, result, now);
        }
        Effect::Open { path } => {
            let result = session::load(&path);
            app.opened(path, result, now);
        }
        Effect::Export {
            path,
            export,
            replace,
        } => {
            let result =
                check_parent(&path).and_then(|()| session::export(&path, &export, replace));
            app.exported(path, export, result, now);
        }
        Effect::Autosave { path, session } => {
            if let Err(e) = session::save(&path, &session) {
                app.set_flash(format!("autosave failed: {e:#}"), true, now);
            }
        }
        Effect::SavePresets { done } => match app.presets.save() {
            Ok(()) => app.set_flash(done, false, now),
            Err(e) => app.set_flash(format!("{e:#}"), true, now),
        },
        Effect::SaveRates => {
            // Only a timing: a failure costs the next start its estimate, nothing more.
            if let Some(p) = super::rates::path_beside(app.paths.autosave.as_deref()) {
                if let Err(e) = app.rates.save(&p) {
                    tracing::warn!("cannot keep the scoring rate: {e:#}");
                }
            }
        }
    }
}

/// Refuses a path whose directory does not exist rather than creating directories the user
/// did not ask for (a typo in a path would otherwise leave a tree of them behind).
pub fn check_parent(path: &std::path::Path) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => return Ok(()),
    };
    if dir.is_dir() {
        Ok(())
    } else {
        anyhow::bail!(
            "the directory {} does not exist; create it first or choose another path",
            dir.display()
        )
    }
}
