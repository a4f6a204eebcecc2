//! Where in a response the reward moves: the scores of its prefixes, each prefix scored exactly
//! as a whole input (template head, prompt, the response cut at a boundary, template tail), so
//! a point is the model's score of that shorter response, not a credit given to a token.
//!
//! The pipeline cuts the response and encodes every prefix as a whole input; the backend
//! scores them as continuations of the whole input ([`Backend::continuations`]): the local
//! model with one cached pass and only each prefix's last tokens fed, a remote server with one
//! input per prefix.

use std::str::FromStr;

use super::{Backend, ScoreError};
use crate::model::InputEncoder;

/// Where a response is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Every {
    /// After every word (a run of non-space characters).
    #[default]
    Word,
    /// After every sentence: `.`, `!`, `?` or `…` (and closing quotes or brackets) before a
    /// space or the end, and at line breaks.
    Sentence,
    /// After every token of the response as the tokenizer reads it alone.
    Token,
}

impl FromStr for Every {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "word" => Ok(Every::Word),
            "sentence" => Ok(Every::Sentence),
            "token" => Ok(Every::Token),
            _ => Err(format!("`{s}`: expected word, sentence or token")),
        }
    }
}

/// One prefix of a response and its scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The prefix is `response[..end]` (a byte offset on a character boundary).
    pub end: usize,
    pub scores: Vec<f32>,
    /// Tokens of the prefix's input, and whether they were cut from the left.
    pub tokens: usize,
    pub truncated: bool,
}

/// The byte offsets where `response` is cut, increasing, each > 0; the whole response last.
pub fn boundaries(
    response: &str,
    every: Every,
    token_ends: impl FnOnce(&str) -> Result<Vec<usize>, ScoreError>,
) -> Result<Vec<usize>, ScoreError> {
    let mut ends: Vec<usize> = match every {
        Every::Word => response
            .char_indices()
            .zip(response.chars().skip(1).map(Some).chain([None]))
            .filter(|((_, c), next)| !c.is_whitespace() && next.is_none_or(char::is_whitespace))
            .map(|((i, c), _)| i + c.len_utf8())
            .collect(),
        Every::Sentence => {
            let closing = |c: char| matches!(c, '"' | '\'' | ')' | ']' | '»' | '”' | '’');
            let chars: Vec<(usize, char)> = response.char_indices().collect();
            let mut out = Vec::new();
            for (n, &(i, c)) in chars.iter().enumerate() {
                let next = chars.get(n + 1).map(|&(_, c)| c);
                if c == '\n' && i > 0 {
                    out.push(i);
                } else if (matches!(c, '.' | '!' | '?' | '…')
                    || (closing(c) && n > 0 && matches!(chars[n - 1].1, '.' | '!' | '?' | '…')))
                    && next.is_none_or(|x| x.is_whitespace())
                {
                    out.push(i + c.len_utf8());
                }
            }
            out
        }
        Every::Token => token_ends(response)?,
    };
    ends.retain(|&e| e > 0 && e <= response.len() && response.is_char_boundary(e));
    ends.push(response.len());
    ends.sort_unstable();
    ends.dedup();
    ends.retain(|&e| e > 0);
    Ok(ends)
}

/// The scores of `response`'s prefixes cut `every` word, sentence or token, the whole response
/// last; each equals scoring that prefix as the response on its own.
pub(super) fn trajectory(
    encoder: &InputEncoder,
    backend: &mut dyn Backend,
    (prompt, response): (&str, &str),
    every: Every,
    should_stop: &dyn Fn() -> bool,
) -> Result<Vec<Point>, ScoreError> {
    let ends = boundaries(response, every, |r| Ok(encoder.token_ends(r)?))?;
    let inputs = ends
        .iter()
        .map(|&e| encoder.encode(prompt, &response[..e]))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(full) = inputs.last() else {
        return Ok(Vec::new());
    };
    let ids: Vec<&[u32]> = inputs.iter().map(|e| e.ids.as_slice()).collect();
    let mut rows = backend.continuations(&full.ids, &ids, should_stop)?;
    // A gating model's rows carry its weights and score after the attributes: a point holds
    // the attributes, which any direction weighs.
    let labels = backend.info().labels.len();
    for row in &mut rows {
        row.truncate(labels);
    }
    if rows.len() != inputs.len() {
        return Err(ScoreError::Model(format!(
            "the backend answered {} of {} prefixes",
            rows.len(),
            inputs.len()
        )));
    }
    let points: Vec<Point> = ends
        .iter()
        .zip(&inputs)
        .zip(rows)
        .map(|((&end, e), scores)| Point {
            end,
            scores,
            tokens: e.ids.len(),
            truncated: e.truncated(),
        })
        .collect();
    // A non-finite number is never shown as a score.
    if let Some(p) = points
        .iter()
        .find(|p| p.scores.iter().any(|v| !v.is_finite()))
    {
        return Err(ScoreError::NonFinite(format!(
            "for the first {} bytes of the response",
            p.end
        )));
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(text: &str, every: Every) -> Vec<&str> {
        boundaries(text, every, |_| Ok(vec![]))
            .unwrap()
            .into_iter()
            .map(|e| &text[..e])
            .collect()
    }

    #[test]
    fn words_end_before_the_space_that_follows_them() {
        assert_eq!(
            cut("Blue,  on a\nclear day. ", Every::Word),
            [
                "Blue,",
                "Blue,  on",
                "Blue,  on a",
                "Blue,  on a\nclear",
                "Blue,  on a\nclear day.",
                "Blue,  on a\nclear day. "
            ]
        );
        assert_eq!(cut("日本 語", Every::Word), ["日本", "日本 語"]);
        assert!(cut("", Every::Word).is_empty());
    }

    #[test]
    fn sentences_end_after_their_stop_and_closing_quote() {
        assert_eq!(
            cut("He said \"Go.\" Then? no…\nNext", Every::Sentence),
            [
                "He said \"Go.\"",
                "He said \"Go.\" Then?",
                "He said \"Go.\" Then? no…",
                "He said \"Go.\" Then? no…\nNext"
            ]
        );
        // A decimal point is not a stop.
        assert_eq!(
            cut("Pi is 3.14 or so", Every::Sentence),
            ["Pi is 3.14 or so"]
        );
    }

    #[test]
    fn every_is_read_from_its_name() {
        assert_eq!("sentence".parse::<Every>(), Ok(Every::Sentence));
        assert!("line".parse::<Every>().is_err());
    }
}
