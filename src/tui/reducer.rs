//! The reducer: applies an action or a tick to the state and returns the effects to carry
//! out. Does no I/O. Called by the driver in `app.rs`.

use std::path::PathBuf;
use std::time::Instant;

use ratatui::style::Style;
use ratatui_textarea::{CursorMove, Key, Scrolling, TextArea};

use crate::preference::Preset;

use super::effects::Effect;
use super::explorer::*;
use super::session;
use super::state::*;

/// The path box an export's path was typed in.
fn export_purpose(export: &session::Export) -> InputPurpose {
    match export {
        session::Export::Scores(_) => InputPurpose::Export,
        session::Export::Trajectory(_) => InputPurpose::ExportTrajectory,
    }
}

impl Explorer {
    /// Applies an action; returns the I/O to carry out.
    pub fn apply(&mut self, action: Action, now: Instant) -> Vec<Effect> {
        self.reduce(action, now);
        self.request_trajectory();
        std::mem::take(&mut self.effects)
    }

    /// Applies an event that is not a key or mouse press (those become actions in `keys`);
    /// returns the I/O to carry out.
    pub fn event(&mut self, event: Event, now: Instant) -> Vec<Effect> {
        match event {
            Event::Key(_) | Event::Mouse(_) => {}
            Event::Paste(text) => self.paste(&text, now),
            Event::Resize(w, h) => self.size = (w, h),
            Event::Engine(e) => self.engine_event(e, now),
            Event::Tick => self.tick(now),
        }
        self.request_trajectory();
        std::mem::take(&mut self.effects)
    }

    /// The autosave as an effect, if there is an autosave file.
    pub fn autosave(&mut self) -> Option<Effect> {
        self.autosave_at = None;
        let path = self.paths.autosave.clone()?;
        Some(Effect::Autosave {
            path,
            session: self.session(),
        })
    }

    fn tick(&mut self, now: Instant) {
        if self.rescore_at.is_some_and(|t| t <= now) {
            self.rescore_at = None;
            self.request_scores(false, now);
        }
        if self.flash.as_ref().is_some_and(|f| f.until <= now) {
            self.flash = None;
        }
        if self.autosave_at.is_some_and(|t| t <= now) {
            if let Some(e) = self.autosave() {
                self.effects.push(e);
            }
        }
        self.spinner = self.spinner.wrapping_add(1);
    }

    /// The text in the `focus` editor changed: its scores are stale, rescore after a pause,
    /// autosave soon.
    pub(crate) fn edited(&mut self, focus: Focus, now: Instant) {
        match focus {
            Focus::Prompt => self.bump_revision(None),
            _ => self.bump_revision(Some(self.selected)),
        }
        self.rescore_at = Some(now + DEBOUNCE);
        self.changed(now);
    }

    /// Something worth keeping changed.
    pub(crate) fn changed(&mut self, now: Instant) {
        self.unsaved = true;
        if self.autosave_at.is_none() {
            self.autosave_at = Some(now + AUTOSAVE_DELAY);
        }
    }

    fn paste(&mut self, text: &str, now: Instant) {
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        if let Some(Overlay::Input { editor, .. }) = &mut self.overlay {
            editor.insert_str(text.replace('\n', " "));
            return;
        }
        if self.overlay.is_some() {
            return;
        }
        match self.focus {
            Focus::Prompt | Focus::Response => {
                let editor = self.editor_mut(self.focus);
                let held: usize = editor.lines().iter().map(|l| l.len() + 1).sum();
                if held.saturating_add(text.len()) > session::MAX_TEXT_BYTES {
                    let limit = session::MAX_TEXT_BYTES >> 10;
                    self.set_flash(
                        format!("not pasted: a text holds at most {limit} KiB"),
                        true,
                        now,
                    );
                } else if editor.insert_str(&text) {
                    self.edited(self.focus, now);
                }
            }
            Focus::Dial => self.set_flash(
                "paste goes into an editor: Tab to the prompt or response first".into(),
                false,
                now,
            ),
        }
    }

    fn reduce(&mut self, action: Action, now: Instant) {
        match action {
            Action::None => {}
            Action::Quit => self.quit = true,
            Action::ShowHelp => self.overlay = Some(Overlay::Help { scroll: 0 }),
            Action::CloseOverlay => {
                if let Some(Overlay::Confirm(Pending::Replace { path, export })) =
                    self.overlay.take()
                {
                    // Not replacing: back to the path as typed, to choose another.
                    self.open_input_with(export_purpose(&export), path.display().to_string());
                    self.set_flash(format!("{} left as it was", path.display()), false, now);
                }
            }
            Action::FocusNext => self.set_focus(match self.focus {
                Focus::Prompt => Focus::Response,
                Focus::Response => Focus::Dial,
                Focus::Dial => Focus::Prompt,
            }),
            Action::FocusPrev => self.set_focus(match self.focus {
                Focus::Prompt => Focus::Dial,
                Focus::Response => Focus::Prompt,
                Focus::Dial => Focus::Response,
            }),
            Action::Focus(f) => self.set_focus(f),
            Action::ToggleScale => {
                let has_view =
                    crate::model::known::lookup(&self.labels).is_some_and(|k| k.helpsteer_0_100);
                if !has_view {
                    self.set_flash(
                        "this model's scores are shown as they come: only DPA's 0–100 has a \
                         HelpSteer 0–4 view"
                            .into(),
                        false,
                        now,
                    );
                    return;
                }
                self.scale = match self.scale {
                    Scale::Raw => Scale::HelpSteer,
                    Scale::HelpSteer => Scale::Raw,
                }
            }
            Action::NextView => {
                // Cycle through the pages the panel offers at this size.
                let elsewhere = super::layout::is_wide(self.size);
                let pages = super::widgets::tabs::pages(elsewhere);
                let shown = super::widgets::tabs::shown(self.view, elsewhere);
                let at = pages.iter().position(|v| *v == shown).unwrap_or(0);
                self.view = pages[(at + 1) % pages.len()];
            }
            Action::SetView(v) => self.view = v,
            Action::ToggleDialMode => {
                self.dial.toggle_mode(&self.labels);
                self.changed(now);
            }
            Action::RescoreNow => {
                if matches!(self.model, ModelState::Failed { .. }) {
                    // Nothing can score until the model loads: try loading it again.
                    self.effects.push(Effect::Reload);
                    return;
                }
                self.rescore_at = None;
                self.request_scores(true, now);
            }
            Action::NewSession => {
                if self.unsaved {
                    self.overlay = Some(Overlay::Confirm(Pending::NewSession));
                } else {
                    self.new_session(now);
                }
            }
            Action::UndoDelete => self.undo_delete(now),
            Action::OverlaySelectAll => {
                if let Some(Overlay::Input { editor, .. }) = &mut self.overlay {
                    editor.select_all();
                }
            }
            Action::Tell(text) => self.set_flash(text.into(), false, now),
            Action::OpenPresets => self.overlay = Some(Overlay::Presets { selected: 0 }),
            Action::NewCandidate if self.candidates.len() >= session::MAX_CANDIDATES => self
                .set_flash(
                    format!("at most {} candidates", session::MAX_CANDIDATES),
                    true,
                    now,
                ),
            Action::NewCandidate => {
                let i = self.add_candidate("");
                self.select(i);
                self.set_focus(Focus::Response);
                self.changed(now);
            }
            Action::DeleteCandidate => {
                let c = self.selected_candidate();
                if c.text().trim().is_empty() {
                    let slot = c.slot;
                    self.delete_candidate(slot, now);
                } else {
                    self.overlay = Some(Overlay::ConfirmDelete { slot: c.slot });
                }
            }
            Action::SelectCandidate(i) => self.select(i),
            Action::StepCandidate(d) => {
                let n = self.candidates.len() as i64;
                self.select((self.selected as i64 + d as i64).rem_euclid(n) as usize);
            }
            Action::SelectRank(r) => {
                // The same order the ranking list draws.
                let order = super::state::order(&self.candidate_views());
                if let Some(&i) = order.get(r) {
                    self.select(i);
                }
            }
            Action::Turn(d) => {
                if self.dial.mode == DialMode::Weights {
                    self.dial.mode = DialMode::Angle;
                }
                self.dial.turn(d);
                self.changed(now);
            }
            Action::SetAngle(d) => {
                self.dial.mode = DialMode::Angle;
                self.dial.set_angle(d);
                self.changed(now);
            }
            Action::WeightCursor(d) => self.dial.move_cursor(d),
            Action::SelectWeight(i) => {
                if i < self.dial.weights.len() {
                    self.dial.cursor = i;
                }
            }
            Action::AdjustWeight(d) => {
                self.dial.adjust_weight(d);
                self.changed(now);
            }
            Action::ResetDirection => {
                match self.dial.mode {
                    DialMode::Angle => self.dial.degrees = 0.0,
                    DialMode::Weights => {
                        self.dial.weights =
                            default_weights(&self.labels, 0.0, self.dial.axes.as_ref())
                    }
                }
                self.changed(now);
            }
            Action::StepAxis(axis, step) => {
                let moved = self.dial.step_axis(axis, step, &self.labels);
                self.axes_moved(moved, now);
            }
            Action::AxisAtCursor(axis) => {
                let moved = self.dial.set_axis(axis, self.dial.cursor, &self.labels);
                self.axes_moved(moved, now);
            }
            Action::AdoptModelDirection => self.adopt_model_direction(now),
            Action::SaveSession => self.open_input(InputPurpose::SaveSession),
            Action::OpenSession => self.open_input(InputPurpose::OpenSession),
            Action::Export => self.open_input(InputPurpose::Export),
            Action::ExportTrajectory => match self.trajectory_export() {
                Ok(_) => self.open_input(InputPurpose::ExportTrajectory),
                Err(why) => self.set_flash(format!("not exported: {why}"), false, now),
            },
            Action::Edit(input) => {
                if self.focus.is_editor() {
                    let focus = self.focus;
                    if self.editor_mut(focus).input(input) {
                        self.edited(focus, now);
                    }
                }
            }
            Action::Undo | Action::Redo | Action::SelectAll | Action::PasteYank => {
                if self.focus.is_editor() {
                    let focus = self.focus;
                    let e = self.editor_mut(focus);
                    let changed = match action {
                        Action::Undo => e.undo(),
                        Action::Redo => e.redo(),
                        Action::PasteYank => e.paste(),
                        _ => {
                            e.select_all();
                            false
                        }
                    };
                    if changed {
                        self.edited(focus, now);
                    }
                }
            }
            Action::ClickEditor { focus, row, col } => {
                self.set_focus(focus);
                let e = self.editor_mut(focus);
                e.cancel_selection();
                let (top, left) = e.scroll_offset();
                let at =
                    e.screen_to_data(row as usize + top as usize, col as usize + left as usize);
                e.move_cursor(CursorMove::Jump(
                    at.0.min(u16::MAX as usize) as u16,
                    at.1.min(u16::MAX as usize) as u16,
                ));
            }
            Action::ScrollEditor { focus, lines } => {
                self.editor_mut(focus).scroll(Scrolling::Delta {
                    rows: lines,
                    cols: 0,
                });
            }
            Action::StartDragAt(d) => {
                self.set_focus(Focus::Dial);
                self.drag = Some(Drag::Dial);
                self.dial.mode = DialMode::Angle;
                self.dial.set_angle(d);
                self.changed(now);
            }
            Action::EndDrag => self.drag = None,
            Action::HelpScroll(d) => {
                if let Some(Overlay::Help { scroll }) = &mut self.overlay {
                    *scroll = (*scroll as i32 + d).clamp(0, u16::MAX as i32) as u16;
                }
            }
            Action::OverlayMove(d) => {
                let n = self.preset_list().len() as i64;
                if let Some(Overlay::Presets { selected }) = &mut self.overlay {
                    if n > 0 {
                        *selected = (*selected as i64 + d as i64).rem_euclid(n) as usize;
                    }
                }
            }
            Action::OverlayAccept => self.overlay_accept(now),
            Action::OverlayDelete => self.delete_preset(now),
            Action::OverlayInput(input) => {
                if let Some(Overlay::Input { editor, .. }) = &mut self.overlay {
                    // One line only: Enter is handled as accept before it gets here.
                    if !matches!(input.key, Key::Enter) {
                        editor.input(input);
                    }
                }
            }
            Action::SavePresetAs => self.open_input(InputPurpose::PresetName),
        }
    }

    fn open_input(&mut self, purpose: InputPurpose) {
        let text = match purpose {
            InputPurpose::SaveSession | InputPurpose::OpenSession => self
                .paths
                .session
                .clone()
                .unwrap_or_else(|| PathBuf::from("dpa-session.json"))
                .display()
                .to_string(),
            InputPurpose::Export => "dpa-scores.jsonl".to_string(),
            InputPurpose::ExportTrajectory => {
                format!("dpa-trajectory-{}.csv", self.selected_candidate().name)
            }
            InputPurpose::PresetName => String::new(),
        };
        self.open_input_with(purpose, text);
    }

    /// Opens the one-line box for `purpose` holding `text`.
    fn open_input_with(&mut self, purpose: InputPurpose, text: String) {
        let mut editor = TextArea::from([text]);
        editor.set_cursor_line_style(Style::default());
        editor.move_cursor(CursorMove::End);
        self.overlay = Some(Overlay::Input {
            purpose,
            editor: Box::new(editor),
        });
    }

    fn delete_preset(&mut self, now: Instant) {
        let Some(Overlay::Presets { selected }) = self.overlay else {
            return;
        };
        let builtin = super::direction::builtin_presets(&self.labels).len();
        if selected < builtin {
            self.set_flash(
                "the model's presets are built in; only your own can be deleted".into(),
                false,
                now,
            );
            return;
        }
        let removed = self.presets.list.remove(selected - builtin);
        self.overlay = Some(Overlay::Presets {
            selected: selected.saturating_sub(1),
        });
        self.effects.push(Effect::SavePresets {
            done: format!("deleted preset {:?}", removed.name),
        });
    }

    fn overlay_accept(&mut self, now: Instant) {
        match self.overlay.take() {
            Some(Overlay::Presets { selected }) => {
                if let Some((p, _)) = self.preset_list().get(selected) {
                    if self.dial.set_direction(&p.direction, &self.labels) {
                        self.set_flash(format!("direction: {}", p.name), false, now);
                        self.changed(now);
                    } else {
                        self.set_flash(
                            format!("preset {:?} does not fit this model's attributes", p.name),
                            true,
                            now,
                        );
                    }
                }
            }
            Some(Overlay::ConfirmDelete { slot }) => self.delete_candidate(slot, now),
            Some(Overlay::Confirm(pending)) => self.confirmed(pending, now),
            Some(Overlay::Input { purpose, editor }) => {
                let text = editor.lines().join("").trim().to_string();
                if text.is_empty() {
                    // Nothing typed: keep the box open.
                    self.overlay = Some(Overlay::Input { purpose, editor });
                    return;
                }
                self.input_accepted(purpose, text, now);
            }
            other => self.overlay = other,
        }
    }

    fn input_accepted(&mut self, purpose: InputPurpose, text: String, now: Instant) {
        let path = PathBuf::from(&text);
        match purpose {
            InputPurpose::SaveSession => self.effects.push(Effect::Save {
                path,
                session: self.session(),
            }),
            InputPurpose::OpenSession => {
                if self.unsaved {
                    self.overlay = Some(Overlay::Confirm(Pending::Open(path)));
                } else {
                    self.effects.push(Effect::Open { path });
                }
            }
            InputPurpose::Export => self.effects.push(Effect::Export {
                path,
                export: session::Export::Scores(self.export_rows()),
                replace: false,
            }),
            InputPurpose::ExportTrajectory => match self.trajectory_export() {
                Ok(t) => self.effects.push(Effect::Export {
                    path,
                    export: session::Export::Trajectory(t),
                    replace: false,
                }),
                Err(why) => self.set_flash(format!("not exported: {why}"), true, now),
            },
            InputPurpose::PresetName => {
                let direction = self.dial.direction(&self.labels);
                self.presets.upsert(Preset {
                    name: text.clone(),
                    direction,
                });
                self.effects.push(Effect::SavePresets {
                    done: format!("saved preset {text:?}"),
                });
                let selected = self
                    .preset_list()
                    .iter()
                    .position(|(p, _)| p.name == text)
                    .unwrap_or(0);
                self.overlay = Some(Overlay::Presets { selected });
            }
        }
    }

    /// The user said yes to replacing unsaved work.
    fn confirmed(&mut self, pending: Pending, now: Instant) {
        match pending {
            Pending::Open(path) => self.effects.push(Effect::Open { path }),
            Pending::NewSession => self.new_session(now),
            Pending::Replace { path, export } => {
                // Only points for the text still on screen are written.
                if let session::Export::Trajectory(t) = &export {
                    let current = self
                        .candidates
                        .iter()
                        .any(|c| c.slot == t.slot && c.revision == t.revision);
                    if !current {
                        let why = format!("the text of {} changed meanwhile", t.candidate);
                        self.set_flash(format!("not exported: {why}"), true, now);
                        return;
                    }
                }
                self.effects.push(Effect::Export {
                    path,
                    export,
                    replace: true,
                });
            }
        }
    }

    /// Starts over with an empty prompt and one empty candidate, detached from any file.
    fn new_session(&mut self, now: Instant) {
        self.set_texts("", &[]);
        self.paths.session = None;
        self.deleted = None;
        self.set_focus(Focus::Prompt);
        self.changed(now);
        self.unsaved = false;
        self.set_flash("new session".into(), false, now);
    }

    /// Puts the last deleted candidate back where it was.
    fn undo_delete(&mut self, now: Instant) {
        let Some((index, mut candidate, prompt_revision)) = self.deleted.take() else {
            self.set_flash(
                "nothing to undo: no candidate was deleted".into(),
                false,
                now,
            );
            return;
        };
        if prompt_revision != self.prompt_revision {
            // The prompt changed meanwhile: its scores are for the old prompt.
            candidate.revision = self.new_revision();
        }
        let name = candidate.name.clone();
        // The placeholder left when the last candidate was deleted makes way for it.
        if self.candidates.len() == 1 && self.candidates[0].text().trim().is_empty() {
            let slot = self.candidates.remove(0).slot;
            self.effects.push(Effect::Forget(slot));
        }
        if self.candidates.iter().any(|c| c.name == name) {
            // The name was reused meanwhile; a fresh one keeps names unique.
            let used: Vec<String> = self.candidates.iter().map(|c| c.name.clone()).collect();
            if let Some(n) = (0..).map(candidate_name).find(|n| !used.contains(n)) {
                candidate.name = n;
            }
        }
        let shown = candidate.name.clone();
        self.insert_candidate(index, candidate);
        self.rescore_at = Some(now);
        self.set_flash(format!("restored candidate {shown}"), false, now);
        self.changed(now);
    }

    fn insert_candidate(&mut self, index: usize, candidate: Candidate) {
        let at = index.min(self.candidates.len());
        self.candidates.insert(at, candidate);
        self.selected = at;
        self.apply_focus_styles();
    }

    fn delete_candidate(&mut self, slot: u64, now: Instant) {
        let Some(i) = self.candidates.iter().position(|c| c.slot == slot) else {
            return;
        };
        let removed = self.candidates.remove(i);
        let name = removed.name.clone();
        self.effects.push(Effect::Forget(slot));
        // An empty candidate holds nothing to restore; keep the last one that did.
        let had_text = !removed.text().trim().is_empty();
        if had_text {
            self.deleted = Some((i, removed, self.prompt_revision));
        }
        if self.candidates.is_empty() {
            self.add_candidate("");
        }
        self.selected = self.selected.min(self.candidates.len() - 1);
        if i < self.selected {
            self.selected -= 1;
        }
        self.apply_focus_styles();
        let undo = if had_text {
            " · Alt-U (u on the dial) undoes"
        } else {
            ""
        };
        self.set_flash(format!("deleted candidate {name}{undo}"), false, now);
        self.changed(now);
    }
}
