//! The tab titles of the switchable panel (ranking, scatter, sweep, trajectory), drawn in its top border.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

use crate::tui::state::View;

/// The pages the panel offers: the ranking too unless it has a panel of its own.
pub fn pages(ranking_elsewhere: bool) -> Vec<View> {
    if ranking_elsewhere {
        vec![View::Scatter, View::Sweep, View::Trajectory]
    } else {
        vec![View::Ranking, View::Scatter, View::Sweep, View::Trajectory]
    }
}

/// The page the panel shows for the chosen view.
pub fn shown(view: View, ranking_elsewhere: bool) -> View {
    if ranking_elsewhere && view == View::Ranking {
        View::Scatter
    } else {
        view
    }
}

pub fn name(v: View) -> &'static str {
    match v {
        View::Ranking => "Ranking",
        View::Scatter => "Scatter",
        View::Sweep => "Sweep",
        View::Trajectory => "Trajectory",
    }
}

/// Whether the full title is wider than a panel `width` wide: then the names lose their
/// padding and the key hint, so every tab stays readable.
fn compact(ranking_elsewhere: bool, width: u16) -> bool {
    full_width(ranking_elsewhere) + 2 > width as usize
}

fn full_width(ranking_elsewhere: bool) -> usize {
    let pages = pages(ranking_elsewhere);
    pages
        .iter()
        .map(|v| name(*v).chars().count() + 2)
        .sum::<usize>()
        + pages.len()
        - 1
        + 4
}

/// A page's name in the compact title.
fn short(v: View) -> &'static str {
    match v {
        View::Ranking => "Rank",
        View::Trajectory => "Traj",
        _ => name(v),
    }
}

/// The title line for a panel `width` wide: full, or compact when that does not fit.
pub fn title_fit(view: View, ranking_elsewhere: bool, width: u16) -> Line<'static> {
    if !compact(ranking_elsewhere, width) {
        return title(view, ranking_elsewhere);
    }
    let current = shown(view, ranking_elsewhere);
    let mut spans = Vec::new();
    for (k, v) in pages(ranking_elsewhere).into_iter().enumerate() {
        if k > 0 {
            spans.push(Span::styled("│", Style::default().fg(Color::DarkGray)));
        }
        spans.push(Span::styled(short(v), tab_style(v == current)));
    }
    Line::from(spans)
}

fn tab_style(current: bool) -> Style {
    if current {
        Style::default()
            .fg(Color::Black)
            .bg(Color::Yellow)
            .add_modifier(Modifier::BOLD)
    } else {
        Style::default().fg(Color::Gray)
    }
}

/// The title line: ` Ranking │ Scatter │ Sweep R(θ) ` with the shown page highlighted.
pub fn title(view: View, ranking_elsewhere: bool) -> Line<'static> {
    let current = shown(view, ranking_elsewhere);
    let mut spans = Vec::new();
    for (k, v) in pages(ranking_elsewhere).into_iter().enumerate() {
        if k > 0 {
            spans.push(Span::styled("│", Style::default().fg(Color::DarkGray)));
        }
        let style = if v == current {
            Style::default()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().fg(Color::Gray)
        };
        spans.push(Span::styled(format!(" {} ", name(v)), style));
    }
    spans.push(Span::styled(" F3 ", Style::default().fg(Color::DarkGray)));
    Line::from(spans)
}

/// The page whose title is at (x, y), when (x, y) is on the panel's top border.
pub fn tab_at(panel: Rect, ranking_elsewhere: bool, x: u16, y: u16) -> Option<View> {
    if y != panel.y {
        return None;
    }
    // Block titles start one cell in, after the corner.
    let mut at = panel.x + 1;
    let tight = compact(ranking_elsewhere, panel.width);
    for (k, v) in pages(ranking_elsewhere).into_iter().enumerate() {
        if k > 0 {
            at += 1;
        }
        let w = if tight {
            short(v).chars().count() as u16
        } else {
            name(v).chars().count() as u16 + 2
        };
        if x >= at && x < at + w {
            return Some(v);
        }
        at += w;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tab_hits_follow_the_title() {
        let panel = Rect::new(10, 3, 60, 20);
        assert_eq!(tab_at(panel, false, 11, 3), Some(View::Ranking));
        assert_eq!(tab_at(panel, false, 11 + 9 + 1, 3), Some(View::Scatter));
        assert_eq!(
            tab_at(panel, false, 11 + 9 + 1 + 9 + 1, 3),
            Some(View::Sweep)
        );
        assert_eq!(tab_at(panel, false, 11, 4), None);
        assert_eq!(tab_at(panel, true, 11, 3), Some(View::Scatter));
        assert_eq!(shown(View::Ranking, true), View::Scatter);
    }

    #[test]
    fn narrow_panels_get_a_compact_title_that_clicks_match() {
        let panel = Rect::new(0, 0, 25, 8);
        let t = title_fit(View::Sweep, false, panel.width);
        assert_eq!(t.to_string(), "Rank│Scatter│Sweep│Traj");
        assert!(t.width() + 2 <= panel.width as usize);
        assert_eq!(tab_at(panel, false, 1, 0), Some(View::Ranking));
        assert_eq!(tab_at(panel, false, 1 + 5, 0), Some(View::Scatter));
        assert_eq!(tab_at(panel, false, 1 + 13, 0), Some(View::Sweep));
        assert_eq!(tab_at(panel, false, 1 + 19, 0), Some(View::Trajectory));
        assert_eq!(
            title_fit(View::Sweep, false, 60).to_string(),
            title(View::Sweep, false).to_string()
        );
    }
}
