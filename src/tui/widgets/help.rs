//! The help overlay: every key, from the same table the key handling is documented by.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget};

use crate::tui::keymap::HELP;

fn section_lines(sections: &[(&str, &[(&str, &str)])], key_w: usize) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for (k, (title, keys)) in sections.iter().enumerate() {
        if k > 0 {
            lines.push(Line::raw(""));
        }
        lines.push(Line::styled(
            title.to_string(),
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        ));
        for (key, what) in keys.iter() {
            lines.push(Line::from(vec![
                Span::styled(
                    format!("  {key:<key_w$} "),
                    Style::default().fg(Color::LightCyan),
                ),
                Span::raw(what.to_string()),
            ]));
        }
    }
    lines
}

fn line_count(sections: &[(&str, &[(&str, &str)])]) -> usize {
    sections.iter().map(|(_, k)| k.len() + 2).sum::<usize>()
}

pub struct Help {
    pub scroll: u16,
}

fn key_width(sections: &[(&str, &[(&str, &str)])]) -> usize {
    sections
        .iter()
        .flat_map(|(_, k)| k.iter().map(|(key, _)| key.chars().count()))
        .max()
        .unwrap_or(10)
}

/// The left column's sections when the help shows two columns.
const SPLIT: usize = 2;

impl Widget for Help {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let two_columns = area.width >= 134;
        let w = if two_columns { 132 } else { 78 }.min(area.width.saturating_sub(2));
        let total = if two_columns {
            line_count(&HELP[..SPLIT]).max(line_count(&HELP[SPLIT..]))
        } else {
            line_count(HELP)
        };
        let h = (total as u16 + 2).min(area.height.saturating_sub(2));
        let rect = crate::tui::layout::centered(area, w, h);
        Clear.render(rect, buf);
        let block = Block::bordered()
            .title(" Keys ")
            .title_bottom(Line::from(" ↑↓ scroll · Esc/F1 close ").right_aligned())
            .border_style(Style::default().fg(Color::Yellow))
            .style(Style::default().bg(Color::Rgb(20, 20, 30)));
        let inner = block.inner(rect);
        block.render(rect, buf);
        let max_scroll = (total as u16).saturating_sub(inner.height);
        let scroll = self.scroll.min(max_scroll);
        if two_columns {
            let [l, r] =
                Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                    .areas(inner);
            for (part, rect) in [(&HELP[..SPLIT], l), (&HELP[SPLIT..], r)] {
                Paragraph::new(section_lines(part, key_width(part)))
                    .scroll((scroll, 0))
                    .render(rect, buf);
            }
        } else {
            Paragraph::new(section_lines(HELP, key_width(HELP)))
                .scroll((scroll, 0))
                .render(inner, buf);
        }
    }
}
