//! Candidates ranked by R under the current direction: best-of-n as DPA's rejection sampling
//! picks it.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::{candidate_color, clip, fmt2, freshness_symbol, stale_style};
use crate::preference::ranking;
use crate::tui::state::{CandidateView, Freshness};

/// The place in the ranking of the row at screen row `y` of the list's inside, if any (the
/// first row is a header).
pub fn row_at(inner: Rect, y: u16) -> Option<usize> {
    if y < inner.y || y >= inner.bottom() {
        return None;
    }
    ((y - inner.y) as usize).checked_sub(1)
}

/// Ranks candidates by R (unscored last).
pub fn order(candidates: &[CandidateView]) -> Vec<usize> {
    let rewards: Vec<Option<f64>> = candidates.iter().map(|c| c.reward).collect();
    ranking(&rewards)
}

/// The ranking list, drawn inside a panel.
pub struct RankingList<'a> {
    pub candidates: &'a [CandidateView],
    pub selected: usize,
    /// How the direction reads, for the header (`θ = 15°`).
    pub direction: String,
}

impl Widget for RankingList<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.height == 0 || area.width < 10 {
            return;
        }
        let order = order(self.candidates);
        let scored = self
            .candidates
            .iter()
            .filter(|c| c.reward.is_some())
            .count();
        let mut lines = vec![Line::from(vec![
            Span::styled(
                format!("best-of-{} under {}", self.candidates.len(), self.direction),
                Style::default().add_modifier(Modifier::BOLD),
            ),
            Span::styled(
                if scored < self.candidates.len() {
                    format!("  ({scored} scored)")
                } else {
                    String::new()
                },
                Style::default().fg(Color::DarkGray),
            ),
        ])];
        let w = area.width as usize;
        for (rank, &i) in order.iter().enumerate() {
            let c = &self.candidates[i];
            let stale = !matches!(c.freshness, Freshness::Fresh);
            let r_style = if stale || c.reward.is_none() {
                stale_style()
            } else {
                Style::default().add_modifier(Modifier::BOLD)
            };
            let place = if c.reward.is_some() {
                format!("{:>2}.", rank + 1)
            } else {
                "  –".into()
            };
            let best = rank == 0 && c.reward.is_some() && self.candidates.len() > 1;
            let head = vec![
                Span::raw(format!("{place} ")),
                Span::styled(
                    format!("{}{}", c.name, freshness_symbol(&c.freshness, c.scoring)),
                    Style::default()
                        .fg(candidate_color(i))
                        .add_modifier(Modifier::BOLD),
                ),
                Span::raw("  R "),
                Span::styled(format!("{:>7}", fmt2(c.reward)), r_style),
                Span::styled(
                    if best { " ★ " } else { "   " },
                    Style::default().fg(Color::Yellow),
                ),
            ];
            let used: usize = head.iter().map(|s| s.width()).sum();
            let mut spans = head;
            let preview = if c.preview.is_empty() {
                "(empty)".to_string()
            } else {
                c.preview.clone()
            };
            spans.push(Span::styled(
                clip(&preview, w.saturating_sub(used)),
                Style::default().fg(Color::Gray),
            ));
            let mut line = Line::from(spans);
            if i == self.selected {
                line = line.style(Style::default().bg(Color::Rgb(40, 40, 60)));
            }
            lines.push(line);
        }
        Paragraph::new(lines).render(area, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_below_the_header_map_to_ranks() {
        let inner = Rect::new(0, 5, 30, 4);
        assert_eq!(row_at(inner, 5), None, "header");
        assert_eq!(row_at(inner, 6), Some(0));
        assert_eq!(row_at(inner, 8), Some(2));
        assert_eq!(row_at(inner, 9), None, "below");
    }
}
