//! The preference dial: a circle with the direction vector in the plane of two attributes
//! (helpfulness × verbosity unless the user chose others), and the line
//! `θ = 15°  v = (0.97, 0.26)  R = 57.41`; in weights mode, the weights with the one under the
//! cursor highlighted. A gating model's own direction is drawn beside the user's.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::canvas::{Canvas, Circle, Line as CanvasLine};
use ratatui::widgets::{Block, Paragraph, Widget};

use super::{bars::display_name, fmt2, focus_style, stale_style};
use crate::preference::{angle_of, fmt_angle};
use crate::tui::state::{CandidateView, Dial, DialMode, Freshness};

/// The parts of the dial panel's inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    /// The circle (angle mode; empty in weights mode).
    pub canvas: Rect,
    /// The weight rows (weights mode; empty in angle mode).
    pub list: Rect,
    /// The θ/v/R text.
    pub text: Rect,
}

/// Packs `items` into as few lines of at most `width` columns as it can, two spaces apart,
/// keeping their order; an item is never cut (one wider than `width` has a line of its own).
pub fn pack(items: &[String], width: u16) -> Vec<String> {
    use unicode_width::UnicodeWidthStr;
    let mut lines: Vec<String> = Vec::new();
    for item in items {
        match lines.last_mut() {
            Some(l) if l.width() + 2 + item.width() <= width as usize => {
                l.push_str("  ");
                l.push_str(item);
            }
            _ => lines.push(item.clone()),
        }
    }
    lines
}

/// The widest θ/v/R text the dial expects, so the split (shared with mouse handling) does not
/// depend on the value shown. Wider values than these take rows from the circle.
fn widest_angle_items() -> Vec<String> {
    vec![
        "θ = -177.5°".into(),
        "v = (-0.71, -0.71)".into(),
        "R = -100.00".into(),
    ]
}

/// How many rows the θ/v/R text needs at this width.
fn text_rows(width: u16) -> u16 {
    pack(&widest_angle_items(), width).len() as u16
}

pub fn split(inner: Rect, mode: DialMode) -> Parts {
    let rows = match mode {
        DialMode::Angle => text_rows(inner.width),
        DialMode::Weights => 1,
    }
    .min(inner.height);
    let body = Rect {
        height: inner.height - rows,
        ..inner
    };
    let text = Rect {
        y: inner.y + inner.height - rows,
        height: rows,
        ..inner
    };
    match mode {
        DialMode::Angle => Parts {
            canvas: body,
            list: Rect::default(),
            text,
        },
        DialMode::Weights => Parts {
            canvas: Rect::default(),
            list: body,
            text,
        },
    }
}

/// Canvas bounds around the unit circle that keep it round: a terminal cell is about twice
/// as tall as it is wide.
pub fn bounds(canvas: Rect) -> ([f64; 2], [f64; 2]) {
    let r = 1.2;
    let w = canvas.width.max(1) as f64;
    let h = canvas.height.max(1) as f64 * 2.0;
    if w >= h {
        let x = r * w / h;
        ([-x, x], [-r, r])
    } else {
        let y = r * h / w;
        ([-r, r], [-y, y])
    }
}

/// The angle (whole degrees) pointed at by a click at (x, y) on the dial's canvas, or `None`
/// off the canvas or at its centre.
pub fn angle_at(canvas: Rect, x: u16, y: u16) -> Option<f64> {
    if canvas.width == 0 || canvas.height == 0 {
        return None;
    }
    let (xb, yb) = bounds(canvas);
    // The cell's centre, in canvas coordinates; clamped so a drag past the edge still turns.
    let cx = (x.clamp(canvas.x, canvas.right() - 1) - canvas.x) as f64 + 0.5;
    let cy = (y.clamp(canvas.y, canvas.bottom() - 1) - canvas.y) as f64 + 0.5;
    let wx = xb[0] + cx / canvas.width as f64 * (xb[1] - xb[0]);
    let wy = yb[1] - cy / canvas.height as f64 * (yb[1] - yb[0]);
    if wx.hypot(wy) < 1e-6 {
        return None;
    }
    Some(wy.atan2(wx).to_degrees().round())
}

/// The first weight row shown so that the cursor is visible in `rows` rows.
pub fn weights_scroll(rows: u16, n: usize, cursor: usize) -> usize {
    let rows = rows.max(1) as usize;
    if n <= rows {
        0
    } else {
        cursor.saturating_sub(rows - 1).min(n - rows)
    }
}

/// `θ = 15°  v = (0.97, 0.26)  R = 57.41` split over as many lines as the width needs; no
/// number is ever cut.
pub fn angle_text(degrees: f64, reward: Option<f64>, width: u16) -> Vec<String> {
    let (s, c) = degrees.to_radians().sin_cos();
    // -0.00 reads as a different direction from 0.00.
    let z = |x: f64| if x.abs() < 0.005 { 0.0 } else { x };
    let theta = format!("θ = {}°", fmt_angle(degrees));
    let v = format!("v = ({:.2}, {:.2})", z(c), z(s));
    let r = format!("R = {}", fmt2(reward));
    pack(&[theta, v, r], width)
}

/// `|w| = 1.00  R = 57.41` in weights mode; the norm is dropped first when both do not fit.
pub fn weights_text(norm: f64, reward: Option<f64>, width: u16) -> Vec<String> {
    let r = format!("R = {}", fmt2(reward));
    let both = pack(&[format!("|w| = {norm:.2}"), r.clone()], width);
    if both.len() == 1 {
        both
    } else {
        vec![r]
    }
}

pub struct DialWidget<'a> {
    pub dial: &'a Dial,
    pub labels: &'a [String],
    /// The selected candidate, whose R the dial shows.
    pub candidate: Option<&'a CandidateView>,
    pub focused: bool,
    /// Why there is no direction (weights all zero, attributes missing).
    pub problem: Option<String>,
}

impl Widget for DialWidget<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let mode = match self.dial.mode {
            DialMode::Angle => " Direction · angle θ ",
            DialMode::Weights => " Direction · weights ",
        };
        let roomy = area.width >= 42;
        let hint = match (self.focused, self.dial.mode, roomy) {
            (false, _, _) => " Tab here to turn ",
            (true, DialMode::Angle, true) => " ←→ 5° · x y axes · p presets · F4 weights ",
            (true, DialMode::Angle, false) => " ←→ turn · p presets ",
            (true, DialMode::Weights, true) => " ↑↓ pick · ←→ ±0.1 · x y axis · F4 angle ",
            (true, DialMode::Weights, false) => " ↑↓ pick · ←→ ±0.1 ",
        };
        let block = Block::bordered()
            .title(mode)
            .title_bottom(Line::from(hint).right_aligned())
            .border_style(focus_style(self.focused));
        let inner = block.inner(area);
        block.render(area, buf);
        if inner.width == 0 || inner.height == 0 {
            return;
        }
        let parts = split(inner, self.dial.mode);
        let reward = self.candidate.and_then(crate::tui::state::shown_reward);
        let stale = self
            .candidate
            .is_some_and(|c| !matches!(c.freshness, Freshness::Fresh));
        let r_style = if stale {
            stale_style()
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        };
        let plane = self.dial.plane(self.labels).ok();
        // A gating model's own direction, beside the user's: R under it is its score, and
        // its part in the dial's plane is drawn on the circle.
        let own = self.candidate.and_then(|c| c.model_direction.as_deref());
        let own_in_plane = own.zip(plane).and_then(|(c, p)| own_in_plane(c, p));
        let own_text = match (self.candidate.and_then(|c| c.model_reward), own_in_plane) {
            (None, _) => Vec::new(),
            (Some(r), None) => vec![format!("gating R = {}", fmt2(Some(r)))],
            (Some(r), Some((deg, share))) => pack(
                &[
                    format!("gating R = {}", fmt2(Some(r))),
                    format!(
                        "◆ θ {}° ({:.0}% in plane)",
                        fmt_angle(deg.round()),
                        share * 100.0
                    ),
                ],
                parts.text.width,
            ),
        };
        match self.dial.mode {
            DialMode::Angle => {
                let mut text = angle_text(self.dial.degrees, reward, parts.text.width);
                text.extend(own_text);
                // A value wider than the split expected takes rows from the circle.
                let (canvas, text_area) = grow_text(parts.canvas, parts.text, text.len());
                let names = plane
                    .and_then(|p| crate::preference::plane_names(self.labels, p))
                    .unwrap_or_default();
                render_circle(self.dial.degrees, own_in_plane, &names, canvas, buf);
                Paragraph::new(styled_lines(text, r_style)).render(text_area, buf);
            }
            DialMode::Weights => {
                self.render_weights(parts.list, buf);
                let norm = self.dial.weights.iter().map(|w| w * w).sum::<f64>().sqrt();
                let mut text = weights_text(norm, reward, parts.text.width);
                text.extend(own_text);
                Paragraph::new(styled_lines(text, r_style)).render(parts.text, buf);
            }
        }
        if let Some(p) = self.problem {
            let r = Rect {
                y: parts.text.y,
                height: 1,
                ..parts.text
            };
            Paragraph::new(Line::styled(p, Style::default().fg(Color::LightRed))).render(r, buf);
        }
    }
}

/// The text's lines with `R = …` in `r_style`.
fn styled_lines(text: Vec<String>, r_style: Style) -> Vec<Line<'static>> {
    text.into_iter()
        .map(|l| match l.find("R = ") {
            Some(at) => Line::from(vec![
                Span::raw(l[..at].to_string()),
                Span::styled(l[at..].to_string(), r_style),
            ]),
            None => Line::raw(l),
        })
        .collect()
}

/// Moves the border between the circle and the text up so the text gets `rows` rows.
fn grow_text(canvas: Rect, text: Rect, rows: usize) -> (Rect, Rect) {
    let extra = (rows as u16).saturating_sub(text.height).min(canvas.height);
    if extra == 0 {
        return (canvas, text);
    }
    (
        Rect {
            height: canvas.height - extra,
            ..canvas
        },
        Rect {
            y: text.y - extra,
            height: text.height + extra,
            ..text
        },
    )
}

/// A gating model's direction `own` in the plane `(x, y)`: its angle there and the share of
/// its length that lies in the plane; none when it has no part there.
pub fn own_in_plane(own: &[f64], (x, y): (usize, usize)) -> Option<(f64, f64)> {
    let (cx, cy) = (*own.get(x)?, *own.get(y)?);
    let in_plane = cx.hypot(cy);
    let norm = own.iter().map(|w| w * w).sum::<f64>().sqrt();
    (in_plane > 0.0 && norm.is_finite()).then(|| (angle_of(cx, cy), in_plane / norm))
}

/// The circle with the direction, and a gating model's own in magenta as its projection on
/// the plane (`own`: angle and length, so a direction mostly off the plane sits near the
/// centre); the axes named by the first four letters of `names`.
fn render_circle(
    degrees: f64,
    own: Option<(f64, f64)>,
    names: &(String, String),
    canvas: Rect,
    buf: &mut Buffer,
) {
    if canvas.width < 4 || canvas.height < 2 {
        return;
    }
    let four = |s: &str| -> String { s.chars().take(4).collect() };
    let (x_name, y_name) = (four(&names.0), four(&names.1));
    let (xb, yb) = bounds(canvas);
    let (s, c) = degrees.to_radians().sin_cos();
    let labels = canvas.width >= 20 && canvas.height >= 6;
    Canvas::default()
        .marker(Marker::Braille)
        .x_bounds(xb)
        .y_bounds(yb)
        .paint(move |ctx| {
            ctx.draw(&CanvasLine::new(-1.1, 0.0, 1.1, 0.0, Color::DarkGray));
            ctx.draw(&CanvasLine::new(0.0, -1.1, 0.0, 1.1, Color::DarkGray));
            ctx.draw(&Circle {
                x: 0.0,
                y: 0.0,
                radius: 1.0,
                color: Color::Gray,
            });
            ctx.layer();
            if let Some((own, share)) = own {
                let (s, c) = own.to_radians().sin_cos();
                let (x, y) = (c * share, s * share);
                ctx.draw(&CanvasLine::new(0.0, 0.0, x, y, Color::Magenta));
                ctx.print(x, y, Span::styled("◆", Style::default().fg(Color::Magenta)));
            }
            ctx.draw(&CanvasLine::new(0.0, 0.0, c, s, Color::Yellow));
            // Axis names outside the circle, where they fit.
            let cell = (xb[1] - xb[0]) / canvas.width as f64;
            if labels && 1.1 + 4.0 * cell <= xb[1] {
                ctx.print(
                    1.1,
                    0.0,
                    Span::styled(x_name.clone(), Style::default().fg(Color::DarkGray)),
                );
            }
            if labels {
                // One cell right of the vertical axis, clear of the knob at 90°.
                ctx.print(
                    1.5 * cell,
                    yb[1] - 0.02,
                    Span::styled(y_name.clone(), Style::default().fg(Color::DarkGray)),
                );
            }
            // The knob last: labels are drawn in order, and at 90° "verb" shares its row.
            ctx.print(c, s, Span::styled("●", Style::default().fg(Color::Yellow)));
        })
        .render(canvas, buf);
}

impl DialWidget<'_> {
    fn render_weights(&self, list: Rect, buf: &mut Buffer) {
        if list.height == 0 {
            return;
        }
        let n = self.dial.weights.len();
        let first = weights_scroll(list.height, n, self.dial.cursor);
        let norm = self.dial.weights.iter().map(|w| w * w).sum::<f64>().sqrt();
        // Columns for the raw and unit weights as wide as the widest value needs.
        let num_w = self
            .dial
            .weights
            .iter()
            .map(|w| format!("{w:+.2}").chars().count())
            .max()
            .unwrap_or(5)
            .max(6);
        let name_w = (list.width as usize).saturating_sub(4 + 2 * num_w).min(24);
        let lines: Vec<Line> = (first..n)
            .take(list.height as usize)
            .map(|i| {
                let w = self.dial.weights[i];
                let unit = if norm > 0.0 { w / norm } else { 0.0 };
                let name = self
                    .labels
                    .get(i)
                    .map(|l| display_name(l, false))
                    .unwrap_or_default();
                let cursor = i == self.dial.cursor;
                let text = format!(
                    "{}{:<name_w$} {w:>+num_w$.2} {unit:>+6.2}",
                    if cursor { "▸" } else { " " },
                    super::clip(&name, name_w),
                );
                let mut style = Style::default();
                if w == 0.0 {
                    style = style.fg(Color::DarkGray);
                }
                if cursor && self.focused {
                    style = style.add_modifier(Modifier::REVERSED);
                } else if cursor {
                    style = style.add_modifier(Modifier::BOLD);
                }
                Line::styled(text, style)
            })
            .collect();
        Paragraph::new(lines).render(list, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_reads_like_the_paper() {
        assert_eq!(
            angle_text(15.0, Some(57.4149), 40),
            vec!["θ = 15°  v = (0.97, 0.26)  R = 57.41"]
        );
        assert_eq!(
            angle_text(-15.0, None, 30),
            vec!["θ = -15°  v = (0.97, -0.26)", "R = —"]
        );
        assert_eq!(angle_text(90.0, Some(1.0), 10).len(), 3);
    }

    #[test]
    fn clicks_point_the_dial_where_they_land() {
        // Odd sizes put a cell's centre on the dial's centre.
        let canvas = Rect::new(10, 5, 41, 21);
        // Right of centre: 0°; above: 90°; left: 180°; below: −90°.
        let (cx, cy) = (10 + 20, 5 + 10);
        assert_eq!(angle_at(canvas, cx + 15, cy), Some(0.0));
        assert_eq!(angle_at(canvas, cx, cy - 8), Some(90.0));
        assert_eq!(angle_at(canvas, cx - 16, cy), Some(180.0));
        assert_eq!(angle_at(canvas, cx, cy + 8), Some(-90.0));
        // Cells are twice as tall as wide, so one row up and two columns right is 45°.
        let d = angle_at(canvas, cx + 8, cy - 4).unwrap();
        assert!((d - 45.0).abs() <= 1.0, "{d}");
        assert_eq!(angle_at(Rect::default(), 0, 0), None);
    }

    #[test]
    fn bounds_keep_the_circle_round() {
        let (x, y) = bounds(Rect::new(0, 0, 40, 10));
        // 40 columns ≈ 20 rows of height: x spans twice the y range per cell.
        assert!(((x[1] - x[0]) / 40.0 - (y[1] - y[0]) / 20.0).abs() < 1e-9);
        let (x, y) = bounds(Rect::new(0, 0, 10, 40));
        assert!(((x[1] - x[0]) / 10.0 - (y[1] - y[0]) / 80.0).abs() < 1e-9);
    }

    #[test]
    fn the_weight_cursor_stays_in_view() {
        assert_eq!(weights_scroll(12, 10, 9), 0);
        assert_eq!(weights_scroll(4, 10, 0), 0);
        assert_eq!(weights_scroll(4, 10, 5), 2);
        assert_eq!(weights_scroll(4, 10, 9), 6);
    }
}
