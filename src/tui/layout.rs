//! Where each panel goes for a given terminal size. Shared by the view (to draw) and by the
//! mouse handling (to know what was clicked), so the two always agree.

use ratatui::layout::{Constraint, Layout, Rect};

/// Below this size the explorer shows a message instead of its panels.
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

/// The attribute bars panel wants this many rows (two headers, ten bars, two borders).
const BARS_HEIGHT: u16 = 14;

/// The screen's panels. Every panel rect includes its border.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub title: Rect,
    pub status: Rect,
    pub prompt: Rect,
    /// One row of candidate tabs above the response editor.
    pub tabs: Rect,
    pub response: Rect,
    pub bars: Rect,
    pub dial: Rect,
    /// Its own panel when the screen is wide; otherwise a page of `panel`.
    pub ranking: Option<Rect>,
    /// The tabbed panel: scatter and sweep (and the ranking when it has no panel of its own).
    pub panel: Rect,
}

fn left_width(width: u16) -> u16 {
    (width as u32 * 42 / 100).clamp(36, 90) as u16
}

/// Whether the ranking gets its own panel beside the tabbed one.
pub fn is_wide(size: (u16, u16)) -> bool {
    let (w, h) = size;
    w.saturating_sub(left_width(w)) >= 90 && h >= 36
}

pub fn too_small(area: Rect) -> bool {
    area.width < MIN_WIDTH || area.height < MIN_HEIGHT
}

/// The panels for a screen of `area`, or `None` when it is below the minimum size.
pub fn areas(area: Rect) -> Option<Areas> {
    if too_small(area) {
        return None;
    }
    let [title, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    let [left, right] = Layout::horizontal([
        Constraint::Length(left_width(area.width)),
        Constraint::Min(0),
    ])
    .areas(body);
    let prompt_h = (left.height * 35 / 100).max(5);
    let [prompt, tabs, response] = Layout::vertical([
        Constraint::Length(prompt_h),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(left);
    let wide = is_wide((area.width, area.height));
    let top_h = BARS_HEIGHT.min(right.height.saturating_sub(6));
    let [top, bottom] =
        Layout::vertical([Constraint::Length(top_h), Constraint::Min(0)]).areas(right);
    if wide {
        let dial_w = (top.width * 42 / 100).max(40);
        let [bars, dial] =
            Layout::horizontal([Constraint::Min(0), Constraint::Length(dial_w)]).areas(top);
        let rank_w = (bottom.width * 38 / 100).max(30);
        let [ranking, panel] =
            Layout::horizontal([Constraint::Length(rank_w), Constraint::Min(0)]).areas(bottom);
        Some(Areas {
            title,
            status,
            prompt,
            tabs,
            response,
            bars,
            dial,
            ranking: Some(ranking),
            panel,
        })
    } else {
        let dial_w = (bottom.width * 45 / 100).max(24);
        let [dial, panel] =
            Layout::horizontal([Constraint::Length(dial_w), Constraint::Min(0)]).areas(bottom);
        Some(Areas {
            title,
            status,
            prompt,
            tabs,
            response,
            bars: top,
            dial,
            ranking: None,
            panel,
        })
    }
}

/// The inside of a bordered panel.
pub fn inner(r: Rect) -> Rect {
    Rect {
        x: r.x.saturating_add(1),
        y: r.y.saturating_add(1),
        width: r.width.saturating_sub(2),
        height: r.height.saturating_sub(2),
    }
}

/// A box of at most `w`×`h` centred in `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_overlap(a: Rect, b: Rect) -> bool {
        a.intersection(b).is_empty()
    }

    #[test]
    fn panels_tile_the_screen_without_overlap() {
        for (w, h) in [(80, 24), (100, 32), (160, 48), (200, 60), (300, 90)] {
            let area = Rect::new(0, 0, w, h);
            let a = areas(area).expect("at least the minimum");
            let mut all = vec![
                a.title, a.status, a.prompt, a.tabs, a.response, a.bars, a.dial, a.panel,
            ];
            all.extend(a.ranking);
            for (i, x) in all.iter().enumerate() {
                assert!(area.contains(x.as_position()), "{w}x{h}: {x:?} off screen");
                assert!(x.right() <= w && x.bottom() <= h, "{w}x{h}: {x:?} spills");
                for y in &all[i + 1..] {
                    assert!(no_overlap(*x, *y), "{w}x{h}: {x:?} overlaps {y:?}");
                }
            }
            let covered: u32 = all.iter().map(|r| r.area()).sum();
            assert_eq!(covered, w as u32 * h as u32, "{w}x{h}: gaps");
        }
    }

    #[test]
    fn below_the_minimum_there_are_no_panels() {
        assert!(areas(Rect::new(0, 0, 79, 40)).is_none());
        assert!(areas(Rect::new(0, 0, 120, 23)).is_none());
        assert!(areas(Rect::new(0, 0, 0, 0)).is_none());
    }

    #[test]
    fn the_ranking_has_its_own_panel_only_when_wide() {
        assert!(areas(Rect::new(0, 0, 200, 60)).unwrap().ranking.is_some());
        assert!(areas(Rect::new(0, 0, 100, 32)).unwrap().ranking.is_none());
    }
}
