//! The explorer's widgets, one per file. Each draws plain data handed to it by `view`.

pub mod axis;
pub mod bars;
pub mod candidates;
pub mod dial;
pub mod help;
pub mod progress;
pub mod ranking;
pub mod scatter;
pub mod status;
pub mod sweep;
pub mod tabs;
pub mod theme;
pub mod trajectory;

use ratatui::style::{Color, Modifier, Style};

use crate::tui::state::Freshness;

/// Each candidate's colour, by its place in the list.
pub fn candidate_color(index: usize) -> Color {
    const PALETTE: [Color; 8] = [
        Color::Cyan,
        Color::LightMagenta,
        Color::LightGreen,
        Color::Yellow,
        Color::LightBlue,
        Color::LightRed,
        Color::White,
        Color::Green,
    ];
    PALETTE[index % PALETTE.len()]
}

/// How numbers belonging to text that has changed since they were computed look.
pub fn stale_style() -> Style {
    Style::default()
        .fg(Color::DarkGray)
        .add_modifier(Modifier::DIM | Modifier::ITALIC)
}

/// The accent for the focused panel.
pub fn focus_style(focused: bool) -> Style {
    if focused {
        Style::default().fg(Color::Yellow)
    } else {
        Style::default().fg(Color::Gray)
    }
}

/// A one-character sign of a candidate's state, used in tabs and lists.
pub fn freshness_symbol(f: &Freshness, scoring: bool) -> &'static str {
    match f {
        _ if scoring => "…",
        Freshness::Empty => " ",
        Freshness::Unscored => "·",
        Freshness::Fresh => "✓",
        Freshness::Stale => "~",
        Freshness::Failed(_) => "!",
    }
}

/// A reward or score with two decimals, or a dash when there is none.
pub fn fmt2(x: Option<f64>) -> String {
    match x {
        Some(v) => format!("{v:.2}"),
        None => "—".into(),
    }
}

/// Cuts `s` to at most `width` columns, ending in `…` when cut.
pub fn clip(s: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    let total: usize = s.chars().map(|c| c.width().unwrap_or(0)).sum();
    if total <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > width - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// `text` broken at spaces into lines of at most `width` characters, each as full as it can be
/// (a word longer than `width` keeps a line of its own).
pub fn wrap_at_spaces(text: &str, width: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let need = line.chars().count() + 1 + word.chars().count();
        if !line.is_empty() && need > width {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push(line);
    }
    out
}

/// Cuts `s` from the left to at most `width` columns, starting with `…` when cut.
pub fn clip_left(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let tail: String = s.chars().skip(n - (width - 1)).collect();
    format!("…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_keeps_within_width() {
        assert_eq!(clip("helpfulness", 20), "helpfulness");
        assert_eq!(clip("helpfulness", 5), "help…");
        assert_eq!(clip("abc", 0), "");
        assert_eq!(clip_left("/a/long/path/model", 8), "…h/model");
        assert_eq!(clip_left("short", 8), "short");
    }
}
