//! R(θ) for θ ∈ [−90°, 90°], one curve per candidate, with the current θ, the angles where two
//! candidates swap places, and which candidate best-of-n picks on each stretch.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph, Widget, Wrap};

use super::candidate_color;
use super::scatter::Point;
use crate::preference::{crossings, fmt_angle, leaders, reward_at, sweep};

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
    let pad = ((hi - lo) * 0.08).max(1.0);
    [lo - pad, hi + pad]
}

pub struct Sweep<'a> {
    pub points: &'a [Point],
    pub degrees: f64,
    pub note: Option<String>,
}

impl Widget for Sweep<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.width < 20 || area.height < 6 {
            return;
        }
        let xy: Vec<(f64, f64)> = self.points.iter().map(|p| p.at).collect();
        let flips: Vec<_> = crossings(&xy);
        let runs = leaders(&xy, FROM, TO);
        // Text under the chart: who wins where, and where rankings flip.
        let mut text: Vec<Line> = Vec::new();
        if let Some(n) = &self.note {
            text.push(Line::styled(n.clone(), Style::default().fg(Color::Yellow)));
        }
        if !runs.is_empty() {
            let mut spans = vec![Span::raw("best: ")];
            for (k, (a, b, i)) in runs.iter().enumerate() {
                if k > 0 {
                    spans.push(Span::raw(" │ "));
                }
                let p = &self.points[*i];
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
        let flip_text = if flips.is_empty() {
            if self.points.len() < 2 {
                "flips: needs two scored candidates".to_string()
            } else {
                "flips: none in [−90°, 90°]".to_string()
            }
        } else {
            let shown: Vec<String> = flips
                .iter()
                .map(|c| {
                    format!(
                        "{}/{} {}°",
                        self.points[c.a].name,
                        self.points[c.b].name,
                        fmt_angle((c.degrees * 10.0).round() / 10.0)
                    )
                })
                .collect();
            format!("flips (•): {}", shown.join(", "))
        };
        text.push(Line::styled(flip_text, Style::default().fg(Color::Gray)));
        // Rows the text takes once wrapped, up to half the panel.
        let rows: u16 = text
            .iter()
            .map(|l| (l.width() as u16).div_ceil(area.width).max(1))
            .sum();
        let text_h = rows.min(area.height / 2).max(1);
        let chart_area = Rect {
            height: area.height - text_h,
            ..area
        };
        let text_area = Rect {
            y: chart_area.bottom(),
            height: text_h,
            ..area
        };
        let curves: Vec<Vec<(f64, f64)>> = xy.iter().map(|p| sweep(*p, FROM, TO, 1.0)).collect();
        let yb = y_bounds(&curves);
        let now = if (FROM..=TO).contains(&self.degrees) {
            vec![(self.degrees, yb[0]), (self.degrees, yb[1])]
        } else {
            Vec::new()
        };
        let marks: Vec<(f64, f64)> = flips
            .iter()
            .map(|c| (c.degrees, reward_at(xy[c.a], c.degrees)))
            .collect();
        let mut datasets: Vec<Dataset> = curves
            .iter()
            .zip(self.points)
            .map(|(curve, p)| {
                Dataset::default()
                    .marker(Marker::Braille)
                    .graph_type(GraphType::Line)
                    .style(Style::default().fg(candidate_color(p.index)))
                    .data(curve)
            })
            .collect();
        datasets.push(
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::default().fg(Color::Yellow))
                .data(&now),
        );
        datasets.push(
            Dataset::default()
                .marker(Marker::Dot)
                .graph_type(GraphType::Scatter)
                .style(Style::default().fg(Color::White))
                .data(&marks),
        );
        let ylabels = [yb[0], (yb[0] + yb[1]) / 2.0, yb[1]].map(|v| Span::raw(format!("{v:.0}")));
        Chart::new(datasets)
            .x_axis(
                Axis::default()
                    .title("θ")
                    .bounds([FROM, TO])
                    .labels(["-90°", "-45°", "0°", "45°", "90°"])
                    .style(Style::default().fg(Color::Gray)),
            )
            .y_axis(
                Axis::default()
                    .title("R")
                    .bounds(yb)
                    .labels(ylabels)
                    .style(Style::default().fg(Color::Gray)),
            )
            .legend_position(None)
            .render(chart_area, buf);
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
}
