//! The ten attribute scores as horizontal bars, with the value, the scale, a marker of how each
//! moved since the previous score, and a stale look when the text changed since.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget, Wrap};

use super::{clip, stale_style};
use crate::preference::{helpsteer_scale, is_helpsteer, short_name};
use crate::tui::state::{CandidateView, Freshness, Scale};

pub struct AttributeBars<'a> {
    pub labels: &'a [String],
    pub candidate: &'a CandidateView,
    pub scale: Scale,
}

/// An attribute's value on the scale the bars show, and that scale's range.
pub fn on_scale(label: &str, score: f64, scale: Scale) -> (f64, f64, f64) {
    if scale == Scale::HelpSteer && is_helpsteer(label) {
        (helpsteer_scale(score), 0.0, 4.0)
    } else {
        (score, 0.0, 100.0)
    }
}

/// A bar of `width` cells filled to `fraction`, in eighths of a cell.
pub fn bar(fraction: f64, width: usize) -> String {
    const PARTS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    let eighths = (fraction.clamp(0.0, 1.0) * width as f64 * 8.0).round() as usize;
    let full = eighths / 8;
    let mut s = "█".repeat(full);
    if full < width {
        s.push_str(PARTS[eighths % 8]);
    }
    let used = full + usize::from(full < width && !eighths.is_multiple_of(8));
    s.push_str(&" ".repeat(width.saturating_sub(used)));
    s
}

/// The movement marker: ▲ up, ▼ down, = unchanged (within display precision).
pub fn marker(delta: f64) -> (&'static str, Color) {
    if delta.abs() < 0.005 {
        ("=", Color::DarkGray)
    } else if delta > 0.0 {
        ("▲", Color::LightGreen)
    } else {
        ("▼", Color::LightRed)
    }
}

/// Rows to draw: group headers (when there is room) and attribute indices.
enum Row {
    Header(&'static str),
    Attr(usize),
}

fn rows(labels: &[String], room: usize) -> (Vec<Row>, bool) {
    let hs: Vec<usize> = (0..labels.len())
        .filter(|&i| labels[i].starts_with("helpsteer-"))
        .collect();
    let uf: Vec<usize> = (0..labels.len())
        .filter(|&i| labels[i].starts_with("ultrafeedback-"))
        .collect();
    let other: Vec<usize> = (0..labels.len())
        .filter(|i| !hs.contains(i) && !uf.contains(i))
        .collect();
    let groups = [("HelpSteer", hs), ("UltraFeedback", uf), ("Other", other)];
    let headers = groups.iter().filter(|(_, g)| !g.is_empty()).count();
    let with_headers = room >= labels.len() + headers;
    let mut out = Vec::new();
    for (name, g) in groups {
        if g.is_empty() {
            continue;
        }
        if with_headers {
            out.push(Row::Header(name));
        }
        out.extend(g.into_iter().map(Row::Attr));
    }
    (out, with_headers)
}

/// The label as the bars show it: short when a group header names the dataset, else with a
/// two-letter dataset prefix so the two helpfulness rows differ.
pub fn display_name(label: &str, with_headers: bool) -> String {
    if with_headers {
        return short_name(label).to_string();
    }
    crate::preference::qualified_name(label)
}

/// Column widths of a bar row. The value and its change are never cut: the name shrinks
/// first, then the bar, then the change falls back to its arrow alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Widths {
    pub name_w: usize,
    /// The value, right-aligned, with at least one space before it.
    pub value_w: usize,
    /// ` ▲ +1.23` (or ` ▲` alone when the row is too narrow); 0 without a previous score.
    pub delta_w: usize,
    pub bar_w: usize,
}

impl Widths {
    pub fn new(
        labels: &[String],
        c: &CandidateView,
        scale: Scale,
        with_headers: bool,
        w: usize,
    ) -> Self {
        let shown = |s: &Option<Vec<f32>>, i: usize, label: &str| {
            s.as_ref()
                .and_then(|s| s.get(i))
                .map(|v| on_scale(label, *v as f64, scale).0)
        };
        let mut value_w = 6;
        let mut change_w = 0;
        for (i, label) in labels.iter().enumerate() {
            if let Some(v) = shown(&c.scores, i, label) {
                value_w = value_w.max(format!("{v:.2}").chars().count());
                if let Some(p) = shown(&c.previous, i, label) {
                    change_w = change_w.max(format!("{:+.2}", v - p).chars().count());
                }
            }
        }
        let value_w = value_w + 1;
        let longest = labels
            .iter()
            .map(|l| display_name(l, with_headers).chars().count())
            .max()
            .unwrap_or(0);
        const MIN_NAME: usize = 8;
        const MIN_BAR: usize = 4;
        let full_delta = if change_w > 0 { change_w + 3 } else { 0 };
        // The change as a number when the row still has a short name and bar with it.
        let delta_w = if full_delta == 0 || w >= MIN_NAME + 1 + MIN_BAR + value_w + full_delta {
            full_delta
        } else {
            2
        };
        let rest = w.saturating_sub(value_w + delta_w + 1);
        let name_w = longest.min(rest.saturating_sub(MIN_BAR)).min(w / 2);
        let bar_w = rest.saturating_sub(name_w).max(1);
        Widths {
            name_w,
            value_w,
            delta_w,
            bar_w,
        }
    }
}

fn c_is_empty(c: &CandidateView) -> bool {
    matches!(c.freshness, Freshness::Empty)
}

impl AttributeBars<'_> {
    pub fn title(&self) -> Line<'static> {
        let c = self.candidate;
        let mut spans = vec![Span::raw(format!(" Scores · {} ", c.name))];
        let (text, style) = match &c.freshness {
            Freshness::Empty => ("no text yet".to_string(), Style::default().fg(Color::Gray)),
            Freshness::Unscored if c.scoring => {
                ("scoring…".into(), Style::default().fg(Color::Yellow))
            }
            Freshness::Unscored => ("not scored yet".into(), Style::default().fg(Color::Gray)),
            Freshness::Fresh => (
                match c.tokens {
                    Some(t) => format!("fresh · {t} tokens"),
                    None => "fresh".into(),
                },
                Style::default().fg(Color::LightGreen),
            ),
            Freshness::Stale if c.scoring => (
                "stale · rescoring…".into(),
                Style::default().fg(Color::Yellow),
            ),
            Freshness::Stale => (
                "stale: text changed".into(),
                Style::default().fg(Color::Yellow),
            ),
            Freshness::Failed(_) => ("failed".into(), Style::default().fg(Color::LightRed)),
        };
        spans.push(Span::styled(format!("{text} "), style));
        Line::from(spans)
    }
}

impl Widget for AttributeBars<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let scale_title = match self.scale {
            Scale::Raw => " 0–100 · F2 ",
            Scale::HelpSteer => " HelpSteer 0–4 · F2 ",
        };
        let block = Block::bordered()
            .title(self.title())
            .title_top(Line::from(scale_title).right_aligned());
        let inner = block.inner(area);
        block.render(area, buf);
        if inner.width < 10 || inner.height == 0 {
            return;
        }
        // An emptied candidate's old scores belong to no text on screen: show none.
        let blank;
        let c = if c_is_empty(self.candidate) {
            blank = CandidateView {
                scores: None,
                previous: None,
                ..self.candidate.clone()
            };
            &blank
        } else {
            self.candidate
        };
        let stale = !matches!(c.freshness, Freshness::Fresh);
        let (rows, with_headers) = rows(self.labels, inner.height as usize);
        let w = inner.width as usize;
        let widths = Widths::new(self.labels, c, self.scale, with_headers, w);
        let Widths {
            name_w,
            value_w,
            delta_w,
            bar_w,
        } = widths;
        let wide_marker = delta_w > 2;
        let mut lines: Vec<Line> = Vec::new();
        for row in rows {
            let i = match row {
                Row::Header(h) => {
                    let note = if self.scale == Scale::HelpSteer && h == "HelpSteer" {
                        "  (score − 10) / 20"
                    } else {
                        ""
                    };
                    lines.push(Line::from(vec![
                        Span::styled(h, Style::default().add_modifier(Modifier::BOLD)),
                        Span::styled(note, Style::default().fg(Color::DarkGray)),
                    ]));
                    continue;
                }
                Row::Attr(i) => i,
            };
            let label = &self.labels[i];
            let name = format!(
                "{:<name_w$} ",
                clip(&display_name(label, with_headers), name_w)
            );
            let value = c.scores.as_ref().and_then(|s| s.get(i)).map(|v| *v as f64);
            let color = if is_helpsteer(label) {
                Color::Cyan
            } else {
                Color::LightMagenta
            };
            let bar_style = if stale {
                stale_style()
            } else {
                Style::default().fg(color)
            };
            let mut spans = vec![Span::raw(name)];
            match value {
                Some(v) => {
                    let (shown, lo, hi) = on_scale(label, v, self.scale);
                    spans.push(Span::styled(
                        bar((shown - lo) / (hi - lo), bar_w),
                        bar_style,
                    ));
                    let vstyle = if stale {
                        stale_style()
                    } else {
                        Style::default().add_modifier(Modifier::BOLD)
                    };
                    spans.push(Span::styled(format!("{shown:>value_w$.2}"), vstyle));
                    let prev = c
                        .previous
                        .as_ref()
                        .and_then(|p| p.get(i))
                        .map(|p| on_scale(label, *p as f64, self.scale).0);
                    if let Some(p) = prev {
                        let d = shown - p;
                        let (sym, col) = marker(d);
                        let text = if wide_marker {
                            format!(" {sym} {d:>+dw$.2}", dw = delta_w - 3)
                        } else {
                            format!(" {sym}")
                        };
                        spans.push(Span::styled(text, Style::default().fg(col)));
                    }
                }
                None => {
                    spans.push(Span::styled(
                        "·".repeat(bar_w),
                        Style::default().fg(Color::DarkGray),
                    ));
                    spans.push(Span::styled(
                        format!("{:>value_w$}", "—"),
                        Style::default().fg(Color::DarkGray),
                    ));
                }
            }
            lines.push(Line::from(spans));
        }
        // Below the bars, when there is room: why a candidate has no fresh scores, or what
        // the user should know about how its text was read.
        let mut notes: Vec<Line> = Vec::new();
        match &c.freshness {
            Freshness::Failed(msg) => notes.push(Line::styled(
                format!("scoring failed: {msg}  (F5 retries)"),
                Style::default().fg(Color::LightRed),
            )),
            Freshness::Empty => notes.push(Line::styled(
                "Type a response (Tab to the response editor) to score it.",
                Style::default().fg(Color::Gray),
            )),
            Freshness::Stale if !c.scoring => notes.push(Line::styled(
                "The text changed since these scores; they update after a short pause (F5 now).",
                Style::default().fg(Color::Yellow),
            )),
            _ => {}
        }
        for w in &c.warnings {
            notes.push(Line::styled(
                format!("⚠ {w}"),
                Style::default().fg(Color::Yellow),
            ));
        }
        let used = lines.len() as u16;
        Paragraph::new(lines).render(inner, buf);
        if used < inner.height && !notes.is_empty() {
            let rest = Rect {
                y: inner.y + used,
                height: inner.height - used,
                ..inner
            };
            Paragraph::new(notes)
                .wrap(Wrap { trim: true })
                .render(rest, buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_fill_in_eighths_and_keep_their_width() {
        assert_eq!(bar(0.0, 4), "    ");
        assert_eq!(bar(1.0, 4), "████");
        assert_eq!(bar(0.5, 4), "██  ");
        assert_eq!(bar(1.0 / 32.0, 4), "▏   ");
        assert_eq!(bar(2.0, 3), "███");
        assert_eq!(bar(-1.0, 3), "   ");
        for f in [0.1, 0.33, 0.77, 0.99] {
            assert_eq!(bar(f, 10).chars().count(), 10, "{f}");
        }
    }

    #[test]
    fn markers_show_direction_of_change() {
        assert_eq!(marker(1.0).0, "▲");
        assert_eq!(marker(-0.2).0, "▼");
        assert_eq!(marker(0.001).0, "=");
    }

    #[test]
    fn helpsteer_scale_applies_to_helpsteer_attributes_only() {
        let (v, lo, hi) = on_scale("helpsteer-helpfulness", 68.99, Scale::HelpSteer);
        assert!((v - 2.9495).abs() < 1e-9);
        assert_eq!((lo, hi), (0.0, 4.0));
        assert_eq!(
            on_scale("ultrafeedback-honesty", 50.0, Scale::HelpSteer),
            (50.0, 0.0, 100.0)
        );
        assert_eq!(
            on_scale("helpsteer-helpfulness", 50.0, Scale::Raw),
            (50.0, 0.0, 100.0)
        );
    }
}
