//! The attribute scores as horizontal bars grouped by dataset, with the value, the scale, a
//! marker of how each moved since the previous score, and a stale look when the text changed
//! since. When they do not fit, they scroll to keep the attribute the dial's cursor is on in
//! view, saying how many are above and below.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget, Wrap};

use super::{clip, stale_style};
use crate::preference::{dataset_name, helpsteer_scale, is_helpsteer, short_name};
use crate::tui::state::{CandidateView, Freshness, Scale};

pub struct AttributeBars<'a> {
    pub labels: &'a [String],
    pub candidate: &'a CandidateView,
    pub scale: Scale,
    /// The attribute to keep in view when the bars scroll (the dial's weight cursor).
    pub focus: Option<usize>,
    /// Scores on DPA's 0–100 (with its HelpSteer 0–4 view); otherwise the bars span the
    /// values shown.
    pub dpa_scale: bool,
}

/// An attribute's value on the scale the bars show, and that scale's range.
pub fn on_scale(label: &str, score: f64, scale: Scale) -> (f64, f64, f64) {
    if scale == Scale::HelpSteer && is_helpsteer(label) {
        (helpsteer_scale(score), 0.0, 4.0)
    } else {
        (score, 0.0, 100.0)
    }
}

/// The range bars span for a model whose scores are not on DPA's 0–100: from the lowest to
/// the highest shown value, zero included.
fn auto_range(scores: &[f32]) -> (f64, f64) {
    let (lo, hi) = scores
        .iter()
        .filter(|v| v.is_finite())
        .fold((0f64, 0f64), |(lo, hi), &v| {
            (lo.min(v as f64), hi.max(v as f64))
        });
    if hi - lo < 1e-9 {
        (lo - 1.0, hi + 1.0)
    } else {
        (lo, hi)
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
#[derive(Debug, Clone, PartialEq, Eq)]
enum Row {
    Header(String),
    Attr(usize),
}

/// The attributes by dataset (the name's part before the first `-`), in order of first
/// appearance; names without one last, as "Other".
fn groups(labels: &[String]) -> Vec<(String, Vec<usize>)> {
    let mut out: Vec<(Option<&str>, Vec<usize>)> = Vec::new();
    for (i, l) in labels.iter().enumerate() {
        let key = l.split_once('-').map(|(d, _)| d);
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, g)) => g.push(i),
            None => out.push((key, vec![i])),
        }
    }
    out.sort_by_key(|(k, _)| k.is_none());
    out.into_iter()
        .map(|(k, g)| (k.map_or_else(|| "Other".to_string(), dataset_name), g))
        .collect()
}

/// The rows that fit in `room` lines, and how many attributes are hidden above and below
/// (each such side takes one line for saying so).
struct Shown {
    rows: Vec<Row>,
    with_headers: bool,
    above: usize,
    below: usize,
    /// The group the first shown attribute belongs to when its header scrolled away: the
    /// "↑ more" line names it, so every shown attribute has its dataset in sight.
    continued: Option<String>,
}

/// All rows with group headers when they fit, else scrolled so that `focus` is in view, with
/// the headers that fall in the window (a model without datasets has none).
fn rows(labels: &[String], room: usize, focus: Option<usize>) -> Shown {
    let groups = groups(labels);
    // A model whose names carry no dataset has nothing to head them with.
    let nameless = groups.len() == 1 && !labels.iter().any(|l| l.contains('-'));
    // Headers while scrolling need room for a header, an attribute and the two notes.
    let with_headers = !nameless && room >= 4;
    let mut out = Vec::new();
    let mut group_of = vec![String::new(); labels.len()];
    for (name, g) in groups {
        for &i in &g {
            group_of[i] = name.clone();
        }
        if with_headers {
            out.push(Row::Header(name));
        }
        out.extend(g.into_iter().map(Row::Attr));
    }
    let attrs = |rows: &[Row]| rows.iter().filter(|r| matches!(r, Row::Attr(_))).count();
    if out.len() <= room {
        return Shown {
            rows: out,
            with_headers,
            above: 0,
            below: 0,
            continued: None,
        };
    }
    let at = focus
        .and_then(|f| out.iter().position(|r| *r == Row::Attr(f)))
        .unwrap_or(0);
    let n = out.len();
    let mut start = 0;
    let mut shown = room.saturating_sub(1).max(1);
    if at >= shown {
        // Hidden above too: one more line goes to saying so.
        shown = room.saturating_sub(2).max(1);
        start = (at + 1).saturating_sub(shown).min(n - shown);
        if start + shown >= n {
            shown = room.saturating_sub(1).max(1);
            start = n - shown;
        }
    }
    let mut window: Vec<Row> = out[start..start + shown].to_vec();
    // A header with none of its attributes under it says nothing.
    if matches!(window.last(), Some(Row::Header(_))) && window.len() > 1 {
        window.pop();
    }
    let above = attrs(&out[..start]);
    let below = attrs(&out[start..]) - attrs(&window);
    let continued = match window.first() {
        Some(Row::Attr(i)) if with_headers && above > 0 => Some(group_of[*i].clone()),
        _ => None,
    };
    Shown {
        rows: window,
        with_headers,
        above,
        below,
        continued,
    }
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
        let dpa = self.dpa_scale;
        // Another model's bars span the values shown: no scale to name or switch.
        let scale_title = match self.scale {
            _ if !dpa => "",
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
        let Shown {
            rows,
            with_headers,
            above,
            below,
            continued,
        } = rows(self.labels, inner.height as usize, self.focus);
        // DPA's scores are on 0–100; another model's span what it gave.
        let range = (!dpa).then(|| auto_range(c.scores.as_deref().unwrap_or(&[])));
        // The HelpSteer 0–4 conversion is DPA's.
        let scale = if dpa { self.scale } else { Scale::Raw };
        let w = inner.width as usize;
        let widths = Widths::new(self.labels, c, scale, with_headers, w);
        let Widths {
            name_w,
            value_w,
            delta_w,
            bar_w,
        } = widths;
        let wide_marker = delta_w > 2;
        let mut lines: Vec<Line> = Vec::new();
        let note = Style::default().fg(Color::DarkGray);
        let more = |n: usize, arrow: &str| format!("{arrow} {n} more (weights mode: ↑↓ scroll)");
        if above > 0 {
            lines.push(match continued {
                // The group whose header scrolled away, named before the note.
                Some(g) => Line::from(vec![
                    Span::styled(g, Style::default().add_modifier(Modifier::BOLD)),
                    Span::styled(format!(" (cont.) · ↑ {above} more"), note),
                ]),
                None => Line::styled(more(above, "↑"), note),
            });
        }
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
                    let (shown, lo, hi) = match range {
                        Some((lo, hi)) => (v, lo, hi),
                        None => on_scale(label, v, self.scale),
                    };
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
                        .map(|p| on_scale(label, *p as f64, scale).0);
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
        if below > 0 {
            lines.push(Line::styled(more(below, "↓"), note));
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

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn attributes_group_by_dataset_in_order_of_first_appearance() {
        let labels = names(&["a-x", "b-y", "a-z", "plain", "c-w"]);
        let g = groups(&labels);
        let got: Vec<(&str, Vec<usize>)> = g.iter().map(|(n, i)| (n.as_str(), i.clone())).collect();
        assert_eq!(
            got,
            [
                ("a", vec![0, 2]),
                ("b", vec![1]),
                ("c", vec![4]),
                ("Other", vec![3])
            ]
        );
        let armo: Vec<String> = crate::model::config::ARMO_LABELS
            .iter()
            .map(|s| s.to_string())
            .collect();
        let heads: Vec<String> = groups(&armo).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            heads,
            [
                "HelpSteer",
                "UltraFeedback",
                "BeaverTails",
                "Prometheus",
                "Argilla",
                "Code"
            ]
        );
    }

    #[test]
    fn rows_that_do_not_fit_scroll_to_the_focus_and_count_the_rest() {
        let labels: Vec<String> = (0..19).map(|i| format!("d-{i}")).collect();
        let attrs = |rows: &[Row]| -> Vec<usize> {
            rows.iter()
                .filter_map(|r| match r {
                    Row::Attr(i) => Some(*i),
                    Row::Header(_) => None,
                })
                .collect()
        };
        // All fit with their header.
        let s = rows(&labels, 20, None);
        assert!(s.with_headers && s.above == 0 && s.below == 0 && s.rows.len() == 20);
        // Ten lines: the header, eight attributes and "↓ 11 more".
        let s = rows(&labels, 10, None);
        assert_eq!((s.with_headers, s.above, s.below), (true, 0, 11));
        assert_eq!(s.rows[0], Row::Header("d".into()));
        assert_eq!(attrs(&s.rows), (0..8).collect::<Vec<_>>());
        // The focus in the middle: a note above naming the group, eight attributes ending at
        // it, a note below.
        let s = rows(&labels, 10, Some(12));
        assert_eq!(attrs(&s.rows), (5..13).collect::<Vec<_>>());
        assert_eq!(
            (s.above, s.below, s.continued.as_deref()),
            (5, 6, Some("d"))
        );
        // The focus at the end: no note below.
        let s = rows(&labels, 10, Some(18));
        assert_eq!(attrs(&s.rows), (10..19).collect::<Vec<_>>());
        assert_eq!((s.above, s.below), (10, 0));
        // Every attribute is reachable, no more lines than the room are used, and every
        // attribute shown has its group's header above it or named in the note.
        let armo: Vec<String> = crate::model::config::ARMO_LABELS
            .iter()
            .map(|s| s.to_string())
            .collect();
        for labels in [&labels, &armo] {
            let n = labels.len();
            for f in 0..n {
                for room in 3..n + 8 {
                    let s = rows(labels, room, Some(f));
                    let shown = attrs(&s.rows);
                    assert!(shown.contains(&f), "focus {f}, room {room}");
                    let notes = usize::from(s.above > 0) + usize::from(s.below > 0);
                    assert!(s.rows.len() + notes <= room, "focus {f}, room {room}");
                    assert_eq!(s.above + shown.len() + s.below, n, "focus {f}, room {room}");
                    if s.with_headers {
                        let headed =
                            matches!(s.rows.first(), Some(Row::Header(_))) || s.continued.is_some();
                        assert!(headed, "focus {f}, room {room}: {:?}", s.rows);
                    }
                }
            }
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
