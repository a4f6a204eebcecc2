//! The reward-space scatter, as in the paper's figure: each candidate at (helpfulness,
//! verbosity), the direction vector from the origin, and each candidate's projection onto it
//! (the foot of the perpendicular, at distance R from the origin).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::canvas::{Canvas, Line as CanvasLine};
use ratatui::widgets::{Paragraph, Widget};

use super::{candidate_color, fmt2};
use crate::preference::{fmt_angle, projection, reward_at};

/// One candidate in the plane.
#[derive(Debug, Clone)]
pub struct Point {
    pub index: usize,
    pub name: String,
    pub at: (f64, f64),
    pub fresh: bool,
}

/// Bounds that hold the score square [0, 100]², every point and every projection, padded,
/// with equal units per braille dot on both axes so right angles look right.
pub fn bounds(points: &[Point], degrees: f64, area: Rect) -> ([f64; 2], [f64; 2]) {
    let (mut x0, mut x1, mut y0, mut y1) = (0.0f64, 100.0f64, 0.0f64, 100.0f64);
    for p in points {
        let f = projection(p.at, degrees);
        for (x, y) in [p.at, f] {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
    }
    let pad = 0.06 * (x1 - x0).max(y1 - y0);
    let (x0, x1, y0, y1) = (x0 - pad, x1 + pad, y0 - pad, y1 + pad);
    // A cell is 2×4 braille dots and about 1×2 in shape: one dot is square.
    let w = area.width.max(1) as f64;
    let h = area.height.max(1) as f64 * 2.0;
    let (dx, dy) = (x1 - x0, y1 - y0);
    if dx / w > dy / h {
        let need = dx / w * h;
        let m = (y0 + y1) / 2.0;
        ([x0, x1], [m - need / 2.0, m + need / 2.0])
    } else {
        let need = dy / h * w;
        let m = (x0 + x1) / 2.0;
        ([m - need / 2.0, m + need / 2.0], [y0, y1])
    }
}

pub struct Scatter<'a> {
    pub points: &'a [Point],
    /// The direction's angle in the plane.
    pub degrees: f64,
    pub selected: usize,
    /// Shown above the plot when the direction is not in this plane (weights mode).
    pub note: Option<String>,
}

impl Widget for Scatter<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.width < 12 || area.height < 5 {
            return;
        }
        let legend_h = 1;
        let plot = Rect {
            height: area.height - legend_h,
            ..area
        };
        let legend = Rect {
            y: area.bottom() - legend_h,
            height: legend_h,
            ..area
        };
        let (xb, yb) = bounds(self.points, self.degrees, plot);
        let (s, c) = self.degrees.to_radians().sin_cos();
        let reach = 2.0 * (xb[1] - xb[0]).max(yb[1] - yb[0]);
        let points = self.points;
        let selected = self.selected;
        let degrees = self.degrees;
        let note = self.note.clone();
        Canvas::default()
            .marker(Marker::Braille)
            .x_bounds(xb)
            .y_bounds(yb)
            .paint(move |ctx| {
                // Axes through the origin.
                ctx.draw(&CanvasLine::new(xb[0], 0.0, xb[1], 0.0, Color::DarkGray));
                ctx.draw(&CanvasLine::new(0.0, yb[0], 0.0, yb[1], Color::DarkGray));
                // The direction's line: dim behind the origin, bright ahead.
                ctx.draw(&CanvasLine::new(
                    0.0,
                    0.0,
                    -reach * c,
                    -reach * s,
                    Color::Rgb(90, 90, 40),
                ));
                ctx.draw(&CanvasLine::new(
                    0.0,
                    0.0,
                    reach * c,
                    reach * s,
                    Color::Yellow,
                ));
                for p in points {
                    let f = projection(p.at, degrees);
                    ctx.draw(&CanvasLine::new(p.at.0, p.at.1, f.0, f.1, Color::DarkGray));
                }
                ctx.layer();
                for p in points {
                    let f = projection(p.at, degrees);
                    let color = candidate_color(p.index);
                    ctx.print(f.0, f.1, Span::styled("◆", Style::default().fg(color)));
                    let mut st = Style::default().fg(color).add_modifier(Modifier::BOLD);
                    if !p.fresh {
                        st = st.add_modifier(Modifier::DIM);
                    }
                    if p.index == selected {
                        st = st.add_modifier(Modifier::REVERSED);
                    }
                    ctx.print(p.at.0, p.at.1, Span::styled(format!("●{}", p.name), st));
                }
                let cell = (xb[1] - xb[0]) / plot.width as f64;
                let xlabel = if plot.width >= 40 {
                    "helpfulness →"
                } else {
                    "help →"
                };
                ctx.print(
                    xb[1] - (xlabel.chars().count() as f64 + 0.5) * cell,
                    yb[0],
                    Span::styled(xlabel, Style::default().fg(Color::Gray)),
                );
                ctx.print(
                    xb[0] + 0.01 * (xb[1] - xb[0]),
                    yb[1],
                    Span::styled("↑ verbosity", Style::default().fg(Color::Gray)),
                );
                if let Some(n) = &note {
                    ctx.print(
                        xb[0] + 0.01 * (xb[1] - xb[0]),
                        yb[1] - 0.08 * (yb[1] - yb[0]),
                        Span::styled(n.clone(), Style::default().fg(Color::Yellow)),
                    );
                }
            })
            .render(plot, buf);
        let mut spans = vec![Span::styled(
            format!("v at θ = {}°  ", fmt_angle(self.degrees)),
            Style::default().fg(Color::Yellow),
        )];
        if self.points.is_empty() {
            spans.push(Span::styled(
                "no scored candidates yet",
                Style::default().fg(Color::DarkGray),
            ));
        }
        for p in self.points {
            spans.push(Span::styled(
                format!(
                    "{} R={}  ",
                    p.name,
                    fmt2(Some(reward_at(p.at, self.degrees)))
                ),
                Style::default().fg(candidate_color(p.index)),
            ));
        }
        Paragraph::new(Line::from(spans)).render(legend, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_hold_points_and_projections_with_square_dots() {
        let pts = vec![Point {
            index: 0,
            name: "A".into(),
            at: (70.0, 35.0),
            fresh: true,
        }];
        let area = Rect::new(0, 0, 60, 20);
        let (x, y) = bounds(&pts, -37.0, area);
        let f = projection((70.0, 35.0), -37.0);
        assert!(f.1 < 0.0);
        assert!(x[0] <= 0.0 && x[1] >= 100.0);
        assert!(y[0] <= f.1 && y[1] >= 100.0);
        let per_dot_x = (x[1] - x[0]) / 60.0;
        let per_dot_y = (y[1] - y[0]) / 40.0;
        assert!((per_dot_x - per_dot_y).abs() < 1e-9);
    }
}
