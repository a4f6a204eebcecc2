//! Draws the explorer: a pure function of the [`App`] state.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget, Wrap};
use ratatui::Frame;

use super::explorer::{Explorer as App, Overlay};
use super::layout::{self, centered, inner, Areas};
use super::state::{CandidateView, DialMode, Focus, ModelState, View};
use super::widgets::bars::AttributeBars;
use super::widgets::candidates::CandidateTabs;
use super::widgets::dial::DialWidget;
use super::widgets::help::Help;
use super::widgets::progress::ModelPanel;
use super::widgets::ranking::RankingList;
use super::widgets::scatter::{Point, Scatter};
use super::widgets::status::{KeyBar, StatusLine};
use super::widgets::sweep::Sweep;
use super::widgets::trajectory::TrajectoryPanel;
use super::widgets::{candidate_color, focus_style, tabs, theme};
use crate::preference::{fmt_angle, plane_fit, PlaneFit};

pub fn view(app: &App, frame: &mut Frame) {
    let area = frame.area();
    let buf = frame.buffer_mut();
    render(app, area, buf);
    theme::degrade(buf, theme::depth());
}

/// Draws the whole screen into `buf`.
pub fn render(app: &App, area: Rect, buf: &mut ratatui::buffer::Buffer) {
    let Some(a) = layout::areas(area) else {
        too_small(area, buf);
        return;
    };
    let views = app.candidate_views();
    let selected = &views[app.selected];
    title_bar(app, a.title, buf);
    editors(app, &views, &a, buf);
    if app.model == ModelState::Ready {
        AttributeBars {
            labels: &app.labels,
            candidate: selected,
            scale: app.scale,
            focus: (app.dial.mode == DialMode::Weights).then_some(app.dial.cursor),
            dpa_scale: crate::model::known::lookup(&app.labels).is_some_and(|k| k.helpsteer_0_100),
        }
        .render(a.bars, buf);
    } else {
        ModelPanel {
            state: &app.model,
            model_name: &app.model_name,
            hint: &app.load_hint,
            eta: app.load_eta,
            first_score: app.first_score_estimate(),
        }
        .render(a.bars, buf);
    }
    let problem = app.unit().err().map(|e| e.to_string());
    DialWidget {
        dial: &app.dial,
        labels: &app.labels,
        candidate: Some(selected),
        focused: app.focus == Focus::Dial,
        problem,
    }
    .render(a.dial, buf);
    let direction = app.dial.direction(&app.labels).describe();
    if let Some(r) = a.ranking {
        let block = Block::bordered().title(" Ranking ");
        let ri = block.inner(r);
        block.render(r, buf);
        RankingList {
            candidates: &views,
            selected: app.selected,
            direction: direction.clone(),
        }
        .render(ri, buf);
    }
    panel(app, &views, &a, direction, buf);
    status(app, selected, a.status, buf);
    overlay(app, area, buf);
}

fn too_small(area: Rect, buf: &mut ratatui::buffer::Buffer) {
    let text = vec![
        Line::styled(
            "Terminal too small",
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Line::raw(format!(
            "{}×{}; the explorer needs at least {}×{}.",
            area.width,
            area.height,
            layout::MIN_WIDTH,
            layout::MIN_HEIGHT
        )),
        Line::raw("Enlarge the window (Ctrl-Q quits)."),
    ];
    let h = (text.len() as u16).min(area.height);
    let r = Rect {
        y: area.y + area.height.saturating_sub(h) / 2,
        height: h,
        ..area
    };
    Paragraph::new(text)
        .wrap(Wrap { trim: true })
        .alignment(ratatui::layout::Alignment::Center)
        .render(r, buf);
}

fn title_bar(app: &App, area: Rect, buf: &mut ratatui::buffer::Buffer) {
    let mut spans = vec![Span::styled(
        " dpa-explorer ",
        Style::default()
            .fg(Color::Black)
            .bg(Color::Cyan)
            .add_modifier(Modifier::BOLD),
    )];
    if app.demo {
        spans.push(Span::styled(
            " DEMO: tiny model with RANDOM weights — its scores are meaningless ",
            Style::default()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
        ));
    } else {
        spans.push(Span::raw(format!(" {} ", app.model_name)));
    }
    if app.unsaved {
        spans.push(Span::styled(
            " ● unsaved ",
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        ));
    }
    if let Some(p) = &app.paths.session {
        spans.push(Span::styled(
            format!(" session {} ", p.display()),
            Style::default().fg(Color::Gray),
        ));
    }
    let bg = Style::default().bg(Color::Rgb(30, 30, 30));
    let line = Line::from(spans);
    let used = (line.width() as u16).saturating_add(2).min(area.width);
    Paragraph::new(line).style(bg).render(area, buf);
    // The keys for what has focus, right-aligned in what the title leaves.
    KeyBar { keys: key_bar(app) }.render(
        Rect {
            x: area.x + used,
            width: area.width - used,
            ..area
        },
        buf,
    );
}

/// The keys that matter for what has focus now, most useful first.
pub fn key_bar(app: &App) -> &'static [(&'static str, &'static str)] {
    match &app.overlay {
        Some(Overlay::Help { .. }) => &[("↑↓", "scroll"), ("Esc", "close")],
        Some(Overlay::Presets { .. }) => &[
            ("Enter", "apply"),
            ("s", "save current"),
            ("d", "delete"),
            ("Esc", "close"),
        ],
        Some(Overlay::Input { .. }) => {
            &[("Enter", "ok"), ("Ctrl-A", "select all"), ("Esc", "cancel")]
        }
        Some(Overlay::ConfirmDelete { .. }) | Some(Overlay::Confirm(_)) => {
            &[("y", "yes"), ("n Esc", "no")]
        }
        None if app.focus.is_editor() => &[
            ("Esc", "dial"),
            ("Tab", "next"),
            ("Ctrl-S", "save"),
            ("Alt-R", "rescore"),
            ("Ctrl-Q", "quit"),
            ("F1/Alt-H", "keys"),
        ],
        None if app.dial.mode == DialMode::Weights => &[
            ("↑↓", "attribute"),
            ("←→", "weight"),
            ("m", "angle"),
            ("e", "edit"),
            ("Ctrl-Q", "quit"),
            ("?", "keys"),
        ],
        None => &[
            ("←→", "turn"),
            ("↑↓", "candidate"),
            ("e", "edit"),
            ("m", "weights"),
            ("Ctrl-Q", "quit"),
            ("?", "keys"),
        ],
    }
}

fn editors(app: &App, views: &[CandidateView], a: &Areas, buf: &mut ratatui::buffer::Buffer) {
    let prompt_focus = app.focus == Focus::Prompt;
    let hint = |focused: bool| {
        if focused {
            " Tab next · Esc dial · F1 keys "
        } else {
            ""
        }
    };
    let block = Block::bordered()
        .title(" Prompt ")
        .title_bottom(Line::from(hint(prompt_focus)).right_aligned())
        .border_style(focus_style(prompt_focus));
    block.render(a.prompt, buf);
    (&app.prompt).render(inner(a.prompt), buf);

    CandidateTabs {
        candidates: views,
        selected: app.selected,
    }
    .render(a.tabs, buf);

    let response_focus = app.focus == Focus::Response;
    let c = &views[app.selected];
    let title = Line::from(vec![
        Span::raw(" Response "),
        Span::styled(
            c.name.clone(),
            Style::default()
                .fg(candidate_color(app.selected))
                .add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!(" ({} of {}) ", app.selected + 1, views.len())),
    ]);
    let block = Block::bordered()
        .title(title)
        .title_bottom(Line::from(hint(response_focus)).right_aligned())
        .border_style(focus_style(response_focus));
    block.render(a.response, buf);
    (&app.selected_candidate().editor).render(inner(a.response), buf);
}

/// The candidates that have scores, as points in the dial's plane.
fn points(app: &App, views: &[CandidateView]) -> Vec<Point> {
    let axes = app.plane_axes();
    views
        .iter()
        .filter_map(|c| {
            Some(Point {
                index: c.index,
                name: c.name.clone(),
                at: c.point(axes)?,
                freshness: c.freshness.clone(),
                reward: c.reward,
            })
        })
        .collect()
}

/// How the direction lies in the dial's plane: whether a projection there is R.
fn plane(app: &App) -> PlaneFit {
    match (app.dial.mode, app.plane_axes(), app.unit()) {
        (DialMode::Angle, _, _) => PlaneFit::Inside {
            degrees: app.dial.degrees,
        },
        (DialMode::Weights, Some((x, y)), Ok(u)) => plane_fit(&u, x, y),
        _ => PlaneFit::Outside,
    }
}

fn panel(
    app: &App,
    views: &[CandidateView],
    a: &Areas,
    direction: String,
    buf: &mut ratatui::buffer::Buffer,
) {
    let elsewhere = a.ranking.is_some();
    let shown = tabs::shown(app.view, elsewhere);
    let plane = plane(app);
    let subtitle = match shown {
        View::Ranking => String::new(),
        View::Scatter => match app.plane_names() {
            Some((x, y)) => format!(" {x} × {y} "),
            None => String::new(),
        },
        View::Sweep => match plane.exact_degrees() {
            Some(deg) => format!(" θ ∈ [−90°, 90°] · now {}° ", fmt_angle(deg)),
            None => " θ ∈ [−90°, 90°] ".into(),
        },
        View::Trajectory => match views.get(app.selected) {
            Some(c) => format!(" {}: R after each word ", c.name),
            None => String::new(),
        },
    };
    let title = tabs::title_fit(app.view, elsewhere, a.panel.width);
    let mut block = Block::bordered().title(title.clone());
    // The subtitle only where it does not cover the tabs.
    if title.width() + subtitle.chars().count() + 3 <= a.panel.width as usize {
        block = block.title_top(Line::from(subtitle).right_aligned());
    }
    let pi = block.inner(a.panel);
    block.render(a.panel, buf);
    match shown {
        View::Ranking => RankingList {
            candidates: views,
            selected: app.selected,
            direction,
        }
        .render(pi, buf),
        View::Scatter => Scatter {
            points: &points(app, views),
            plane,
            selected: app.selected,
            axes: app.plane_names().unwrap_or_default(),
        }
        .render(pi, buf),
        View::Sweep => Sweep {
            points: &points(app, views),
            plane,
        }
        .render(pi, buf),
        View::Trajectory => TrajectoryPanel {
            shown: &app.trajectory_shown(),
            cost: app.trajectory_note.as_deref(),
        }
        .render(pi, buf),
    }
}

fn status(app: &App, selected: &CandidateView, area: Rect, buf: &mut ratatui::buffer::Buffer) {
    let (device, dtype) = match &app.info {
        Some(i) => (i.device.as_str(), i.dtype.as_str()),
        None => (app.requested_device.as_str(), app.requested_dtype.as_str()),
    };
    // The model's own warnings are shown once already; these are about this input.
    let input_warnings: Vec<String> = selected
        .warnings
        .iter()
        .filter(|w| !app.model_warnings.contains(w))
        .cloned()
        .collect();
    let scoring = app.inflight.as_ref().map(|f| {
        let total = f.computing.unwrap_or(f.items.len()).max(f.answered);
        (f.answered.min(total), total)
    });
    StatusLine {
        model: &app.model,
        model_name: &app.model_name,
        device,
        dtype,
        tokens: selected.tokens,
        truncated: selected.truncated,
        input_warnings: &input_warnings,
        latency: app.latency,
        scoring,
        weight_check: app.weight_check,
        flash: app.flash.as_ref(),
        warnings: &app.model_warnings,
        spinner: app.spinner,
    }
    .render(area, buf);
}

fn overlay(app: &App, area: Rect, buf: &mut ratatui::buffer::Buffer) {
    let Some(o) = &app.overlay else {
        return;
    };
    match o {
        Overlay::Help { scroll } => Help {
            scroll: *scroll,
            warnings: &app.model_warnings,
        }
        .render(area, buf),
        Overlay::Presets { selected } => {
            let list = app.preset_list();
            let h = list.len() as u16 + 5;
            let r = centered(area, 64, h);
            Clear.render(r, buf);
            let block = Block::bordered()
                .title(" Presets ")
                .title_bottom(
                    Line::from(" Enter apply · s save current · d delete · Esc ").right_aligned(),
                )
                .border_style(Style::default().fg(Color::Yellow))
                .style(Style::default().bg(Color::Rgb(20, 20, 30)));
            let ri = block.inner(r);
            block.render(r, buf);
            let mut lines = vec![Line::styled(
                "The paper's examples, then yours:",
                Style::default().fg(Color::Gray),
            )];
            for (i, (p, mine)) in list.iter().enumerate() {
                let mut style = Style::default();
                if i == *selected {
                    style = style.add_modifier(Modifier::REVERSED);
                }
                let tag = if *mine { "yours " } else { "paper " };
                lines.push(Line::from(vec![
                    Span::styled(tag, Style::default().fg(Color::DarkGray)),
                    Span::styled(format!("{:<28}", p.name), style),
                    Span::styled(
                        format!(" {}", p.direction.describe()),
                        Style::default().fg(Color::Gray),
                    ),
                ]));
            }
            if app.presets.path.is_none() {
                lines.push(Line::styled(
                    "(no config directory: your presets last until you quit)",
                    Style::default().fg(Color::DarkGray),
                ));
            }
            Paragraph::new(lines).render(ri, buf);
        }
        Overlay::Input { purpose, editor } => {
            let r = centered(area, 70, 3);
            Clear.render(r, buf);
            let block = Block::bordered()
                .title(format!(" {} ", purpose.title()))
                .title_bottom(Line::from(" Enter ok · Esc cancel ").right_aligned())
                .border_style(Style::default().fg(Color::Yellow));
            let ri = block.inner(r);
            block.render(r, buf);
            editor.render(ri, buf);
        }
        Overlay::ConfirmDelete { slot } => {
            let name = app
                .candidates
                .iter()
                .find(|c| c.slot == *slot)
                .map(|c| c.name.clone())
                .unwrap_or_default();
            confirm_box(
                " Delete candidate ",
                format!("Delete candidate {name} and its text?"),
                CONFIRM_DELETE_KEYS,
                area,
                buf,
            );
        }
        Overlay::Confirm(pending) => {
            confirm_box(pending.title(), pending.question(), CONFIRM_KEYS, area, buf)
        }
    }
}

/// What the delete confirmation says; `keys::overlay_key` accepts exactly these.
pub const CONFIRM_DELETE_KEYS: &str = "y/Enter/F8/Alt-D: delete (Alt-U undoes) · other keys: keep";
/// What the unsaved-changes confirmation says; `keys::overlay_key` accepts exactly these.
pub const CONFIRM_KEYS: &str = "y/Enter: go ahead · other keys (n, Esc): cancel";

fn confirm_box(
    title: &str,
    question: String,
    keys: &str,
    area: Rect,
    buf: &mut ratatui::buffer::Buffer,
) {
    let widest = question.chars().count().max(keys.chars().count()) as u16 + 4;
    let w = widest.min(area.width).min(76);
    let rows = |s: &str| (s.chars().count() as u16).div_ceil(w.saturating_sub(3).max(1));
    // Room for the wrapped text, so the keys line is never cut off.
    let h = rows(&question) + rows(keys) + 2;
    let text = vec![
        Line::raw(question),
        Line::styled(keys, Style::default().fg(Color::Gray)),
    ];
    let r = centered(area, w, h);
    Clear.render(r, buf);
    let block = Block::bordered()
        .title(title)
        .border_style(Style::default().fg(Color::LightRed));
    let ri = block.inner(r);
    block.render(r, buf);
    Paragraph::new(text)
        .wrap(Wrap { trim: true })
        .render(ri, buf);
}
