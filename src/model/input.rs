//! The scoring input: the model's template (DPA's card template, or the chat template a
//! model declares), tokenized with the model's own tokenizer, BOS first, no EOS, truncated
//! from the left as in training.

use std::path::Path;

use tokenizers::Tokenizer;

use super::template::Template;
use super::{ModelError, Setting};

/// The template up to the prompt.
pub const TEMPLATE_HEAD: &str = "[INST] You must read the following conversation carefully and rate the assistant's response from score 0-100 in these aspects: helpfulness, correctness, coherence, honesty, complexity, verbosity\n\nUser: ";
/// Between the prompt and the response.
pub const TEMPLATE_MIDDLE: &str = "\n\nAssistant: ";
/// After the response.
pub const TEMPLATE_TAIL: &str = " [/INST]";

/// The default `--max-tokens`: the length the reward model was trained with.
pub const DEFAULT_MAX_TOKENS: usize = 4096;

/// The exact text the model scores for one prompt/response pair.
pub fn render(prompt: &str, response: &str) -> String {
    let mut s = String::with_capacity(TEMPLATE_HEAD.len() + prompt.len() + response.len() + 24);
    s.push_str(TEMPLATE_HEAD);
    s.push_str(prompt);
    s.push_str(TEMPLATE_MIDDLE);
    s.push_str(response);
    s.push_str(TEMPLATE_TAIL);
    s
}

/// Bytes of text tried first per kept token when only the end of a long text is tokenized
/// (English runs at about four).
const SUFFIX_BYTES_PER_TOKEN: usize = 6;
const SUFFIX_SLACK_BYTES: usize = 1024;
/// Tokens beyond the kept ones that a suffix must yield: a cut changes the tokens near it only.
const SUFFIX_MARGIN_TOKENS: usize = 64;

/// The last `n` bytes of `text` or a little fewer, starting on a character.
fn tail(text: &str, n: usize) -> &str {
    let mut start = text.len().saturating_sub(n);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// The largest character boundary at or below `i` (or the text's end).
fn floor_char_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// One tokenized input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The ids the model sees: BOS, then the (possibly left-truncated) text.
    pub ids: Vec<u32>,
    /// How many tokens the input had before truncation (BOS included); a lower bound when
    /// `full_len_exact` is false (a long text of which only the end was tokenized).
    pub full_len: usize,
    pub full_len_exact: bool,
    /// Control tokens (such as `</s>`) that the text itself spelled out, which the tokenizer
    /// reads as control tokens, as the reference does.
    pub control_tokens: Vec<String>,
}

impl Encoded {
    pub fn truncated(&self) -> bool {
        self.full_len > self.ids.len()
    }
}

/// The tokenizer with the rules of the scoring input.
#[derive(Clone)]
pub struct InputEncoder {
    tokenizer: Tokenizer,
    /// The id put first (card template), or kept first when the input is cut (chat templates
    /// write it themselves).
    bos: Option<u32>,
    template: Template,
    max_tokens: usize,
    /// Ids of special added tokens and their text, to spot them inside user text.
    special: Vec<(u32, String)>,
}

impl std::fmt::Debug for InputEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputEncoder")
            .field("bos", &self.bos)
            .field("max_tokens", &self.max_tokens)
            .finish()
    }
}

impl InputEncoder {
    /// The tokenizer at `path` with DPA's card template.
    pub fn from_file(
        path: &Path,
        bos_hint: Option<u32>,
        max_tokens: usize,
    ) -> Result<Self, ModelError> {
        Self::with_template(path, bos_hint, max_tokens, Template::Card)
    }

    pub fn with_template(
        path: &Path,
        bos_hint: Option<u32>,
        max_tokens: usize,
        template: Template,
    ) -> Result<Self, ModelError> {
        let tokenizer = Tokenizer::from_file(path).map_err(|e| ModelError::Tokenizer {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let bos = match &template {
            // The card template has no BOS of its own: the id is put first.
            Template::Card => Some(tokenizer.token_to_id("<s>").or(bos_hint).ok_or_else(|| {
                ModelError::Tokenizer {
                    path: path.to_path_buf(),
                    message:
                        "no BOS token: the vocabulary has no `<s>` and config.json no bos_token_id"
                            .into(),
                }
            })?),
            Template::Chat(_) => bos_hint.or_else(|| tokenizer.token_to_id("<s>")),
        };
        if max_tokens < 2 {
            return Err(ModelError::Setting {
                setting: Setting::MaxTokens,
                message: format!(
                    "the longest input must be at least 2 tokens (BOS and one token), not {max_tokens}"
                ),
            });
        }
        let special = tokenizer
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, t)| t.special)
            .map(|(id, t)| (id, t.content))
            .collect();
        Ok(Self {
            tokenizer,
            bos,
            template,
            max_tokens,
            special,
        })
    }

    pub fn template(&self) -> &Template {
        &self.template
    }

    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// The largest id the tokenizer can produce, to check against the model's vocabulary.
    pub fn max_id(&self) -> u32 {
        self.tokenizer.get_vocab_size(true).saturating_sub(1) as u32
    }

    /// Tokenizes a prompt/response pair through the template.
    pub fn encode(&self, prompt: &str, response: &str) -> Result<Encoded, ModelError> {
        let text = self.template.render(prompt, response)?;
        match self.template {
            Template::Card => self.encode_text(&text),
            Template::Chat(_) => {
                let mut encoded = self.encode_chat(&text)?;
                for (_, special) in &self.special {
                    let typed =
                        prompt.contains(special.as_str()) || response.contains(special.as_str());
                    if typed && !encoded.control_tokens.contains(special) {
                        encoded.control_tokens.push(special.clone());
                    }
                }
                Ok(encoded)
            }
        }
    }

    /// Tokenizes a rendered chat template: its tokens as they are (the template writes BOS
    /// where the model wants it), and if they are more than `max_tokens`, the last ones, with
    /// a leading BOS kept first.
    fn encode_chat(&self, text: &str) -> Result<Encoded, ModelError> {
        let bos = self.bos.filter(|&b| {
            self.tokenizer
                .id_to_token(b)
                .is_some_and(|t| text.starts_with(t.as_str()))
        });
        self.encode_with(text, bos, true)
    }

    /// Tokenizes an already rendered input: BOS, the text's tokens, no EOS, and if that is
    /// longer than `max_tokens`, BOS followed by the last `max_tokens - 1` text tokens, as
    /// transformers' left truncation does.
    ///
    /// A long text is not tokenized whole (a 50 MB text took minutes and gigabytes): only a
    /// suffix that yields the kept tokens and a margin, which gives the same kept tokens as a
    /// suffix twice as long does; otherwise longer suffixes are tried, up to the whole text.
    pub fn encode_text(&self, text: &str) -> Result<Encoded, ModelError> {
        self.encode_with(text, self.bos, false)
    }

    /// `lead`: the id kept first; `in_text`: whether the text's own first token is that id
    /// (a chat template's BOS) rather than one to put in front.
    fn encode_with(
        &self,
        text: &str,
        lead: Option<u32>,
        in_text: bool,
    ) -> Result<Encoded, ModelError> {
        let keep = self.max_tokens - usize::from(lead.is_some());
        let mut suffix = keep
            .saturating_mul(SUFFIX_BYTES_PER_TOKEN)
            .saturating_add(SUFFIX_SLACK_BYTES);
        while suffix.saturating_mul(2) < text.len() {
            let near = self.tokenize(tail(text, suffix))?;
            if near.len() >= keep.saturating_add(SUFFIX_MARGIN_TOKENS) {
                let far = self.tokenize(tail(text, suffix * 2))?;
                if far.len() >= near.len() && far[far.len() - keep..] == near[near.len() - keep..] {
                    let cut = text.len() - tail(text, suffix * 2).len();
                    return Ok(self.encoded(lead, &far, text, cut));
                }
            }
            suffix = suffix.saturating_mul(2);
        }
        let all = self.tokenize(text)?;
        let content = match (lead, in_text) {
            (Some(b), true) if all.first() == Some(&b) => &all[1..],
            _ => &all[..],
        };
        Ok(self.encoded(lead, content, text, 0))
    }

    /// Byte offsets in `text` where its tokens end, as the tokenizer reads `text` alone.
    pub fn token_ends(&self, text: &str) -> Result<Vec<usize>, ModelError> {
        let enc = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| ModelError::Input(format!("tokenizer failed: {e}")))?;
        Ok(enc.get_offsets().iter().map(|&(_, end)| end).collect())
    }

    fn tokenize(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let enc = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| ModelError::Input(format!("tokenizer failed: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The input from the tokens of `text[cut..]` (all of it when `cut` is 0).
    fn encoded(&self, lead: Option<u32>, content: &[u32], text: &str, cut: usize) -> Encoded {
        let lead_len = usize::from(lead.is_some());
        let keep = content.len().min(self.max_tokens - lead_len);
        let mut ids = Vec::with_capacity(keep + 1);
        ids.extend(lead);
        ids.extend_from_slice(&content[content.len() - keep..]);
        let mut control_tokens: Vec<String> = Vec::new();
        // A chat template writes control tokens of its own: there the user's text is
        // searched instead (see `encode`).
        let scan = matches!(self.template, Template::Card);
        for id in content.iter().filter(|_| scan) {
            if let Some((_, text)) = self.special.iter().find(|(sid, _)| sid == id) {
                if !control_tokens.contains(text) {
                    control_tokens.push(text.clone());
                }
            }
        }
        if cut > 0 && scan {
            // The part left untokenized is searched as text, where the tokenizer would have
            // found the same control tokens.
            for (_, special) in &self.special {
                let end = floor_char_boundary(text, cut.saturating_add(special.len()));
                if !control_tokens.contains(special) && text[..end].contains(special.as_str()) {
                    control_tokens.push(special.clone());
                }
            }
        }
        Encoded {
            ids,
            full_len: content.len() + lead_len,
            full_len_exact: cut == 0,
            control_tokens,
        }
    }

    /// How many tokens the template's tail (` [/INST]`) takes at the end of an input. Every
    /// rescoring feeds at least these, however much of the input is cached.
    pub fn tail_tokens(&self) -> usize {
        let ids = |response: &str| {
            self.template
                .render("x", response)
                .ok()
                .and_then(|text| self.tokenizer.encode(text, false).ok())
                .map(|e| e.get_ids().to_vec())
                .unwrap_or_default()
        };
        let (a, b) = (ids("yes"), ids("no"));
        let common = a
            .iter()
            .rev()
            .zip(b.iter().rev())
            .take_while(|(x, y)| x == y)
            .count();
        common.max(1)
    }

    /// The text of a sequence of ids (control tokens spelled out; BOS dropped).
    pub fn decode(&self, ids: &[u32]) -> Option<String> {
        let ids: Vec<u32> = ids
            .iter()
            .copied()
            .skip_while(|&i| Some(i) == self.bos)
            .collect();
        self.tokenizer.decode(&ids, false).ok()
    }

    /// The text of a token id, for display.
    pub fn token_text(&self, id: u32) -> Option<String> {
        self.tokenizer.id_to_token(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_is_the_model_cards() {
        let s = render("P", "R");
        assert_eq!(
            s,
            "[INST] You must read the following conversation carefully and rate the assistant's response from score 0-100 in these aspects: helpfulness, correctness, coherence, honesty, complexity, verbosity\n\nUser: P\n\nAssistant: R [/INST]"
        );
    }
}
