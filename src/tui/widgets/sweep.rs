//! R(θ) for θ ∈ [−90°, 90°], one curve per freshly scored candidate, on axes with ticks at
//! their values, with the current θ (when the direction is an angle in this plane), the
//! angles where two candidates swap places, and which candidate best-of-n picks on each
//! stretch. Stale candidates are named, not drawn: their curve belongs to other text.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::canvas::{Canvas, Line as CanvasLine};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use super::axis;
use super::candidate_color;
use super::scatter::Point;
use crate::preference::{crossings, fmt_angle, leaders, reward_at, sweep, PlaneFit};

pub const FROM: f64 = -90.0;
pub const TO: f64 = 90.0;

/// The y range of all curves, padded.
pub fn y_bounds(curves: &[Vec<(f64, f64)>]) -> [f64; 2] {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for (_, y) in curves.iter().flatten() {
        lo = lo.min(*y);
        hi = hi.max(*y);
    }
    if !lo.is_finite() {
        return [0.0, 100.0];
    }
    axis::padded(lo, hi, 0.08)
}

/// x ticks every 45° where they fit, else every 90°.
fn x_ticks(width: u16) -> Vec<(f64, String)> {
    let step = if width >= 30 { 45.0 } else { 90.0 };
    let mut out = Vec::new();
    let mut v = FROM;
    while v <= TO {
        out.push((v, format!("{}°", fmt_angle(v))));
        v += step;
    }
    out
}

pub struct Sweep<'a> {
    pub points: &'a [Point],
    pub plane: PlaneFit,
}

impl Sweep<'_> {
    /// The lines under the chart, most important first: the note, who wins where, flips,
    /// and which candidates are not drawn.
    fn text(&self, drawn: &[&Point]) -> Vec<Line<'static>> {
        let xy: Vec<(f64, f64)> = drawn.iter().map(|p| p.at).collect();
        let mut text: Vec<Line> = Vec::new();
        match self.plane {
            PlaneFit::Inside { .. } => {}
            _ => text.push(Line::styled(
                "weights mode: curves are R for angle directions; your weights are not one",
                Style::default().fg(Color::Yellow),
            )),
        }
        let runs = leaders(&xy, FROM, TO);
        if !runs.is_empty() {
            let mut spans = vec![Span::raw("best: ")];
            for (k, (a, b, i)) in runs.iter().enumerate() {
                if k > 0 {
                    spans.push(Span::raw(" │ "));
                }
                let p = drawn[*i];
                spans.push(Span::styled(
                    p.name.clone(),
                    Style::default().fg(candidate_color(p.index)),
                ));
                // Each stretch starts where the previous ended: name only the ends.
                let from = if k == 0 {
                    fmt_angle((a * 10.0).round() / 10.0)
                } else {
                    String::new()
                };
                spans.push(Span::raw(format!(
                    " {from}…{}°",
                    fmt_angle((b * 10.0).round() / 10.0)
                )));
            }
            text.push(Line::from(spans));
        }
        let flips = crossings(&xy);
        let flip_text = if flips.is_empty() {
            if drawn.len() < 2 {
                "flips: needs two freshly scored candidates".to_string()
            } else {
                "flips: none in [−90°, 90°]".to_string()
            }
        } else {
            let shown: Vec<String> = flips
                .iter()
                .map(|c| {
                    format!(
                        "{}/{} {}°",
                        drawn[c.a].name,
                        drawn[c.b].name,
                        fmt_angle((c.degrees * 10.0).round() / 10.0)
                    )
                })
                .collect();
            format!("flips (•): {}", shown.join(", "))
        };
        text.push(Line::styled(flip_text, Style::default().fg(Color::Gray)));
        let left_out: Vec<String> = self
            .points
            .iter()
            .filter(|p| p.shown() && !p.fresh())
            .map(|p| p.name.clone())
            .collect();
        if !left_out.is_empty() {
            text.push(Line::styled(
                format!("not drawn (stale): {}", left_out.join(", ")),
                super::stale_style(),
            ));
        }
        text
    }
}

impl Widget for Sweep<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.width < 12 || area.height < 4 {
            return;
        }
        let drawn: Vec<&Point> = self.points.iter().filter(|p| p.fresh()).collect();
        let xy: Vec<(f64, f64)> = drawn.iter().map(|p| p.at).collect();
        let text = self.text(&drawn);
        // Rows the text takes once wrapped; the chart keeps at least three plot rows and the
        // row of θ ticks, so small panels show less text, not a blank chart.
        let rows: u16 = text
            .iter()
            .map(|l| (l.width() as u16).div_ceil(area.width).max(1))
            .sum();
        let text_h = rows.min(area.height.saturating_sub(4)).min(area.height / 2);
        let chart = Rect {
            height: area.height - text_h,
            ..area
        };
        let text_area = Rect {
            y: chart.bottom(),
            height: text_h,
            ..area
        };
        let curves: Vec<Vec<(f64, f64)>> = xy.iter().map(|p| sweep(*p, FROM, TO, 1.0)).collect();
        let yb = y_bounds(&curves);
        let yt = axis::y_ticks(yb, chart.height.saturating_sub(1));
        let label_w = yt.iter().map(|(_, l)| l.chars().count()).max().unwrap_or(1) as u16;
        let parts = axis::chart_areas(chart, label_w);
        let plot = parts.plot;
        let xb = [FROM, TO];
        let now = self
            .plane
            .exact_degrees()
            .filter(|d| (FROM..=TO).contains(d));
        let marks: Vec<(f64, f64)> = crossings(&xy)
            .iter()
            .map(|c| (c.degrees, reward_at(xy[c.a], c.degrees)))
            .collect();
        let colors: Vec<Color> = drawn.iter().map(|p| candidate_color(p.index)).collect();
        Canvas::default()
            .marker(Marker::Braille)
            .x_bounds(xb)
            .y_bounds(yb)
            .paint(|ctx| {
                if yb[0] < 0.0 && yb[1] > 0.0 {
                    ctx.draw(&CanvasLine::new(FROM, 0.0, TO, 0.0, Color::DarkGray));
                }
                ctx.draw(&CanvasLine::new(0.0, yb[0], 0.0, yb[1], Color::DarkGray));
                if let Some(d) = now {
                    ctx.draw(&CanvasLine::new(d, yb[0], d, yb[1], Color::Yellow));
                }
                ctx.layer();
                for (curve, color) in curves.iter().zip(&colors) {
                    for w in curve.windows(2) {
                        ctx.draw(&CanvasLine::new(w[0].0, w[0].1, w[1].0, w[1].1, *color));
                    }
                }
            })
            .render(plot, buf);
        let tick_style = Style::default().fg(Color::Gray);
        axis::draw_y_ticks(buf, parts.y_labels, yb, &yt, tick_style);
        axis::draw_x_ticks(buf, parts.x_labels, xb, &x_ticks(plot.width), tick_style);
        for m in &marks {
            // A flip's dot as a character, so it reads apart from the curves.
            if let (Some(c), Some(r)) = (
                axis::column(m.0, xb, plot.width),
                axis::row(m.1, yb, plot.height),
            ) {
                buf.set_string(
                    plot.x + c,
                    plot.y + r,
                    "•",
                    Style::default().fg(Color::White),
                );
            }
        }
        Paragraph::new(text)
            .wrap(Wrap { trim: true })
            .render(text_area, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn y_bounds_cover_every_curve() {
        let c = vec![
            sweep((80.0, 20.0), FROM, TO, 1.0),
            sweep((60.0, 60.0), FROM, TO, 1.0),
        ];
        let [lo, hi] = y_bounds(&c);
        for (_, y) in c.iter().flatten() {
            assert!(*y >= lo && *y <= hi);
        }
        assert_eq!(y_bounds(&[]), [0.0, 100.0]);
    }

    #[test]
    fn theta_ticks_fit_the_width() {
        assert_eq!(x_ticks(40).len(), 5);
        let narrow: Vec<String> = x_ticks(16).into_iter().map(|t| t.1).collect();
        assert_eq!(narrow, vec!["-90°", "0°", "90°"]);
    }
}
