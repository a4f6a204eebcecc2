//! The tab titles of the switchable panel (ranking, scatter, sweep), drawn in its top border.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

use crate::tui::state::View;

/// The pages the panel offers: the ranking too unless it has a panel of its own.
pub fn pages(ranking_elsewhere: bool) -> Vec<View> {
    if ranking_elsewhere {
        vec![View::Scatter, View::Sweep]
    } else {
        vec![View::Ranking, View::Scatter, View::Sweep]
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
    for (k, v) in pages(ranking_elsewhere).into_iter().enumerate() {
        if k > 0 {
            at += 1;
        }
        let w = name(v).chars().count() as u16 + 2;
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
}
