//! Where in the selected response R moves: the scores of its prefixes (the response cut after
//! each word, each scored as a whole input), as a sparkline of R, one per attribute, the
//! biggest rises and drops with the words that made them, and the response coloured by the
//! change each word made. A point is the model's score of the shorter response, not a credit
//! the model gives a word; the first line says so.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use super::theme::change_color;
use super::{candidate_color, wrap_at_spaces};
use crate::tui::state::{Move, TrajectoryShown, TrajectoryView, TRAJECTORY_LABEL};

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
/// Width of the name column left of each sparkline, at most.
const NAME: usize = 14;
/// Width of the `first→last` numbers right of each sparkline.
const NUMBERS: usize = 14;

pub struct TrajectoryPanel<'a> {
    pub shown: &'a TrajectoryShown,
    /// What a trajectory costs with this backend (remote scoring), under the label.
    pub cost: Option<&'a str>,
}

impl Widget for TrajectoryPanel<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.width == 0 || area.height == 0 {
            return;
        }
        let width = area.width as usize;
        let mut lines = label_lines(width);
        if let Some(cost) = self.cost {
            lines.extend(cost_lines(cost, width));
        }
        match self.shown {
            TrajectoryShown::Note { text, busy } => {
                let style = if *busy {
                    Style::default().fg(Color::Yellow)
                } else {
                    Style::default().fg(Color::Gray)
                };
                lines.push(Line::from(""));
                lines.push(Line::styled(text.clone(), style));
                Paragraph::new(lines)
                    .wrap(Wrap { trim: false })
                    .render(area, buf);
            }
            TrajectoryShown::Ready(v) => {
                ready(v, &mut lines, area.height as usize, width, buf, area)
            }
        }
    }
}

/// The label, on one line when it fits, else cut before the dash and wrapped by words.
fn label_lines(width: usize) -> Vec<Line<'static>> {
    let style = Style::default()
        .fg(Color::Gray)
        .add_modifier(Modifier::ITALIC);
    wrap_words(TRAJECTORY_LABEL, width)
        .into_iter()
        .map(|l| Line::styled(l, style))
        .collect()
}

/// The backend's note on what a trajectory costs, dim, wrapped by words.
fn cost_lines(cost: &str, width: usize) -> Vec<Line<'static>> {
    let style = Style::default().fg(Color::DarkGray);
    wrap_words(&format!("cost: {cost}"), width)
        .into_iter()
        .map(|l| Line::styled(l, style))
        .collect()
}

/// `text` wrapped at spaces in lines of at most `width` characters: whole when it fits, else
/// broken before the dash and each part in as few lines as fit, as even as they can be.
fn wrap_words(text: &str, width: usize) -> Vec<String> {
    if text.chars().count() <= width {
        return vec![text.to_string()];
    }
    let parts: Vec<String> = match text.split_once(" — ") {
        Some((a, b)) => vec![a.to_string(), format!("— {b}")],
        None => vec![text.to_string()],
    };
    parts.iter().flat_map(|p| balanced(p, width)).collect()
}

/// `text` in the fewest lines of at most `width`, the longest line as short as it can be.
fn balanced(text: &str, width: usize) -> Vec<String> {
    let len = text.chars().count();
    let fewest = wrap_at_spaces(text, width).len();
    (len.div_ceil(fewest.max(1))..width)
        .map(|w| wrap_at_spaces(text, w))
        .find(|lines| lines.len() == fewest)
        .unwrap_or_else(|| wrap_at_spaces(text, width))
}

fn ready(
    v: &TrajectoryView,
    lines: &mut Vec<Line<'static>>,
    height: usize,
    width: usize,
    buf: &mut Buffer,
    area: Rect,
) {
    // Narrow panels drop the numbers and shorten the names before the sparklines shrink.
    let numbers = width >= 50;
    let name = NAME.min(width / 3).max(6);
    let spark_width = width
        .saturating_sub(name + 1 + if numbers { NUMBERS } else { 0 })
        .max(1);
    let tail = |s: String| if numbers { s } else { String::new() };
    let first = v.rewards.first().copied().unwrap_or(0.0);
    let last = v.rewards.last().copied().unwrap_or(0.0);
    let color = candidate_color(v.index);
    lines.push(Line::from(vec![
        Span::styled(
            pad(&format!("R of {}", v.name), name),
            Style::default().fg(color).add_modifier(Modifier::BOLD),
        ),
        Span::raw(" "),
        Span::styled(
            sparkline(&v.rewards, spark_width),
            Style::default().fg(color),
        ),
        Span::styled(
            tail(format!(" {first:.2}→{last:.2}")),
            Style::default().fg(Color::Gray),
        ),
    ]));
    for (kind, moves) in [("rise", &v.rises), ("drop", &v.drops)] {
        for m in moves.iter() {
            lines.push(move_line(kind, m, width));
        }
    }
    // The coloured text wants a few rows; the attributes take what is left before it.
    let left = height.saturating_sub(lines.len());
    let attributes = v.attributes.len();
    let text_rows = if left >= attributes + 3 {
        left - attributes
    } else {
        0
    };
    let attribute_rows = left.saturating_sub(text_rows).min(attributes);
    for (label, values) in v.attributes.iter().take(attribute_rows) {
        let values: Vec<f64> = values.iter().map(|&x| x as f64).collect();
        let (a, b) = (values[0], values[values.len() - 1]);
        lines.push(Line::from(vec![
            Span::styled(pad(label, name), Style::default().fg(Color::Gray)),
            Span::raw(" "),
            Span::styled(
                sparkline(&values, spark_width),
                Style::default().fg(Color::DarkGray),
            ),
            Span::styled(
                tail(format!(" {a:.1}→{b:.1}")),
                Style::default().fg(Color::DarkGray),
            ),
        ]));
    }
    let top = lines.len().min(height) as u16;
    Paragraph::new(std::mem::take(lines)).render(area, buf);
    if text_rows > 0 {
        let rest = Rect {
            y: area.y + top,
            height: area.height.saturating_sub(top),
            ..area
        };
        Paragraph::new(coloured_text(v))
            .wrap(Wrap { trim: false })
            .render(rest, buf);
    }
}

fn move_line(kind: &str, m: &Move, width: usize) -> Line<'static> {
    let color = if m.delta > 0.0 {
        Color::Green
    } else {
        Color::Red
    };
    let head = format!("{kind} {:+.2}  ", m.delta).replace('-', "−");
    let room = width.saturating_sub(head.chars().count() + 2);
    Line::from(vec![
        Span::styled(head, Style::default().fg(color)),
        Span::raw(format!("“{}”", cut(&m.text, room))),
    ])
}

/// The response with each word coloured by the change in R it made.
fn coloured_text(v: &TrajectoryView) -> Vec<Line<'static>> {
    let scale = v
        .pieces
        .iter()
        .filter_map(|(_, d)| d.map(f64::abs))
        .fold(0.0, f64::max);
    let mut lines = vec![Line::from("")];
    for (piece, delta) in &v.pieces {
        let style = match delta {
            Some(d) => Style::default().fg(change_color(*d, scale)),
            None => Style::default().fg(Color::Gray),
        };
        for (k, part) in piece.split('\n').enumerate() {
            if k > 0 {
                lines.push(Line::from(""));
            }
            if let Some(line) = lines.last_mut() {
                line.push_span(Span::styled(part.to_string(), style));
            }
        }
    }
    lines
}

/// `values` as block characters, one per point, or sampled when there are more points than
/// `width` cells.
fn sparkline(values: &[f64], width: usize) -> String {
    if values.is_empty() {
        return String::new();
    }
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let n = values.len().min(width);
    (0..n)
        .map(|col| {
            let i = if n == values.len() {
                col
            } else {
                (col * (values.len() - 1)) / (n - 1).max(1)
            };
            let t = if hi > lo {
                (values[i] - lo) / (hi - lo)
            } else {
                0.5
            };
            BARS[((t * 7.0).round() as usize).min(7)]
        })
        .collect()
}

fn pad(s: &str, width: usize) -> String {
    let s = cut(s, width);
    format!("{s:<width$}")
}

/// `s` in at most `width` characters, ending in `…` when cut.
fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_spans_low_to_high_and_samples_long_series() {
        assert_eq!(sparkline(&[0.0, 1.0, 0.5], 10), "▁█▅");
        let long: Vec<f64> = (0..100).map(|i| i as f64).collect();
        let s = sparkline(&long, 10);
        assert_eq!(s.chars().count(), 10);
        assert!(s.starts_with('▁') && s.ends_with('█'), "{s}");
    }

    #[test]
    fn the_label_is_whole_or_wrapped_never_cut() {
        assert_eq!(wrap_words(TRAJECTORY_LABEL, 100), [TRAJECTORY_LABEL]);
        let lines = wrap_words(TRAJECTORY_LABEL, 60);
        assert_eq!(lines.join(" "), TRAJECTORY_LABEL);
        assert!(lines.iter().all(|l| l.chars().count() <= 60), "{lines:?}");
    }
}
