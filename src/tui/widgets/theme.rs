//! The colour depth of the terminal and the palette for it. Widgets draw with any colour; the
//! view calls [`degrade`] once per frame so that a terminal without truecolor gets the nearest
//! 256- or 16-colour equivalents instead of escape codes it would misread.

use std::sync::OnceLock;

use ratatui::buffer::Buffer;
use ratatui::style::Color;

/// How many colours the terminal shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    TrueColor,
    Ansi256,
    Ansi16,
}

/// The depth from `COLORTERM` and `TERM` as terminals set them: `truecolor`/`24bit` in
/// `COLORTERM` means 24-bit colour; a `TERM` ending in `256color` means the xterm palette;
/// anything else gets the 16 standard colours.
pub fn depth_from(colorterm: Option<&str>, term: Option<&str>) -> Depth {
    let colorterm = colorterm.unwrap_or("").to_ascii_lowercase();
    if colorterm.contains("truecolor") || colorterm.contains("24bit") {
        Depth::TrueColor
    } else if term.unwrap_or("").to_ascii_lowercase().contains("256color") {
        Depth::Ansi256
    } else {
        Depth::Ansi16
    }
}

/// This process's terminal depth, read once from the environment.
pub fn depth() -> Depth {
    static DEPTH: OnceLock<Depth> = OnceLock::new();
    *DEPTH.get_or_init(|| {
        depth_from(
            std::env::var("COLORTERM").ok().as_deref(),
            std::env::var("TERM").ok().as_deref(),
        )
    })
}

/// The 16 standard colours and the RGB values xterm gives them.
const ANSI16: [(Color, (u8, u8, u8)); 16] = [
    (Color::Black, (0, 0, 0)),
    (Color::Red, (205, 0, 0)),
    (Color::Green, (0, 205, 0)),
    (Color::Yellow, (205, 205, 0)),
    (Color::Blue, (0, 0, 238)),
    (Color::Magenta, (205, 0, 205)),
    (Color::Cyan, (0, 205, 205)),
    (Color::Gray, (229, 229, 229)),
    (Color::DarkGray, (127, 127, 127)),
    (Color::LightRed, (255, 0, 0)),
    (Color::LightGreen, (0, 255, 0)),
    (Color::LightYellow, (255, 255, 0)),
    (Color::LightBlue, (92, 92, 255)),
    (Color::LightMagenta, (255, 0, 255)),
    (Color::LightCyan, (0, 255, 255)),
    (Color::White, (255, 255, 255)),
];

/// The levels of xterm's 6×6×6 colour cube (indices 16–231).
const CUBE: [u8; 6] = [0, 95, 135, 175, 215, 255];

fn dist(a: (u8, u8, u8), b: (u8, u8, u8)) -> u32 {
    let d = |x: u8, y: u8| (x as i32 - y as i32).pow(2) as u32;
    d(a.0, b.0) + d(a.1, b.1) + d(a.2, b.2)
}

/// The RGB value of a 256-palette index.
fn indexed_rgb(i: u8) -> (u8, u8, u8) {
    match i {
        0..=15 => ANSI16[i as usize].1,
        16..=231 => {
            let k = i - 16;
            (
                CUBE[(k / 36) as usize],
                CUBE[(k / 6 % 6) as usize],
                CUBE[(k % 6) as usize],
            )
        }
        _ => {
            let g = 8 + 10 * (i - 232);
            (g, g, g)
        }
    }
}

/// The nearest xterm 256-palette index to an RGB colour (cube or grey ramp).
fn nearest_256(rgb: (u8, u8, u8)) -> u8 {
    let level = |v: u8| {
        (0..6)
            .min_by_key(|&k| (CUBE[k] as i32 - v as i32).abs())
            .unwrap_or(0) as u8
    };
    let cube = 16 + 36 * level(rgb.0) + 6 * level(rgb.1) + level(rgb.2);
    let mean = (rgb.0 as u32 + rgb.1 as u32 + rgb.2 as u32) / 3;
    let grey = 232 + ((mean.saturating_sub(3)) / 10).min(23) as u8;
    if dist(indexed_rgb(grey), rgb) < dist(indexed_rgb(cube), rgb) {
        grey
    } else {
        cube
    }
}

fn nearest_16(rgb: (u8, u8, u8)) -> Color {
    ANSI16
        .iter()
        .min_by_key(|(_, c)| dist(*c, rgb))
        .map_or(Color::Reset, |(c, _)| *c)
}

/// The colour of a change in R: green for a rise, red for a drop, from grey (no change) to
/// full colour at `|delta| >= scale`. An RGB colour: [`degrade`] maps it for the terminal.
pub fn change_color(delta: f64, scale: f64) -> Color {
    let t = if scale > 0.0 && delta.is_finite() {
        (delta.abs() / scale).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mix = |from: f64, to: f64| (from + (to - from) * t).round() as u8;
    if delta > 0.0 {
        Color::Rgb(mix(170.0, 40.0), mix(170.0, 230.0), mix(170.0, 60.0))
    } else if delta < 0.0 {
        Color::Rgb(mix(170.0, 240.0), mix(170.0, 40.0), mix(170.0, 40.0))
    } else {
        Color::Rgb(170, 170, 170)
    }
}

/// `color` as the terminal at `depth` can show it.
pub fn at_depth(color: Color, depth: Depth) -> Color {
    match (depth, color) {
        (Depth::TrueColor, c) => c,
        (Depth::Ansi256, Color::Rgb(r, g, b)) => Color::Indexed(nearest_256((r, g, b))),
        (Depth::Ansi16, Color::Rgb(r, g, b)) => nearest_16((r, g, b)),
        (Depth::Ansi16, Color::Indexed(i)) => nearest_16(indexed_rgb(i)),
        (_, c) => c,
    }
}

/// Rewrites every colour in `buf` for a terminal at `depth`.
pub fn degrade(buf: &mut Buffer, depth: Depth) {
    if depth == Depth::TrueColor {
        return;
    }
    for cell in buf.content.iter_mut() {
        cell.fg = at_depth(cell.fg, depth);
        cell.bg = at_depth(cell.bg, depth);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::layout::Rect;
    use ratatui::style::Style;

    fn painted() -> Buffer {
        let mut buf = Buffer::empty(Rect::new(0, 0, 4, 1));
        buf.set_string(0, 0, "ab", Style::default().fg(Color::Rgb(90, 90, 40)));
        buf.set_string(
            2,
            0,
            "cd",
            Style::default().fg(Color::Cyan).bg(Color::Rgb(40, 40, 60)),
        );
        buf
    }

    #[test]
    fn the_depth_follows_colorterm_then_term() {
        assert_eq!(
            depth_from(Some("truecolor"), Some("xterm")),
            Depth::TrueColor
        );
        assert_eq!(depth_from(Some("24bit"), None), Depth::TrueColor);
        assert_eq!(depth_from(None, Some("screen-256color")), Depth::Ansi256);
        assert_eq!(depth_from(Some(""), Some("xterm")), Depth::Ansi16);
        assert_eq!(depth_from(None, None), Depth::Ansi16);
    }

    #[test]
    fn truecolor_keeps_every_colour() {
        let mut buf = painted();
        degrade(&mut buf, Depth::TrueColor);
        assert_eq!(buf, painted());
    }

    #[test]
    fn ansi256_maps_rgb_into_the_palette() {
        let mut buf = painted();
        degrade(&mut buf, Depth::Ansi256);
        for cell in buf.content.iter() {
            for c in [cell.fg, cell.bg] {
                assert!(!matches!(c, Color::Rgb(..)), "{c:?} left as RGB");
            }
        }
        // The dim yellow stays a dim yellow (cube 95,95,0 or 95,95,95 nearby), named colours stay.
        assert_eq!(buf[(0, 0)].fg, Color::Indexed(nearest_256((90, 90, 40))));
        assert_eq!(buf[(2, 0)].fg, Color::Cyan);
        assert_eq!(nearest_256((0, 0, 0)), 16);
        assert_eq!(nearest_256((255, 255, 255)), 231);
        assert_eq!(nearest_256((128, 128, 128)), 244);
    }

    #[test]
    fn ansi16_uses_only_the_sixteen_colours() {
        let mut buf = painted();
        degrade(&mut buf, Depth::Ansi16);
        for cell in buf.content.iter() {
            for c in [cell.fg, cell.bg] {
                assert!(
                    !matches!(c, Color::Rgb(..) | Color::Indexed(_)),
                    "{c:?} not one of 16"
                );
            }
        }
        assert_eq!(buf[(2, 0)].bg, Color::Black, "dark blue-grey background");
        assert_eq!(
            at_depth(Color::Indexed(196), Depth::Ansi16),
            Color::LightRed
        );
    }
}
