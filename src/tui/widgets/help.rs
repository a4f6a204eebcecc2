//! The help overlay: the model's warnings in full (the status line has room for a glimpse), then
//! every key, from the same table the key handling is documented by.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget};

use super::wrap_at_spaces;
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

pub struct Help<'a> {
    pub scroll: u16,
    /// What the model said when it loaded (a mode's accuracy, memory, unused tensors).
    pub warnings: &'a [String],
}

/// The warnings wrapped to `width` columns under a heading, then a blank line; none: nothing.
fn warning_lines(warnings: &[String], width: usize) -> Vec<Line<'static>> {
    if warnings.is_empty() {
        return Vec::new();
    }
    let style = Style::default().fg(Color::Yellow);
    let mut lines = vec![Line::styled(
        "This model",
        style.add_modifier(Modifier::BOLD),
    )];
    for w in warnings {
        for (i, part) in wrap_at_spaces(w, width.saturating_sub(2).max(1))
            .into_iter()
            .enumerate()
        {
            let lead = if i == 0 { "⚠ " } else { "  " };
            lines.push(Line::styled(format!("{lead}{part}"), style));
        }
    }
    lines.push(Line::raw(""));
    lines
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

impl Widget for Help<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let two_columns = area.width >= 134;
        let w = if two_columns { 132 } else { 78 }.min(area.width.saturating_sub(2));
        let total = if two_columns {
            line_count(&HELP[..SPLIT]).max(line_count(&HELP[SPLIT..]))
        } else {
            line_count(HELP)
        };
        let warnings = warning_lines(self.warnings, w.saturating_sub(2) as usize);
        let h = ((total + warnings.len()) as u16 + 2).min(area.height.saturating_sub(2));
        let rect = crate::tui::layout::centered(area, w, h);
        Clear.render(rect, buf);
        let block = Block::bordered()
            .title(" Keys ")
            .title_bottom(Line::from(" ↑↓ scroll · Esc/F1 close ").right_aligned())
            .border_style(Style::default().fg(Color::Yellow))
            .style(Style::default().bg(Color::Rgb(20, 20, 30)));
        let inner = block.inner(rect);
        block.render(rect, buf);
        // The warnings stay in view; the keys scroll beneath them.
        let [top, inner] = Layout::vertical([
            Constraint::Length(warnings.len() as u16),
            Constraint::Fill(1),
        ])
        .areas(inner);
        Paragraph::new(warnings).render(top, buf);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn screen(help: Help, width: u16, height: u16) -> Vec<String> {
        let mut buf = Buffer::empty(Rect::new(0, 0, width, height));
        help.render(buf.area, &mut buf);
        (0..height)
            .map(|y| {
                (0..width)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect::<String>()
            })
            .collect()
    }

    #[test]
    fn the_models_warnings_are_shown_in_full_above_the_keys() {
        let warning = "--dtype auto chose q8_0, the smallest mode that keeps the ranking, but it \
                       needs about 8.7 GiB and 6.0 GiB of memory is free: expect paging and \
                       slow passes; --dtype q4_k needs about 4.5 GiB but may not keep the ranking \
                       (τ as low as 0.394)";
        let rows = screen(
            Help {
                scroll: 0,
                warnings: &[warning.to_string()],
            },
            90,
            60,
        );
        let text: Vec<String> = rows
            .iter()
            .map(|r| {
                r.trim_matches(|c: char| c == ' ' || c == '│')
                    .trim()
                    .to_string()
            })
            .collect();
        let start = text.iter().position(|l| l.starts_with("⚠ ")).unwrap();
        let mut joined = text[start].trim_start_matches("⚠ ").to_string();
        for l in &text[start + 1..] {
            if l.is_empty() {
                break;
            }
            joined.push(' ');
            joined.push_str(l);
        }
        assert_eq!(joined, warning, "{rows:#?}");
        assert!(text[start - 1] == "This model", "{rows:#?}");
        // The keys follow.
        assert!(text[start..].iter().any(|l| l.contains("F1")), "{rows:#?}");
    }

    #[test]
    fn no_warnings_no_heading() {
        let rows = screen(
            Help {
                scroll: 0,
                warnings: &[],
            },
            90,
            60,
        );
        assert!(!rows.iter().any(|r| r.contains("This model")));
    }
}
