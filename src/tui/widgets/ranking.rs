//! Candidates ranked by R under the current direction: best-of-n as DPA's rejection sampling
//! picks it.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::{candidate_color, clip, fmt2, freshness_symbol, stale_style};
use crate::tui::state::{order, shown_reward, tier, CandidateView, Freshness, Tier};

/// The place in the ranking of the row at screen row `y` of the list's inside, if any (the
/// first row is a header).
pub fn row_at(inner: Rect, y: u16) -> Option<usize> {
    if y < inner.y || y >= inner.bottom() {
        return None;
    }
    ((y - inner.y) as usize).checked_sub(1)
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
        let fresh = self
            .candidates
            .iter()
            .filter(|c| tier(c) == Tier::Fresh)
            .count();
        let n = self.candidates.len();
        let w = area.width as usize;
        let header = format!("best-of-{n} under {}", self.direction);
        let count = format!("  ({fresh} fresh)");
        let count = if fresh < n && header.chars().count() + count.chars().count() <= w {
            count
        } else {
            String::new()
        };
        let mut lines = vec![Line::from(vec![
            Span::styled(
                clip(&header, w),
                Style::default().add_modifier(Modifier::BOLD),
            ),
            Span::styled(count, Style::default().fg(Color::DarkGray)),
        ])];
        // Every R in full: the column is as wide as the widest one.
        let r_w = self
            .candidates
            .iter()
            .map(|c| fmt2(shown_reward(c)).chars().count())
            .max()
            .unwrap_or(1);
        let name_w = self
            .candidates
            .iter()
            .map(|c| c.name.chars().count() + 1)
            .max()
            .unwrap_or(2);
        let place_w = format!("{n}.").len().max(2);
        // The `R` label and spacing are decoration, dropped when the row is narrow.
        let roomy = w >= place_w + 1 + name_w + 4 + r_w + 3 + 12;
        let mut fresh_rank = 0;
        for &i in &order {
            let c = &self.candidates[i];
            let t = tier(c);
            let r_style = if t == Tier::Fresh {
                Style::default().add_modifier(Modifier::BOLD)
            } else {
                stale_style()
            };
            let place = match t {
                Tier::Fresh => {
                    fresh_rank += 1;
                    format!("{fresh_rank}.")
                }
                Tier::Stale => "~".into(),
                Tier::None => "–".into(),
            };
            // Only a fresh result can be the best.
            let best = t == Tier::Fresh && fresh_rank == 1 && n > 1;
            let name = format!("{}{}", c.name, freshness_symbol(&c.freshness, c.scoring));
            let r = fmt2(shown_reward(c));
            let head = vec![
                Span::raw(format!("{place:>place_w$} ")),
                Span::styled(
                    format!("{name:<name_w$}"),
                    Style::default()
                        .fg(candidate_color(i))
                        .add_modifier(Modifier::BOLD),
                ),
                Span::raw(if roomy { "  R " } else { " " }),
                Span::styled(format!("{r:>r_w$}"), r_style),
                Span::styled(
                    if best { " ★ " } else { "   " },
                    Style::default().fg(Color::Yellow),
                ),
            ];
            let used: usize = head.iter().map(|s| s.width()).sum();
            let mut spans = head;
            let preview = match (&c.freshness, c.preview.is_empty()) {
                (Freshness::Empty, _) | (_, true) => "(empty)".to_string(),
                (Freshness::Stale, _) => format!("(stale) {}", c.preview),
                (Freshness::Failed(_), _) => format!("(failed) {}", c.preview),
                (Freshness::Unscored, _) => format!("(not scored) {}", c.preview),
                (Freshness::Fresh, _) => c.preview.clone(),
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
