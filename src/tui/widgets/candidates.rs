//! The row of candidate tabs above the response editor: one tab per candidate in a stable
//! order, each with a sign of its state; the selected one highlighted.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use super::{candidate_color, freshness_symbol};
use crate::tui::state::CandidateView;

const LEAD: &str = "Responses ";

/// The tabs that fit in `area`: (x, width, candidate index), scrolled so the selected one is
/// visible.
pub fn tab_spans(names: &[&str], selected: usize, area: Rect) -> Vec<(u16, u16, usize)> {
    let widths: Vec<u16> = names.iter().map(|n| n.chars().count() as u16 + 3).collect();
    let lead = if area.width >= 40 {
        LEAD.len() as u16
    } else {
        0
    };
    let room = area.width.saturating_sub(lead + 2);
    // Start at the first tab such that the selected one still fits.
    let mut first = 0;
    while first < selected {
        let used: u16 = widths[first..=selected].iter().sum();
        if used <= room {
            break;
        }
        first += 1;
    }
    let mut out = Vec::new();
    let mut x = area.x + lead + u16::from(first > 0);
    for (i, w) in widths.iter().enumerate().skip(first) {
        if x + w > area.x + lead + room + 1 {
            break;
        }
        out.push((x, *w, i));
        x += w;
    }
    out
}

/// The candidate whose tab is at column `x`.
pub fn tab_at(names: &[&str], selected: usize, area: Rect, x: u16) -> Option<usize> {
    tab_spans(names, selected, area)
        .into_iter()
        .find(|(start, w, _)| x >= *start && x < start + w)
        .map(|(_, _, i)| i)
}

pub struct CandidateTabs<'a> {
    pub candidates: &'a [CandidateView],
    pub selected: usize,
}

impl Widget for CandidateTabs<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let names: Vec<&str> = self.candidates.iter().map(|c| c.name.as_str()).collect();
        let spans_at = tab_spans(&names, self.selected, area);
        if area.width >= 40 {
            buf.set_string(area.x, area.y, LEAD, Style::default().fg(Color::Gray));
        }
        let first = spans_at.first().map(|s| s.2).unwrap_or(0);
        let last = spans_at.last().map(|s| s.2).unwrap_or(0);
        if first > 0 {
            buf.set_string(
                spans_at[0].0 - 1,
                area.y,
                "‹",
                Style::default().fg(Color::Gray),
            );
        }
        for (x, _, i) in &spans_at {
            let c = &self.candidates[*i];
            let mut style = Style::default().fg(candidate_color(*i));
            if *i == self.selected {
                style = style.add_modifier(Modifier::REVERSED | Modifier::BOLD);
            }
            let text = format!(" {}{} ", c.name, freshness_symbol(&c.freshness, c.scoring));
            buf.set_string(*x, area.y, text, style);
        }
        let mut x = spans_at.last().map(|(x, w, _)| x + w).unwrap_or(area.x);
        if last + 1 < self.candidates.len() {
            buf.set_string(x, area.y, "›", Style::default().fg(Color::Gray));
            x += 1;
        }
        let hint = Line::from(vec![Span::styled(
            " Ctrl-N new · Alt-↑↓ switch",
            Style::default().fg(Color::DarkGray),
        )]);
        let hint_w = hint.width() as u16;
        if x + hint_w <= area.right() {
            buf.set_line(area.right() - hint_w, area.y, &hint, hint_w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabs_are_found_where_they_are_drawn() {
        let area = Rect::new(0, 10, 60, 1);
        let names = ["A", "B", "C"];
        let spans = tab_spans(&names, 0, area);
        assert_eq!(spans.len(), 3);
        for (x, w, i) in spans {
            assert_eq!(tab_at(&names, 0, area, x), Some(i));
            assert_eq!(tab_at(&names, 0, area, x + w - 1), Some(i));
        }
        assert_eq!(tab_at(&names, 0, area, 0), None);
    }

    #[test]
    fn the_selected_tab_stays_visible_when_they_do_not_fit() {
        let area = Rect::new(0, 0, 40, 1);
        let names: Vec<String> = (0..30).map(crate::tui::state::candidate_name).collect();
        let refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
        let spans = tab_spans(&refs, 25, area);
        assert!(spans.iter().any(|s| s.2 == 25));
        assert!(spans.iter().all(|(x, w, _)| x + w <= 40));
    }
}
