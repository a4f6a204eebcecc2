//! Exporting the trajectory shown: the file exactly (header, one row per prefix, quoting, R
//! from `preference::reward` at the dial's direction), refusal of a trajectory that is not for
//! the current text, and asking before an export replaces a file.

use std::path::Path;
use std::time::Instant;

use crossterm::event::{KeyCode, KeyModifiers};

use super::tests::{
    answer_trajectory, fake_trajectory, flash, key, labels, press, scored_app, screen, type_text,
    FakeScorer,
};
use super::*;
use crate::preference::{self, Direction};

const PROMPT: &str = "Greet them.";
/// Cut after every word: `Say`, ` "hi",`, ` then`, `\nwave.`; a comma, quotes and a line break.
const RESPONSE: &str = "Say \"hi\", then\nwave.";

fn alt_e(app: &mut App, t: Instant) {
    press(app, KeyCode::Char('e'), KeyModifiers::ALT, t);
}

/// The path box's text.
fn path_box(app: &App) -> Option<String> {
    match &app.overlay {
        Some(Overlay::Input { editor, .. }) => Some(editor.lines().join("")),
        _ => None,
    }
}

/// Replaces the open path box's text with `path` and accepts it.
fn accept_path(app: &mut App, path: &Path, t: Instant) {
    assert!(path_box(app).is_some(), "no path box: {:?}", app.overlay);
    press(app, KeyCode::Char('a'), KeyModifiers::CONTROL, t);
    key(app, KeyCode::Backspace, t);
    type_text(app, &path.display().to_string(), t);
    key(app, KeyCode::Enter, t);
}

/// Candidate A scored, the trajectory view showing its prefix scores, the dial at 30°.
fn shown() -> (App, FakeScorer, Instant) {
    let (mut app, scorer, t) = scored_app(PROMPT, &[RESPONSE, "Hello."]);
    app.apply(Action::SetView(View::Trajectory), t);
    let id = scorer.trajectories.borrow()[0].0;
    answer_trajectory(&mut app, &scorer, id, t);
    app.apply(Action::SetAngle(30.0), t);
    assert!(matches!(app.trajectory_shown(), TrajectoryShown::Ready(_)));
    (app, scorer, t)
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_trajectory_shown_exports_as_csv_with_r_at_the_current_direction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("traj.csv");
    let (mut app, _scorer, t) = shown();
    alt_e(&mut app, t);
    assert_eq!(path_box(&app).as_deref(), Some("dpa-trajectory-A.csv"));
    accept_path(&mut app, &path, t);
    let text = std::fs::read_to_string(&path).expect("exported");

    // R from the one function that computes it, at the dial's 30°, worked out here anew.
    let unit = Direction::angle(30.0).resolve(&labels()).unwrap();
    let points = fake_trajectory(PROMPT, RESPONSE);
    let prefixes = ["Say", "\" \"\"hi\"\",\"", " then", "\"\nwave.\""];
    assert_eq!(points.len(), prefixes.len());
    let mut expected = format!("end,prefix,{},weighted\n", labels().join(","));
    for (p, prefix) in points.iter().zip(prefixes) {
        let scores: Vec<String> = p
            .scores
            .iter()
            .map(|&v| preference::shortest(v).to_string())
            .collect();
        let r = preference::reward(&unit, &p.scores).unwrap();
        expected.push_str(&format!("{},{prefix},{},{r}\n", p.end, scores.join(",")));
    }
    assert_eq!(text, expected);
    assert_eq!(points.last().unwrap().end, RESPONSE.len());
    // The direction on the dial is the one used: at 0° the same file would differ.
    let at_zero = Direction::angle(0.0).resolve(&labels()).unwrap();
    let r0 = preference::reward(&at_zero, &points[0].scores).unwrap();
    assert!(!text.contains(&format!(",{r0}\n")), "{text}");
    assert!(
        flash(&app).contains("exported the trajectory of A (4 points) as CSV"),
        "{}",
        flash(&app)
    );
    assert_eq!(files_in(dir.path()), ["traj.csv"], "no temporary file left");
}

#[test]
fn a_trajectory_not_for_the_current_text_is_not_exported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("traj.csv");
    // Elsewhere than the trajectory view there is nothing shown to export.
    let (mut app, scorer, t) = scored_app(PROMPT, &[RESPONSE]);
    alt_e(&mut app, t);
    assert!(app.overlay.is_none());
    assert!(flash(&app).contains("view is not shown"), "{}", flash(&app));
    // While it computes, neither.
    app.apply(Action::SetView(View::Trajectory), t);
    alt_e(&mut app, t);
    assert!(app.overlay.is_none());
    assert!(flash(&app).contains("still computing"), "{}", flash(&app));
    let id = scorer.trajectories.borrow()[0].0;
    answer_trajectory(&mut app, &scorer, id, t);

    // Edited since: the points belong to the old text.
    app.apply(Action::Focus(Focus::Response), t);
    type_text(&mut app, " Bye.", t);
    alt_e(&mut app, t);
    assert!(app.overlay.is_none());
    assert!(
        flash(&app).starts_with("not exported: the trajectory is for an earlier text of A"),
        "{}",
        flash(&app)
    );

    // Fresh when the box opened, stale by the time the path is accepted.
    let (mut app, _scorer, t) = shown();
    alt_e(&mut app, t);
    assert!(path_box(&app).is_some());
    app.bump_revision(Some(0));
    accept_path(&mut app, &path, t);
    assert!(!path.exists());
    assert!(flash(&app).contains("earlier text"), "{}", flash(&app));

    // Asked whether to replace a file, and the text changed before the yes.
    std::fs::write(&path, "keep me").unwrap();
    let (mut app, _scorer, t) = shown();
    alt_e(&mut app, t);
    accept_path(&mut app, &path, t);
    assert!(matches!(
        app.overlay,
        Some(Overlay::Confirm(Pending::Replace { .. }))
    ));
    app.bump_revision(Some(0));
    key(&mut app, KeyCode::Char('y'), t);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
    assert!(flash(&app).contains("changed meanwhile"), "{}", flash(&app));
}

#[test]
fn an_export_replaces_a_file_only_after_a_yes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("traj.csv");
    std::fs::write(&path, "keep me").unwrap();
    let (mut app, _scorer, t) = shown();
    alt_e(&mut app, t);
    accept_path(&mut app, &path, t);
    assert!(
        matches!(app.overlay, Some(Overlay::Confirm(Pending::Replace { .. }))),
        "{:?}",
        app.overlay
    );
    assert!(screen(&app, 160, 48).contains("exists. Replace it with the trajectory of A"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
    // No: the file stays, and the path typed comes back to be changed.
    key(&mut app, KeyCode::Char('n'), t);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
    assert_eq!(path_box(&app), Some(path.display().to_string()));
    // Yes: replaced, through a temporary file that does not stay.
    key(&mut app, KeyCode::Enter, t);
    key(&mut app, KeyCode::Char('y'), t);
    assert!(app.overlay.is_none());
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("end,prefix,"), "{text}");
    assert_eq!(files_in(dir.path()), ["traj.csv"]);

    // The scores export asks the same way.
    press(&mut app, KeyCode::Char('e'), KeyModifiers::CONTROL, t);
    accept_path(&mut app, &path, t);
    assert!(matches!(
        app.overlay,
        Some(Overlay::Confirm(Pending::Replace { .. }))
    ));
    key(&mut app, KeyCode::Esc, t);
    key(&mut app, KeyCode::Esc, t);
    assert!(app.overlay.is_none());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);

    // Into a directory that does not exist: refused, nothing created.
    let missing = dir.path().join("nonexistent");
    alt_e(&mut app, t);
    accept_path(&mut app, &missing.join("t.csv"), t);
    assert!(!missing.exists());
    assert!(flash(&app).contains("does not exist"), "{}", flash(&app));
}
