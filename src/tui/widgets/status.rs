//! The status line: model state, model, device, dtype, tokens, last latency, and a message.

use std::time::Duration;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::clip_left;
use crate::engine::LoadStage;
use crate::tui::state::{Flash, Latency, ModelState, WeightCheck};

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/// The short state word: `downloading 45%`, `loading`, `ready`, `scoring 1/3`, `error`.
pub fn state_text(model: &ModelState, scoring: Option<(usize, usize)>) -> String {
    match model {
        ModelState::Starting => "starting".into(),
        ModelState::Loading(LoadStage::Downloading { bytes, total, .. }) if *total > 0 => {
            format!("downloading {}%", bytes * 100 / total)
        }
        ModelState::Loading(LoadStage::Downloading { .. }) => "downloading".into(),
        ModelState::Loading(LoadStage::Loading { .. }) => "loading".into(),
        ModelState::Loading(LoadStage::Layers { layer, layers, .. }) => {
            format!("loading {layer}/{layers}")
        }
        ModelState::Failed { .. } => "error".into(),
        ModelState::Ready => match scoring {
            Some((done, total)) => format!("scoring {done}/{total}"),
            None => "ready".into(),
        },
    }
}

/// A duration as `850 ms` or `2.4 s`.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

pub struct StatusLine<'a> {
    pub model: &'a ModelState,
    pub model_name: &'a str,
    pub device: &'a str,
    pub dtype: &'a str,
    pub tokens: Option<usize>,
    /// The selected candidate's input was cut to the model's limit.
    pub truncated: bool,
    /// What applies to the selected candidate's input (control tokens, truncation), as the
    /// `score` command reports it.
    pub input_warnings: &'a [String],
    pub latency: Option<Latency>,
    pub scoring: Option<(usize, usize)>,
    /// The kept weights' background check, while it runs.
    pub weight_check: Option<WeightCheck>,
    pub flash: Option<&'a Flash>,
    /// What the model's loading reported (unknown checkpoint tensors, a cached copy used
    /// offline): kept in sight while the model is in use.
    pub warnings: &'a [String],
    pub spinner: u64,
}

impl Widget for StatusLine<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let state = state_text(self.model, self.scoring);
        let busy = !matches!(self.model, ModelState::Ready | ModelState::Failed { .. })
            || self.scoring.is_some();
        let badge = match self.model {
            ModelState::Failed { .. } => Style::default().bg(Color::Red).fg(Color::White),
            ModelState::Ready if self.scoring.is_none() => {
                Style::default().bg(Color::Green).fg(Color::Black)
            }
            _ => Style::default().bg(Color::Yellow).fg(Color::Black),
        }
        .add_modifier(Modifier::BOLD);
        let spin = if busy {
            format!(
                "{} ",
                SPINNER[(self.spinner % SPINNER.len() as u64) as usize]
            )
        } else {
            String::new()
        };
        let sep = || Span::styled(" │ ", Style::default().fg(Color::DarkGray));
        let mut spans = vec![Span::styled(format!(" {spin}{state} "), badge)];
        if let Some(check) = self.weight_check {
            // Why a first score may wait after the model is ready (a cold page cache).
            let left = check.left.map_or(String::new(), |d| {
                format!(", about {} s left", d.as_secs_f64().ceil() as u64)
            });
            spans.push(Span::styled(
                format!(
                    " checking kept weights {}%{left} ",
                    check.checked.saturating_mul(100) / check.total.max(1)
                ),
                Style::default().bg(Color::Yellow).fg(Color::Black),
            ));
        }
        spans.extend([
            Span::raw(" "),
            Span::raw(clip_left(self.model_name, 48)),
            sep(),
            Span::raw(self.device.to_string()),
            sep(),
            Span::raw(self.dtype.to_string()),
            sep(),
            Span::raw(match self.tokens {
                Some(t) => format!("{t} tokens"),
                None => "– tokens".into(),
            }),
        ]);
        // Next to the token count, where the score's input is described: what was cut or
        // read as a control token comes before everything optional.
        if self.truncated {
            spans.push(Span::styled(
                " ✂ start cut",
                Style::default()
                    .fg(Color::Yellow)
                    .add_modifier(Modifier::BOLD),
            ));
        }
        for w in self.input_warnings {
            spans.push(sep());
            spans.push(Span::styled(
                format!("⚠ {w}"),
                Style::default().fg(Color::Yellow),
            ));
        }
        spans.extend([
            sep(),
            Span::raw(match self.latency {
                Some(Latency { cached: true, .. }) => "last: cached".to_string(),
                Some(l) => format!("last: {}", fmt_duration(l.elapsed)),
                None => "last: –".into(),
            }),
        ]);
        if !self.warnings.is_empty() && self.flash.is_none() {
            spans.push(sep());
            spans.push(Span::styled(
                format!("⚠ {}", self.warnings.join(" · ")),
                Style::default().fg(Color::Yellow),
            ));
        }
        if let Some(f) = self.flash {
            spans.push(sep());
            let style = if f.error {
                Style::default()
                    .fg(Color::LightRed)
                    .add_modifier(Modifier::BOLD)
            } else {
                Style::default().fg(Color::LightCyan)
            };
            spans.push(Span::styled(f.text.clone(), style));
        }
        let line = Line::from(spans);
        let line_w = line.width() as u16;
        let hint = Line::from(Span::styled(
            " F1 help · Ctrl-Q quit ",
            Style::default().fg(Color::DarkGray),
        ));
        Paragraph::new(line)
            .style(Style::default().bg(Color::Rgb(30, 30, 30)))
            .render(area, buf);
        let w = hint.width() as u16;
        if line_w + w < area.width {
            buf.set_line(area.right() - w, area.y, &hint, w);
        }
    }
}

/// The keys for what has focus: `key action · key action`, dropping from the end what does
/// not fit.
pub struct KeyBar {
    pub keys: &'static [(&'static str, &'static str)],
}

impl Widget for KeyBar {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.width == 0 || area.height == 0 {
            return;
        }
        let key = Style::default()
            .fg(Color::LightCyan)
            .add_modifier(Modifier::BOLD);
        let what = Style::default().fg(Color::Gray);
        let mut spans: Vec<Span> = Vec::new();
        let mut width = 0usize;
        for (i, (k, w)) in self.keys.iter().enumerate() {
            let sep = if i == 0 { "" } else { " · " };
            let add = sep.chars().count() + k.chars().count() + 1 + w.chars().count();
            if width + add > area.width as usize {
                break;
            }
            width += add;
            spans.push(Span::styled(sep, Style::default().fg(Color::DarkGray)));
            spans.push(Span::styled(*k, key));
            spans.push(Span::styled(format!(" {w}"), what));
        }
        let x = area.right().saturating_sub(width as u16 + 1).max(area.x);
        buf.set_line(x, area.y, &Line::from(spans), area.right() - x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_read_as_the_issue_lists_them() {
        let dl = ModelState::Loading(LoadStage::Downloading {
            file: "m.safetensors".into(),
            index: 1,
            files: 3,
            bytes: 45,
            total: 100,
        });
        assert_eq!(state_text(&dl, None), "downloading 45%");
        assert_eq!(
            state_text(
                &ModelState::Loading(LoadStage::Loading { what: "x".into() }),
                None
            ),
            "loading"
        );
        assert_eq!(state_text(&ModelState::Ready, None), "ready");
        assert_eq!(state_text(&ModelState::Ready, Some((1, 3))), "scoring 1/3");
        assert_eq!(
            state_text(&ModelState::Failed { error: "x".into() }, None),
            "error"
        );
        assert_eq!(fmt_duration(Duration::from_millis(850)), "850 ms");
        assert_eq!(fmt_duration(Duration::from_millis(2400)), "2.4 s");
    }

    #[test]
    fn model_warnings_stay_in_the_status_line() {
        let warnings =
            vec!["the checkpoint has 1 tensor(s) this port does not use: extra.weight".to_string()];
        let mut buf = Buffer::empty(Rect::new(0, 0, 200, 1));
        StatusLine {
            model: &ModelState::Ready,
            model_name: "m",
            device: "cpu",
            dtype: "f32",
            tokens: Some(12),
            truncated: false,
            input_warnings: &[],
            latency: None,
            scoring: None,
            weight_check: None,
            flash: None,
            warnings: &warnings,
            spinner: 0,
        }
        .render(buf.area, &mut buf);
        let text: String = buf.content().iter().map(|c| c.symbol()).collect();
        assert!(text.contains("⚠ the checkpoint has 1 tensor(s)"), "{text}");
        assert!(text.contains("extra.weight"), "{text}");
    }
}
