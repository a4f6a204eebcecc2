//! Where in a response the reward moves: the scores of its prefixes, each prefix scored exactly
//! as a whole input (template head, prompt, the response cut at a boundary, template tail), so
//! a point is the model's score of that shorter response, not a credit given to a token.
//!
//! Cost: one pass over the whole input keeps its keys and values; every prefix whose input
//! starts as the whole input does (the usual case: all but the last few tokens) then feeds only
//! its own remaining tokens (the cut word and the template's tail) against those cached keys
//! and values, many prefixes in one pass ([`Mistral::forward_continuations`]). A prefix whose
//! input starts differently (left truncation moves with the length) feeds all of it: exact
//! either way.

use std::str::FromStr;

use super::mistral::Mistral;
use super::{Encoded, ModelError, RewardModel};

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

/// Most tokens fed in one pass of continuations (bounds the mask: tokens × context).
const TOKENS_PER_PASS: usize = 512;

/// The byte offsets where `response` is cut, increasing, each > 0; the whole response last.
pub fn boundaries(
    response: &str,
    every: Every,
    token_ends: impl FnOnce(&str) -> Result<Vec<usize>, ModelError>,
) -> Result<Vec<usize>, ModelError> {
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

impl RewardModel {
    /// The scores of `response`'s prefixes cut `every` word, sentence or token, the whole
    /// response last; each equals scoring that prefix as the response on its own.
    pub fn trajectory(
        &self,
        prompt: &str,
        response: &str,
        every: Every,
        should_stop: &dyn Fn() -> bool,
    ) -> Result<Vec<Point>, ModelError> {
        let ends = boundaries(response, every, |r| self.encoder().token_ends(r))?;
        let inputs = ends
            .iter()
            .map(|&e| self.encode(prompt, &response[..e]))
            .collect::<Result<Vec<_>, _>>()?;
        let Some(full) = inputs.last() else {
            return Ok(Vec::new());
        };
        let scores = continuations(self.decoder(), full, &inputs, should_stop)?;
        Ok(ends
            .iter()
            .zip(&inputs)
            .zip(scores)
            .map(|((&end, e), scores)| Point {
                end,
                scores,
                tokens: e.ids.len(),
                truncated: e.truncated(),
            })
            .collect())
    }
}

/// Scores every input of `inputs` against one cached pass over `full`.
fn continuations(
    model: &Mistral,
    full: &Encoded,
    inputs: &[Encoded],
    should_stop: &dyn Fn() -> bool,
) -> Result<Vec<Vec<f32>>, ModelError> {
    let out = model.forward(None, &[&full.ids], true, should_stop)?;
    let whole = out.logits.to_vec2::<f32>()?.remove(0);
    let cache = out
        .caches
        .and_then(|mut c| c.pop())
        .ok_or_else(|| ModelError::Input("the full pass kept no cache".into()))?;
    // Each input continues the cache after what it shares with the whole input; at least its
    // last token is fed, since the scores come from there.
    let tails: Vec<(usize, &[u32])> = inputs
        .iter()
        .map(|e| {
            let shared = e
                .ids
                .iter()
                .zip(&full.ids)
                .take_while(|(a, b)| a == b)
                .count()
                .min(e.ids.len() - 1);
            (shared, &e.ids[shared..])
        })
        .collect();
    let mut rows: Vec<Option<Vec<f32>>> = vec![None; inputs.len()];
    let mut batch: Vec<usize> = Vec::new();
    let mut fed = 0;
    let flush = |batch: &mut Vec<usize>, rows: &mut Vec<Option<Vec<f32>>>| {
        if batch.is_empty() {
            return Ok::<(), ModelError>(());
        }
        let part: Vec<(usize, &[u32])> = batch.iter().map(|&i| tails[i]).collect();
        // No continuation sees the cache past the latest start: attend over that much only.
        let upto = part.iter().map(|&(start, _)| start).max().unwrap_or(0);
        let got = model
            .forward_continuations(&cache.truncate(upto)?, &part, should_stop)?
            .to_vec2::<f32>()?;
        for (&i, r) in batch.iter().zip(got) {
            rows[i] = Some(r);
        }
        batch.clear();
        Ok(())
    };
    for (i, e) in inputs.iter().enumerate() {
        if e.ids == full.ids {
            rows[i] = Some(whole.clone());
            continue;
        }
        let n = tails[i].1.len();
        if fed + n > TOKENS_PER_PASS && !batch.is_empty() {
            flush(&mut batch, &mut rows)?;
            fed = 0;
        }
        batch.push(i);
        fed += n;
    }
    flush(&mut batch, &mut rows)?;
    Ok(rows.into_iter().map(|r| r.unwrap_or_default()).collect())
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
