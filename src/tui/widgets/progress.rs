//! What the scores panel shows before there are scores: download progress, loading, or, when
//! the model cannot be loaded, what to do about it.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Gauge, Paragraph, Widget, Wrap};

use super::status::fmt_duration;
use crate::engine::LoadStage;
use crate::model::LoadPhase;
use crate::tui::state::ModelState;

/// Bytes as `13.4 GB`, `512.0 MB`.
pub fn fmt_bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}

/// Two lines of what is happening, a gauge on the fourth row and, from the sixth, `below`,
/// each where the panel has room for it.
fn gauge_panel(
    inner: Rect,
    buf: &mut Buffer,
    head: Vec<Line<'_>>,
    ratio: f64,
    label: String,
    below: Vec<Line<'_>>,
) {
    Paragraph::new(head).render(inner, buf);
    if inner.height > 3 {
        let g = Rect {
            y: inner.y + 3,
            height: 1,
            ..inner
        };
        Gauge::default()
            .gauge_style(Style::default().fg(Color::Cyan).bg(Color::DarkGray))
            .ratio(ratio)
            .label(label)
            .render(g, buf);
    }
    if inner.height > 5 {
        let r = Rect {
            y: inner.y + 5,
            height: inner.height - 5,
            ..inner
        };
        Paragraph::new(below)
            .wrap(Wrap { trim: true })
            .render(r, buf);
    }
}

pub struct ModelPanel<'a> {
    pub state: &'a ModelState,
    pub model_name: &'a str,
    /// What to do when the model cannot be loaded (from the command line's composition).
    pub hint: &'a [String],
    /// How long the rest of the load should take, at the pace of the layers done.
    pub eta: Option<std::time::Duration>,
    /// How long the first score should take, from this machine's measured rate.
    pub first_score: String,
}

impl Widget for ModelPanel<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let failed = matches!(self.state, ModelState::Failed { .. });
        let block = Block::bordered()
            .title(if failed {
                " Model not loaded "
            } else {
                " Model "
            })
            .border_style(if failed {
                Style::default().fg(Color::LightRed)
            } else {
                Style::default()
            });
        let inner = block.inner(area);
        block.render(area, buf);
        if inner.height == 0 {
            return;
        }
        let dim = Style::default().fg(Color::Gray);
        let bold = Style::default().add_modifier(Modifier::BOLD);
        let meanwhile = Line::styled(
            "The editors work meanwhile; scoring starts when the model is ready.",
            dim,
        );
        match self.state {
            ModelState::Loading(LoadStage::Downloading {
                file,
                index,
                files,
                bytes,
                total,
            }) => {
                let head = vec![
                    Line::from(vec![
                        Span::styled("Downloading ", bold),
                        Span::raw(self.model_name.to_string()),
                    ]),
                    Line::raw(format!("file {index} of {files}: {file}")),
                ];
                let ratio = if *total > 0 {
                    (*bytes as f64 / *total as f64).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let label = if *total > 0 {
                    format!(
                        "{:.0}%  {} / {}",
                        ratio * 100.0,
                        fmt_bytes(*bytes),
                        fmt_bytes(*total)
                    )
                } else {
                    fmt_bytes(*bytes)
                };
                gauge_panel(inner, buf, head, ratio, label, vec![meanwhile]);
            }
            ModelState::Loading(LoadStage::Layers {
                phase,
                layer,
                layers,
            }) => {
                let what = match phase {
                    LoadPhase::Reading => "Reading the weights",
                    LoadPhase::Quantising => {
                        "Quantising the weights (first start in this mode; kept for the next)"
                    }
                    LoadPhase::ReadingCache => "Reading the quantised weights kept last time",
                };
                let head = vec![
                    Line::styled(what, bold),
                    Line::raw(self.model_name.to_string()),
                ];
                let ratio = if *layers > 0 {
                    (*layer as f64 / *layers as f64).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let left = match self.eta {
                    Some(d) => format!(" · about {} left", fmt_duration(d)),
                    None => String::new(),
                };
                let label = format!("layer {layer} of {layers}{left}");
                let below = vec![Line::styled(self.first_score.clone(), dim), meanwhile];
                gauge_panel(inner, buf, head, ratio, label, below);
            }
            ModelState::Starting | ModelState::Loading(LoadStage::Loading { .. }) => {
                let what = match self.state {
                    ModelState::Loading(LoadStage::Loading { what }) => format!("Loading {what}"),
                    _ => format!("Starting {}", self.model_name),
                };
                let lines = vec![
                    Line::styled(what, bold),
                    Line::raw(""),
                    Line::styled(self.first_score.clone(), dim),
                    meanwhile,
                ];
                Paragraph::new(lines)
                    .wrap(Wrap { trim: true })
                    .render(inner, buf);
            }
            ModelState::Failed { error } => {
                let key = Style::default().fg(Color::LightCyan);
                // The way forward first, the raw error last: at 80×24 the panel is a few
                // rows, and what to do must be what survives.
                let mut lines = vec![Line::styled("Not loaded. Ways forward:", bold)];
                let fallback = [
                    "dpa-explorer --demo       try it offline (tiny random-weight model)"
                        .to_string(),
                    "dpa-explorer --model DIR  a local copy".to_string(),
                ];
                let hint = if self.hint.is_empty() {
                    &fallback[..]
                } else {
                    self.hint
                };
                for h in hint {
                    lines.push(Line::styled(h.clone(), key));
                }
                lines.push(Line::from(vec![
                    Span::styled("F5", key),
                    Span::raw(" / "),
                    Span::styled("Alt-R", key),
                    Span::raw(" tries loading again"),
                ]));
                lines.push(Line::from(vec![
                    Span::styled("Error: ", bold),
                    Span::styled(error.clone(), Style::default().fg(Color::LightRed)),
                ]));
                lines.push(Line::styled(
                    "You can still type and save sessions; Ctrl-Q quits.",
                    dim,
                ));
                Paragraph::new(lines)
                    .wrap(Wrap { trim: false })
                    .render(inner, buf);
            }
            ModelState::Ready => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_naturally() {
        assert_eq!(fmt_bytes(512), "512 B");
        assert_eq!(fmt_bytes(1_500_000), "1.5 MB");
        assert_eq!(fmt_bytes(14_200_000_000), "14.20 GB");
    }
}
