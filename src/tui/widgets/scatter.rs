//! The reward-space scatter, as in the paper's figure: each candidate at (helpfulness,
//! verbosity) on axes with ticks that fit the data, and, when the whole direction lies in this
//! plane, the direction from the origin and each candidate's projection onto it (the foot of
//! the perpendicular, at distance R from the origin). When the direction leaves the plane no
//! projection is R, so none is drawn; the legend's `R=` is always the true v · r.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::canvas::{Canvas, Line as CanvasLine};
use ratatui::widgets::{Paragraph, Widget};

use super::axis::{self, Taken};
use super::{candidate_color, fmt2, stale_style};
use crate::preference::{fmt_angle, projection, PlaneFit};
use crate::tui::state::Freshness;

/// One candidate in the plane.
#[derive(Debug, Clone)]
pub struct Point {
    pub index: usize,
    pub name: String,
    pub at: (f64, f64),
    pub freshness: Freshness,
    /// R = v · r under the active direction (from `preference::reward`).
    pub reward: Option<f64>,
}

impl Point {
    pub fn fresh(&self) -> bool {
        self.freshness == Freshness::Fresh
    }

    /// Whether the point is drawn at all: an emptied candidate's old scores belong to no text.
    pub fn shown(&self) -> bool {
        self.freshness != Freshness::Empty
    }
}

/// The x and y ranges holding every shown point, the origin and (when drawn) every
/// projection, padded, with equal units per braille dot on both axes so right angles look
/// right. They follow the data: scores near 0 get a plot near 0, not a corner of 0–100.
pub fn bounds(points: &[Point], exact: Option<f64>, area: Rect) -> ([f64; 2], [f64; 2]) {
    let (mut x0, mut x1, mut y0, mut y1) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for p in points.iter().filter(|p| p.shown()) {
        let mut at = vec![p.at];
        if let Some(d) = exact.filter(|_| p.fresh()) {
            at.push(projection(p.at, d));
        }
        for (x, y) in at {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
    }
    if x1 - x0 == 0.0 && y1 - y0 == 0.0 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
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

/// Where a label of width `w` for a marker at (x, y) goes: right of it, left of it, above or
/// below, then ever further out up to three rows away; `None` when every place is taken.
pub fn label_spot(taken: &Taken, x: u16, y: u16, w: u16) -> Option<(u16, u16)> {
    let (x, y, w) = (x as i32, y as i32, w as i32);
    let mut spots = vec![(x + 1, y), (x - w, y), (x, y - 1), (x, y + 1)];
    for d in 1..=3 {
        for dy in [-d, d] {
            for dx in [0, 1 - w, 1, -w, 2, -w - 1] {
                spots.push((x + dx, y + dy));
            }
        }
        spots.push((x + 1 + d, y));
        spots.push((x - w - d, y));
    }
    spots
        .into_iter()
        .filter(|&(sx, sy)| sx >= 0 && sy >= 0 && sx <= u16::MAX as i32 && sy <= u16::MAX as i32)
        .map(|(sx, sy)| (sx as u16, sy as u16))
        .find(|&(sx, sy)| taken.free(sx, sy, w as u16))
}

/// What the legend says about the direction.
pub fn direction_note(plane: PlaneFit) -> (String, Color) {
    match plane {
        PlaneFit::Inside { degrees } => {
            (format!("v at θ = {}°", fmt_angle(degrees)), Color::Yellow)
        }
        PlaneFit::Partly { share, .. } => (
            format!(
                "weights mode: only {:.0}% of v is in this plane, so no projection here is R",
                share * 100.0
            ),
            Color::Yellow,
        ),
        PlaneFit::Outside => (
            "weights mode: v has no part in this plane; positions only".into(),
            Color::Yellow,
        ),
    }
}

pub struct Scatter<'a> {
    pub points: &'a [Point],
    /// How the active direction lies in this plane.
    pub plane: PlaneFit,
    pub selected: usize,
    /// The plane's attribute names (x, y).
    pub axes: (String, String),
}

impl Scatter<'_> {
    /// The legend: the direction, then each shown candidate's true R (stale ones marked).
    fn legend(&self) -> Vec<(String, Style)> {
        let (note, color) = direction_note(self.plane);
        let mut items = vec![(note, Style::default().fg(color))];
        let shown: Vec<&Point> = self.points.iter().filter(|p| p.shown()).collect();
        if shown.is_empty() {
            items.push((
                "no scored candidates yet".into(),
                Style::default().fg(Color::DarkGray),
            ));
        }
        for p in shown {
            if p.fresh() {
                items.push((
                    format!("{} R={}", p.name, fmt2(p.reward)),
                    Style::default().fg(candidate_color(p.index)),
                ));
            } else {
                items.push((
                    format!("{}~ stale R={}", p.name, fmt2(p.reward)),
                    stale_style(),
                ));
            }
        }
        items
    }
}

/// Packs styled items into lines of at most `width` columns, two spaces apart; an item wider
/// than the width is cut at the end of its own line.
fn pack_spans(items: Vec<(String, Style)>, width: usize) -> Vec<Line<'static>> {
    let mut lines: Vec<(usize, Vec<Span<'static>>)> = Vec::new();
    for (text, style) in items {
        let w = text.chars().count();
        match lines.last_mut() {
            Some((used, spans)) if *used + 2 + w <= width => {
                spans.push(Span::raw("  "));
                spans.push(Span::styled(text, style));
                *used += 2 + w;
            }
            _ => lines.push((w, vec![Span::styled(text, style)])),
        }
    }
    lines.into_iter().map(|(_, s)| Line::from(s)).collect()
}

impl Widget for Scatter<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.width < 12 || area.height < 5 {
            return;
        }
        let legend = pack_spans(self.legend(), area.width as usize);
        let legend_h = (legend.len() as u16).min(area.height / 3).max(1);
        let chart = Rect {
            height: area.height - legend_h,
            ..area
        };
        let legend_area = Rect {
            y: chart.bottom(),
            height: legend_h,
            ..area
        };
        let exact = self.plane.exact_degrees();
        // The y labels' width depends on the bounds, which depend on the plot's shape: two
        // passes settle it (labels rarely change width between them).
        let mut parts = axis::chart_areas(chart, 4);
        let (mut xb, mut yb) = bounds(self.points, exact, parts.plot);
        let mut yt = axis::y_ticks(yb, parts.plot.height);
        let label_w = yt.iter().map(|(_, l)| l.chars().count()).max().unwrap_or(1) as u16;
        if label_w != 4 {
            parts = axis::chart_areas(chart, label_w);
            (xb, yb) = bounds(self.points, exact, parts.plot);
            yt = axis::y_ticks(yb, parts.plot.height);
        }
        let plot = parts.plot;
        if plot.width < 4 || plot.height < 2 {
            return;
        }
        let points = self.points;
        Canvas::default()
            .marker(Marker::Braille)
            .x_bounds(xb)
            .y_bounds(yb)
            .paint(move |ctx| {
                // Axes through the origin, where it is in view.
                ctx.draw(&CanvasLine::new(xb[0], 0.0, xb[1], 0.0, Color::DarkGray));
                ctx.draw(&CanvasLine::new(0.0, yb[0], 0.0, yb[1], Color::DarkGray));
                let Some(deg) = exact else {
                    return;
                };
                let (s, c) = deg.to_radians().sin_cos();
                let reach = 2.0 * (xb[1] - xb[0]).max(yb[1] - yb[0]) + xb[0].abs() + yb[0].abs();
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
                for p in points.iter().filter(|p| p.fresh()) {
                    let f = projection(p.at, deg);
                    ctx.draw(&CanvasLine::new(p.at.0, p.at.1, f.0, f.1, Color::DarkGray));
                }
                ctx.layer();
                for p in points.iter().filter(|p| p.fresh()) {
                    let f = projection(p.at, deg);
                    let color = candidate_color(p.index);
                    ctx.print(f.0, f.1, Span::styled("◆", Style::default().fg(color)));
                }
            })
            .render(plot, buf);
        let tick_style = Style::default().fg(Color::Gray);
        axis::draw_y_ticks(buf, parts.y_labels, yb, &yt, tick_style);
        let max_x = (plot.width as usize / 8).clamp(2, 8);
        let (xs, step) = axis::ticks(xb, max_x);
        let xt: Vec<(f64, String)> = xs
            .into_iter()
            .map(|v| (v, axis::tick_label(v, step)))
            .collect();
        axis::draw_x_ticks(buf, parts.x_labels, xb, &xt, tick_style);
        self.draw_points(buf, plot, xb, yb);
        Paragraph::new(legend).render(legend_area, buf);
    }
}

impl Scatter<'_> {
    /// Markers, then names where they do not cover another marker or name, then the axis
    /// names in the corners where free.
    fn draw_points(&self, buf: &mut Buffer, plot: Rect, xb: [f64; 2], yb: [f64; 2]) {
        let mut taken = Taken::new(plot);
        let cell = |p: &Point| -> Option<(u16, u16)> {
            Some((
                plot.x + axis::column(p.at.0, xb, plot.width)?,
                plot.y + axis::row(p.at.1, yb, plot.height)?,
            ))
        };
        // The selected candidate first, then fresh ones, then stale: earlier ones get the
        // better label spots.
        let mut order: Vec<&Point> = self.points.iter().filter(|p| p.shown()).collect();
        order.sort_by_key(|p| (p.index != self.selected, !p.fresh(), p.index));
        let style = |p: &Point| {
            let mut st = if p.fresh() {
                Style::default()
                    .fg(candidate_color(p.index))
                    .add_modifier(Modifier::BOLD)
            } else {
                stale_style()
            };
            if p.index == self.selected {
                st = st.add_modifier(Modifier::REVERSED);
            }
            st
        };
        for p in &order {
            if let Some((x, y)) = cell(p) {
                let marker = if p.fresh() { "●" } else { "○" };
                buf.set_string(x, y, marker, style(p));
                taken.take(x, y, 1);
            }
        }
        for p in &order {
            let Some((x, y)) = cell(p) else {
                continue;
            };
            let name = if p.fresh() {
                p.name.clone()
            } else {
                format!("{}~", p.name)
            };
            let w = name.chars().count() as u16;
            if let Some((lx, ly)) = label_spot(&taken, x, y, w) {
                buf.set_string(lx, ly, &name, style(p));
                taken.take(lx, ly, w);
            }
        }
        let x_name = if plot.width >= 40 {
            format!("{} →", self.axes.0)
        } else {
            format!("{} →", self.axes.0.chars().take(4).collect::<String>())
        };
        let names = [(x_name, false), (format!("↑ {}", self.axes.1), true)];
        for (text, top) in names {
            let text = text.as_str();
            let w = text.chars().count() as u16;
            let (x, y) = if top {
                (plot.x + 1, plot.y)
            } else {
                (plot.right().saturating_sub(w + 1), plot.bottom() - 1)
            };
            if taken.free(x, y, w) {
                buf.set_string(x, y, text, Style::default().fg(Color::Gray));
                taken.take(x, y, w);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(index: usize, at: (f64, f64)) -> Point {
        Point {
            index,
            name: crate::tui::state::candidate_name(index),
            at,
            freshness: Freshness::Fresh,
            reward: Some(at.0),
        }
    }

    #[test]
    fn bounds_hold_points_and_projections_with_square_dots() {
        let pts = vec![point(0, (70.0, 35.0))];
        let area = Rect::new(0, 0, 60, 20);
        let (x, y) = bounds(&pts, Some(-37.0), area);
        let f = projection((70.0, 35.0), -37.0);
        assert!(f.1 < 0.0);
        assert!(x[0] <= 0.0 && x[1] >= 70.0);
        assert!(y[0] <= f.1 && y[1] >= 35.0);
        let per_dot_x = (x[1] - x[0]) / 60.0;
        let per_dot_y = (y[1] - y[0]) / 40.0;
        assert!((per_dot_x - per_dot_y).abs() < 1e-9);
    }

    #[test]
    fn bounds_follow_scores_near_zero() {
        let pts = vec![point(0, (0.8, -0.3)), point(1, (-0.5, 0.6))];
        let (x, y) = bounds(&pts, None, Rect::new(0, 0, 40, 20));
        assert!(x[1] - x[0] < 5.0 && y[1] - y[0] < 5.0, "{x:?} {y:?}");
        assert!(x[0] <= -0.5 && x[1] >= 0.8 && y[0] <= -0.3 && y[1] >= 0.6);
    }

    #[test]
    fn labels_find_a_free_spot_or_none() {
        let mut t = Taken::new(Rect::new(0, 0, 10, 3));
        t.take(5, 1, 1);
        assert_eq!(label_spot(&t, 5, 1, 2), Some((6, 1)));
        t.take(6, 1, 2);
        assert_eq!(label_spot(&t, 5, 1, 2), Some((3, 1)));
        t.take(0, 0, 10);
        t.take(0, 1, 10);
        t.take(0, 2, 10);
        assert_eq!(label_spot(&t, 5, 1, 2), None);
    }
}
