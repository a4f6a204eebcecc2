//! The one place that turns key presses and mouse events into actions. Focus decides: in an
//! editor every printable key is text (a `q` or `?` typed there is a character); commands
//! there use Ctrl, Alt or function keys.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::{Position, Rect};
use ratatui_textarea::Input;

use super::explorer::{Action, Explorer as App, Overlay};
use super::layout::{self, inner};
use super::state::{Axis, DialMode, Drag, Focus, View};
use super::widgets::{candidates, dial, ranking, tabs};

pub use super::keymap::HELP;

fn ctrl(k: &KeyEvent) -> bool {
    k.modifiers.contains(KeyModifiers::CONTROL)
}

fn alt(k: &KeyEvent) -> bool {
    k.modifiers.contains(KeyModifiers::ALT)
}

fn shift(k: &KeyEvent) -> bool {
    k.modifiers.contains(KeyModifiers::SHIFT)
}

/// What a key press means in the app's current state.
pub fn key_action(app: &App, key: KeyEvent) -> Action {
    use KeyCode::*;
    // Quitting works from everywhere, overlays included.
    if ctrl(&key) && matches!(key.code, Char('q') | Char('c')) {
        return Action::Quit;
    }
    if let Some(overlay) = &app.overlay {
        return overlay_key(overlay, key);
    }
    // Every F-key has an Alt chord, for terminals (and multiplexers) that eat F-keys.
    if alt(&key) && !ctrl(&key) {
        if let Char(c) = key.code {
            let action = match c.to_ascii_lowercase() {
                'h' => Some(Action::ShowHelp),
                's' => Some(Action::ToggleScale),
                'v' => Some(Action::NextView),
                'm' => Some(Action::ToggleDialMode),
                'r' => Some(Action::RescoreNow),
                'p' => Some(Action::OpenPresets),
                'd' => Some(Action::DeleteCandidate),
                'u' => Some(Action::UndoDelete),
                'n' => Some(Action::NewSession),
                'e' => Some(Action::ExportTrajectory),
                _ => None,
            };
            if let Some(a) = action {
                return a;
            }
        }
    }
    match key.code {
        F(1) => return Action::ShowHelp,
        Tab => return Action::FocusNext,
        BackTab => return Action::FocusPrev,
        F(2) => return Action::ToggleScale,
        F(3) => return Action::NextView,
        F(4) => return Action::ToggleDialMode,
        F(5) => return Action::RescoreNow,
        F(6) => return Action::OpenPresets,
        F(7) => return Action::NewCandidate,
        F(8) => return Action::DeleteCandidate,
        Char('n') if ctrl(&key) => return Action::NewCandidate,
        Char('s') if ctrl(&key) => return Action::SaveSession,
        Char('o') if ctrl(&key) => return Action::OpenSession,
        Char('e') if ctrl(&key) => return Action::Export,
        Up if alt(&key) => return Action::StepCandidate(-1),
        Down if alt(&key) => return Action::StepCandidate(1),
        PageUp if ctrl(&key) => return Action::StepCandidate(-1),
        PageDown if ctrl(&key) => return Action::StepCandidate(1),
        Char(c @ '1'..='9') if alt(&key) => {
            return Action::SelectCandidate(c as usize - '1' as usize)
        }
        _ => {}
    }
    if app.focus.is_editor() {
        editor_key(key)
    } else {
        dial_key(app, key)
    }
}

fn editor_key(key: KeyEvent) -> Action {
    use KeyCode::*;
    match key.code {
        Esc => Action::Focus(Focus::Dial),
        Char('z') if ctrl(&key) => Action::Undo,
        Char('y') if ctrl(&key) => Action::Redo,
        Char('a') if ctrl(&key) => Action::SelectAll,
        Char('v') if ctrl(&key) => Action::PasteYank,
        // Copy without Ctrl-C, which quits.
        Char('c') if alt(&key) => Action::Edit(Input {
            key: ratatui_textarea::Key::Copy,
            ..Input::default()
        }),
        _ => Action::Edit(Input::from(key)),
    }
}

fn dial_key(app: &App, key: KeyEvent) -> Action {
    use KeyCode::*;
    let weights = app.dial.mode == DialMode::Weights;
    let fine = shift(&key);
    match key.code {
        Left | Right => {
            let sign = if key.code == Right { 1.0 } else { -1.0 };
            match (weights, fine) {
                (false, false) => Action::Turn(5.0 * sign),
                (false, true) => Action::Turn(sign),
                (true, false) => Action::AdjustWeight(0.1 * sign),
                (true, true) => Action::AdjustWeight(0.01 * sign),
            }
        }
        Up if weights => Action::WeightCursor(-1),
        Down if weights => Action::WeightCursor(1),
        Up | Char('[') => Action::StepCandidate(-1),
        Down | Char(']') => Action::StepCandidate(1),
        Char('0') => Action::ResetDirection,
        // The plane's axes: in weights mode the attribute under the cursor goes there.
        Char('x') if weights => Action::AxisAtCursor(Axis::X),
        Char('y') if weights => Action::AxisAtCursor(Axis::Y),
        Char('x') => Action::StepAxis(Axis::X, 1),
        Char('y') => Action::StepAxis(Axis::Y, 1),
        Char('X') => Action::StepAxis(Axis::X, -1),
        Char('Y') => Action::StepAxis(Axis::Y, -1),
        Char('g') => Action::AdoptModelDirection,
        Char(c @ '1'..='9') => Action::SelectCandidate(c as usize - '1' as usize),
        Enter | Char('e') => Action::Focus(Focus::Response),
        Char('p') => Action::OpenPresets,
        Char('m') => Action::ToggleDialMode,
        Char('h') => Action::ToggleScale,
        Char('v') => Action::NextView,
        Char('r') => Action::RescoreNow,
        Char('n') => Action::NewCandidate,
        Char('d') | Delete => Action::DeleteCandidate,
        Char('u') => Action::UndoDelete,
        Char('z') if ctrl(&key) => Action::UndoDelete,
        Char('?') => Action::ShowHelp,
        // A letter typed here was most likely meant for an editor: say where typing goes
        // rather than act on it (a stray `q` once quit at once).
        Char('q') => {
            Action::Tell("Ctrl-Q quits; the dial has focus (Enter or e edits the response)")
        }
        Char(_) if !ctrl(&key) && !alt(&key) => {
            Action::Tell("the dial has focus: Enter or e edits the response, Tab the prompt")
        }
        _ => Action::None,
    }
}

fn overlay_key(overlay: &Overlay, key: KeyEvent) -> Action {
    use KeyCode::*;
    match overlay {
        Overlay::Help { .. } => match key.code {
            Up | Char('k') => Action::HelpScroll(-1),
            Down | Char('j') => Action::HelpScroll(1),
            PageUp => Action::HelpScroll(-10),
            PageDown | Char(' ') => Action::HelpScroll(10),
            Home => Action::HelpScroll(-10_000),
            Esc | Enter | F(1) | Char('q') | Char('?') => Action::CloseOverlay,
            _ => Action::None,
        },
        Overlay::Presets { .. } => match key.code {
            Up | Char('k') => Action::OverlayMove(-1),
            Down | Char('j') => Action::OverlayMove(1),
            Enter => Action::OverlayAccept,
            Delete | Char('d') => Action::OverlayDelete,
            Char('s') | Char('a') => Action::SavePresetAs,
            Esc | F(6) | Char('q') => Action::CloseOverlay,
            _ => Action::None,
        },
        Overlay::Input { .. } => match key.code {
            Enter => Action::OverlayAccept,
            Esc => Action::CloseOverlay,
            Char('a') if ctrl(&key) => Action::OverlaySelectAll,
            _ => Action::OverlayInput(Input::from(key)),
        },
        // Exactly the keys `view::CONFIRM_DELETE_KEYS` names.
        Overlay::ConfirmDelete { .. } => match key.code {
            Enter | Char('y') | Char('Y') | F(8) => Action::OverlayAccept,
            Char('d') | Char('D') if alt(&key) => Action::OverlayAccept,
            _ => Action::CloseOverlay,
        },
        // Exactly the keys `view::CONFIRM_KEYS` names.
        Overlay::Confirm(_) => match key.code {
            Enter | Char('y') | Char('Y') => Action::OverlayAccept,
            _ => Action::CloseOverlay,
        },
    }
}

fn hit(r: Rect, x: u16, y: u16) -> bool {
    r.contains(Position { x, y })
}

/// What a mouse event means, given where the panels are at the app's terminal size.
pub fn mouse_action(app: &App, m: MouseEvent) -> Action {
    let screen = Rect::new(0, 0, app.size.0, app.size.1);
    let Some(a) = layout::areas(screen) else {
        return Action::None;
    };
    let (x, y) = (m.column, m.row);
    let down = matches!(m.kind, MouseEventKind::Down(MouseButton::Left));
    let dragging = matches!(m.kind, MouseEventKind::Drag(MouseButton::Left));
    let wheel = match m.kind {
        MouseEventKind::ScrollUp => -1,
        MouseEventKind::ScrollDown => 1,
        _ => 0,
    };
    if matches!(m.kind, MouseEventKind::Up(_)) {
        return Action::EndDrag;
    }
    if let Some(overlay) = &app.overlay {
        return match overlay {
            Overlay::Help { .. } if wheel != 0 => Action::HelpScroll(3 * wheel),
            _ => Action::None,
        };
    }
    // A drag that began on the dial keeps turning it wherever the pointer goes.
    if dragging && app.drag == Some(Drag::Dial) {
        let canvas = dial::split(inner(a.dial), app.dial.mode).canvas;
        return dial::angle_at(canvas, x, y)
            .map(Action::SetAngle)
            .unwrap_or(Action::None);
    }
    for (rect, focus) in [(a.prompt, Focus::Prompt), (a.response, Focus::Response)] {
        if hit(rect, x, y) {
            let text = inner(rect);
            if down && hit(text, x, y) {
                return Action::ClickEditor {
                    focus,
                    row: y - text.y,
                    col: x - text.x,
                };
            }
            if down {
                return Action::Focus(focus);
            }
            if wheel != 0 {
                return Action::ScrollEditor {
                    focus,
                    lines: wheel as i16 * 3,
                };
            }
            return Action::None;
        }
    }
    if hit(a.tabs, x, y) {
        if wheel != 0 {
            return Action::StepCandidate(wheel);
        }
        if down {
            let names: Vec<&str> = app.candidates.iter().map(|c| c.name.as_str()).collect();
            return candidates::tab_at(&names, app.selected, a.tabs, x)
                .map(Action::SelectCandidate)
                .unwrap_or(Action::None);
        }
        return Action::None;
    }
    if hit(a.dial, x, y) {
        let dial::Parts { canvas, list, .. } = dial::split(inner(a.dial), app.dial.mode);
        if app.dial.mode == DialMode::Angle {
            if wheel != 0 {
                return Action::Turn(-(wheel as f64));
            }
            if down && hit(canvas, x, y) {
                if let Some(deg) = dial::angle_at(canvas, x, y) {
                    return Action::StartDragAt(deg);
                }
                return Action::Focus(Focus::Dial);
            }
        } else {
            if wheel != 0 {
                return Action::WeightCursor(wheel);
            }
            if down && hit(list, x, y) {
                let first =
                    dial::weights_scroll(list.height, app.dial.weights.len(), app.dial.cursor);
                return Action::SelectWeight(first + (y - list.y) as usize);
            }
        }
        if down {
            return Action::Focus(Focus::Dial);
        }
        return Action::None;
    }
    let ranking_rect = a.ranking.or((app.view == View::Ranking).then_some(a.panel));
    if let Some(r) = ranking_rect.filter(|r| hit(*r, x, y)) {
        if wheel != 0 {
            return Action::StepCandidate(wheel);
        }
        if down {
            if a.ranking.is_none() {
                if let Some(v) = tabs::tab_at(r, false, x, y) {
                    return Action::SetView(v);
                }
            }
            if let Some(rank) = ranking::row_at(inner(r), y) {
                return Action::SelectRank(rank);
            }
        }
        return Action::None;
    }
    if hit(a.panel, x, y) && down {
        if let Some(v) = tabs::tab_at(a.panel, a.ranking.is_some(), x, y) {
            return Action::SetView(v);
        }
    }
    Action::None
}
