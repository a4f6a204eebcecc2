//! What the scores panel shows before there are scores: download progress, loading, or, when
//! the model cannot be loaded, what to do about it.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Gauge, Paragraph, Widget, Wrap};

use crate::engine::LoadStage;
use crate::hub::DEFAULT_MODEL;
use crate::tui::app::ModelState;

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

pub struct ModelPanel<'a> {
    pub state: &'a ModelState,
    pub model_name: &'a str,
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
                Paragraph::new(head).render(inner, buf);
                if inner.height > 3 {
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
                    Paragraph::new(meanwhile)
                        .wrap(Wrap { trim: true })
                        .render(r, buf);
                }
            }
            ModelState::Starting | ModelState::Loading(LoadStage::Loading { .. }) => {
                let what = match self.state {
                    ModelState::Loading(LoadStage::Loading { what }) => format!("Loading {what}"),
                    _ => format!("Starting {}", self.model_name),
                };
                Paragraph::new(vec![Line::styled(what, bold), Line::raw(""), meanwhile])
                    .wrap(Wrap { trim: true })
                    .render(inner, buf);
            }
            ModelState::Failed { error } => {
                let key = Style::default().fg(Color::LightCyan);
                // Short panels keep what to do and drop the explanations.
                let roomy = inner.height >= 16;
                let mut lines = vec![
                    Line::styled(format!("Could not load {}:", self.model_name), bold),
                    Line::styled(error.clone(), Style::default().fg(Color::LightRed)),
                ];
                if roomy {
                    lines.push(Line::raw(""));
                }
                lines.push(Line::styled("What to do:", bold));
                lines.push(Line::from(vec![
                    Span::raw("• a local copy: "),
                    Span::styled("dpa-explorer --model DIR", key),
                ]));
                if roomy {
                    lines.push(Line::styled(
                        "  (DIR holds config.json, tokenizer.json and *.safetensors)",
                        dim,
                    ));
                }
                lines.push(Line::from(vec![
                    Span::raw("• try it offline: "),
                    Span::styled("dpa-explorer --demo", key),
                ]));
                if roomy {
                    lines.push(Line::styled(
                        "  (a tiny random-weight model; its scores mean nothing)",
                        dim,
                    ));
                }
                if self.model_name == DEFAULT_MODEL {
                    lines.push(Line::from(vec![
                        Span::raw("• or download "),
                        Span::styled(DEFAULT_MODEL, key),
                        Span::raw(" with network access (about 14 GB)"),
                    ]));
                }
                if roomy {
                    lines.push(Line::raw(""));
                }
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
