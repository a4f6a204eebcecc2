//! Axes for the charts (scatter, sweep): ranges that fit the data, ticks at round values with
//! their numbers, where a value lands on a braille canvas, and a record of taken cells so
//! labels do not overwrite each other. Used by the chart widgets only.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;

/// A range around [lo, hi] with a margin, never empty: a single value gets room around it.
pub fn padded(lo: f64, hi: f64, margin: f64) -> [f64; 2] {
    if !lo.is_finite() || !hi.is_finite() || lo > hi {
        return [0.0, 1.0];
    }
    let span = hi - lo;
    if span <= f64::EPSILON * lo.abs().max(hi.abs()).max(1.0) {
        let d = (lo.abs() * 0.1).max(1.0);
        return [lo - d, hi + d];
    }
    [lo - span * margin, hi + span * margin]
}

/// A round step (1, 2 or 5 × 10ⁿ) giving at most `max_ticks` ticks over `span`.
pub fn nice_step(span: f64, max_ticks: usize) -> f64 {
    let raw = span / max_ticks.max(1) as f64;
    if !raw.is_finite() || raw <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

/// The multiples of a round step inside `bounds`, at most `max_ticks` of them (at least two
/// when the range allows), with the step.
pub fn ticks(bounds: [f64; 2], max_ticks: usize) -> (Vec<f64>, f64) {
    let step = nice_step(bounds[1] - bounds[0], max_ticks.max(2));
    let first = (bounds[0] / step).ceil() as i64;
    let last = (bounds[1] / step).floor() as i64;
    let out = (first..=last)
        .take(64)
        .map(|k| {
            let v = k as f64 * step;
            // Avoid printing -0.
            if v == 0.0 {
                0.0
            } else {
                v
            }
        })
        .collect();
    (out, step)
}

/// A tick's number with as many decimals as its step needs.
pub fn tick_label(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    format!("{v:.decimals$}")
}

/// The column (from the canvas's left) of the braille cell where x lands, as ratatui's
/// canvas places points; `None` off the canvas.
pub fn column(x: f64, bounds: [f64; 2], width: u16) -> Option<u16> {
    let span = bounds[1] - bounds[0];
    if width == 0 || span <= 0.0 || x < bounds[0] || x > bounds[1] {
        return None;
    }
    let dot = ((x - bounds[0]) * (width as f64 * 2.0 - 1.0) / span).round() as u16;
    Some((dot / 2).min(width - 1))
}

/// The row (from the canvas's top) of the braille cell where y lands; `None` off the canvas.
pub fn row(y: f64, bounds: [f64; 2], height: u16) -> Option<u16> {
    let span = bounds[1] - bounds[0];
    if height == 0 || span <= 0.0 || y < bounds[0] || y > bounds[1] {
        return None;
    }
    let dot = ((bounds[1] - y) * (height as f64 * 4.0 - 1.0) / span).round() as u16;
    Some((dot / 4).min(height - 1))
}

/// The parts of a chart's area: the plot, the y tick labels on its left and the x tick
/// labels under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChartAreas {
    pub plot: Rect,
    pub y_labels: Rect,
    pub x_labels: Rect,
}

/// Splits `area` for y labels `label_w` wide (plus one cell of gap) and one row of x labels.
pub fn chart_areas(area: Rect, label_w: u16) -> ChartAreas {
    let label_w = label_w.min(area.width / 3);
    let plot_h = area.height.saturating_sub(1);
    let plot = Rect {
        x: area.x + label_w + 1,
        y: area.y,
        width: area.width.saturating_sub(label_w + 1),
        height: plot_h,
    };
    ChartAreas {
        plot,
        y_labels: Rect {
            width: label_w,
            height: plot_h,
            ..area
        },
        x_labels: Rect {
            x: plot.x,
            y: area.y + plot_h,
            width: plot.width,
            height: area.height.min(1),
        },
    }
}

/// The y ticks that fit `rows` rows, as (value, label); the labels' width is their longest.
pub fn y_ticks(bounds: [f64; 2], rows: u16) -> Vec<(f64, String)> {
    let max = (rows as usize / 2).clamp(2, 6);
    let (vals, step) = ticks(bounds, max);
    vals.into_iter().map(|v| (v, tick_label(v, step))).collect()
}

/// Draws y tick labels right-aligned in `labels`, each on the row its value lands on in a
/// plot of `plot_h` rows, skipping a tick whose row is already used.
pub fn draw_y_ticks(
    buf: &mut Buffer,
    labels: Rect,
    bounds: [f64; 2],
    ticks: &[(f64, String)],
    style: Style,
) {
    let mut used: Vec<u16> = Vec::new();
    for (v, text) in ticks {
        let Some(r) = row(*v, bounds, labels.height) else {
            continue;
        };
        if used.contains(&r) {
            continue;
        }
        used.push(r);
        let w = text.chars().count() as u16;
        if w > labels.width {
            continue;
        }
        buf.set_string(labels.right() - w, labels.y + r, text, style);
    }
}

/// Draws x tick labels centred under the column each value lands on, dropping any that would
/// touch the one before or run off the row.
pub fn draw_x_ticks(
    buf: &mut Buffer,
    row_area: Rect,
    bounds: [f64; 2],
    ticks: &[(f64, String)],
    style: Style,
) {
    if row_area.height == 0 {
        return;
    }
    let mut next_free = row_area.x;
    for (v, text) in ticks {
        let Some(c) = column(*v, bounds, row_area.width) else {
            continue;
        };
        let w = text.chars().count() as u16;
        let centre = row_area.x + c;
        let start = centre
            .saturating_sub(w / 2)
            .max(row_area.x)
            .min(row_area.right().saturating_sub(w));
        if start < next_free || start + w > row_area.right() {
            continue;
        }
        buf.set_string(start, row_area.y, text, style);
        next_free = start + w + 1;
    }
}

/// Cells already taken by labels in a rectangle.
pub struct Taken {
    area: Rect,
    cells: Vec<bool>,
}

impl Taken {
    pub fn new(area: Rect) -> Self {
        Taken {
            area,
            cells: vec![false; area.width as usize * area.height as usize],
        }
    }

    fn index(&self, x: u16, y: u16) -> Option<usize> {
        (x >= self.area.x && x < self.area.right() && y >= self.area.y && y < self.area.bottom())
            .then(|| {
                (y - self.area.y) as usize * self.area.width as usize + (x - self.area.x) as usize
            })
    }

    /// Whether `w` cells from (x, y) are inside the area and free.
    pub fn free(&self, x: u16, y: u16, w: u16) -> bool {
        (0..w).all(|k| {
            x.checked_add(k)
                .and_then(|xx| self.index(xx, y))
                .is_some_and(|i| !self.cells[i])
        })
    }

    pub fn take(&mut self, x: u16, y: u16, w: u16) {
        for k in 0..w {
            if let Some(i) = x.checked_add(k).and_then(|xx| self.index(xx, y)) {
                self.cells[i] = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_inside_the_range() {
        let (t, step) = ticks([-0.37, 2.9], 5);
        assert_eq!(step, 1.0);
        assert_eq!(t, vec![0.0, 1.0, 2.0]);
        let (t, step) = ticks([0.0, 100.0], 5);
        assert_eq!(step, 20.0);
        assert_eq!(t, vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        let (t, step) = ticks([-0.031, 0.042], 4);
        assert_eq!(step, 0.02);
        assert_eq!(tick_label(t[0], step), "-0.02");
        assert_eq!(tick_label(0.0, 0.5), "0.0");
    }

    #[test]
    fn a_single_value_still_gets_a_range() {
        let [lo, hi] = padded(3.0, 3.0, 0.1);
        assert!(lo < 3.0 && hi > 3.0);
        assert_eq!(padded(f64::NAN, 1.0, 0.1), [0.0, 1.0]);
    }

    #[test]
    fn columns_and_rows_match_the_canvas_ends() {
        assert_eq!(column(0.0, [0.0, 10.0], 20), Some(0));
        assert_eq!(column(10.0, [0.0, 10.0], 20), Some(19));
        assert_eq!(column(11.0, [0.0, 10.0], 20), None);
        assert_eq!(row(10.0, [0.0, 10.0], 5), Some(0));
        assert_eq!(row(0.0, [0.0, 10.0], 5), Some(4));
    }

    #[test]
    fn x_labels_never_touch() {
        let mut buf = Buffer::empty(Rect::new(0, 0, 12, 1));
        let t: Vec<(f64, String)> = [-90.0, -45.0, 0.0, 45.0, 90.0]
            .iter()
            .map(|v| (*v, format!("{v}°")))
            .collect();
        draw_x_ticks(
            &mut buf,
            Rect::new(0, 0, 12, 1),
            [-90.0, 90.0],
            &t,
            Style::default(),
        );
        let line: String = (0..12).map(|x| buf[(x, 0)].symbol().to_string()).collect();
        assert!(line.starts_with("-90°"), "{line}");
        assert!(line.trim_end().ends_with("90°"), "{line}");
        assert!(!line.contains("°-") && !line.contains("°0"), "{line}");
    }

    #[test]
    fn taken_cells_are_not_free() {
        let mut t = Taken::new(Rect::new(2, 2, 5, 2));
        assert!(t.free(2, 2, 5));
        assert!(!t.free(2, 2, 6), "past the edge");
        t.take(3, 2, 2);
        assert!(!t.free(2, 2, 2));
        assert!(t.free(5, 2, 2));
        assert!(t.free(2, 3, 5));
    }
}
