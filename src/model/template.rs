//! How a prompt/response pair becomes the text a model scores: the DPA model card's fixed
//! template, or the Jinja chat template a model's tokenizer declares, rendered as
//! transformers' `apply_chat_template` renders it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minijinja::{Environment, ErrorKind, Value};
use serde_json::Value as Json;

use super::files::{self, shown};
use super::input::render as render_card;
use super::ModelError;

/// A real tokenizer_config.json is tens of KB (some embed several templates).
const MAX_TOKENIZER_CONFIG_BYTES: u64 = 16 << 20;
/// transformers 5 keeps a template in its own file beside the tokenizer.
pub const CHAT_TEMPLATE_FILE: &str = "chat_template.jinja";
pub const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";

/// The files of a model directory that may hold its chat template.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateFiles {
    pub tokenizer_config: Option<PathBuf>,
    pub chat_template: Option<PathBuf>,
}

impl TemplateFiles {
    pub fn in_dir(dir: &Path) -> Self {
        let optional = |name: &str| Some(dir.join(name)).filter(|p| p.is_file());
        Self {
            tokenizer_config: optional(TOKENIZER_CONFIG_FILE),
            chat_template: optional(CHAT_TEMPLATE_FILE),
        }
    }
}

/// The text a model scores for one pair.
#[derive(Debug, Clone)]
pub enum Template {
    /// The DPA model card's template; BOS is added by id in front of its tokens.
    Card,
    /// A chat template; the rendered text carries BOS itself where the template writes it.
    Chat(Box<ChatTemplate>),
}

impl Template {
    pub fn render(&self, prompt: &str, response: &str) -> Result<String, ModelError> {
        match self {
            Template::Card => Ok(render_card(prompt, response)),
            Template::Chat(t) => t.render(prompt, response),
        }
    }
}

/// A Jinja chat template with the special tokens transformers passes it.
#[derive(Clone)]
pub struct ChatTemplate {
    env: Environment<'static>,
    /// `bos_token`, `eos_token`, … as text.
    special: BTreeMap<String, String>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("special", &self.special)
            .finish()
    }
}

impl ChatTemplate {
    /// Compiles `source` with Jinja2's settings in transformers (blocks trimmed, Python
    /// string methods, `raise_exception`).
    pub fn new(source: String, special: BTreeMap<String, String>) -> Result<Self, String> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |message: String| -> Result<Value, _> {
            Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
        });
        // Templates that print today's date get a fixed one: a score must not change by
        // the day it is computed.
        env.add_function("strftime_now", |_format: String| "01 Jan 2025".to_string());
        env.add_template_owned("chat", source)
            .map_err(|e| format!("the chat template does not compile: {e:#}"))?;
        Ok(Self { env, special })
    }

    pub fn render(&self, prompt: &str, response: &str) -> Result<String, ModelError> {
        let messages = vec![
            BTreeMap::from([
                ("role", "user".to_string()),
                ("content", prompt.to_string()),
            ]),
            BTreeMap::from([
                ("role", "assistant".to_string()),
                ("content", response.to_string()),
            ]),
        ];
        let mut ctx: BTreeMap<String, Value> = self
            .special
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        ctx.insert("messages".into(), Value::from_serialize(&messages));
        ctx.insert("add_generation_prompt".into(), Value::from(false));
        ctx.insert("tools".into(), Value::from(()));
        ctx.insert("documents".into(), Value::from(()));
        let template = self
            .env
            .get_template("chat")
            .map_err(|e| ModelError::Input(format!("the chat template: {e}")))?;
        template
            .render(ctx)
            .map_err(|e| ModelError::Input(format!("the model's chat template failed: {e:#}")))
    }
}

/// The chat template a model directory declares: `chat_template.jinja`, else the
/// `chat_template` of `tokenizer_config.json` (a string, or a list of named templates of which
/// the one named `default` is used); `None` when it declares none.
pub fn load(
    tokenizer_config: Option<&Path>,
    jinja: Option<&Path>,
) -> Result<Option<ChatTemplate>, ModelError> {
    let bad = |path: &Path, message: String| ModelError::Tokenizer {
        path: path.to_path_buf(),
        message,
    };
    let config: Option<(Json, &Path)> = match tokenizer_config {
        None => None,
        Some(path) => {
            let bytes = files::read_small(path, MAX_TOKENIZER_CONFIG_BYTES, TOKENIZER_CONFIG_FILE)?;
            let json: Json = serde_json::from_slice(&bytes)
                .map_err(|e| bad(path, format!("not valid JSON: {}", shown(&e.to_string()))))?;
            Some((json, path))
        }
    };
    let source = match (jinja, &config) {
        (Some(path), _) => {
            let bytes = files::read_small(path, MAX_TOKENIZER_CONFIG_BYTES, CHAT_TEMPLATE_FILE)?;
            Some((
                String::from_utf8(bytes).map_err(|_| bad(path, "not UTF-8 text".into()))?,
                path,
            ))
        }
        (None, Some((json, path))) => match json.get("chat_template") {
            None | Some(Json::Null) => None,
            Some(Json::String(s)) => Some((s.clone(), *path)),
            Some(Json::Array(list)) => {
                let named = list
                    .iter()
                    .find(|t| t.get("name") == Some(&Json::from("default")));
                let text = named
                    .and_then(|t| t.get("template"))
                    .and_then(Json::as_str)
                    .ok_or_else(|| {
                        bad(
                            path,
                            "chat_template lists no template named \"default\"".into(),
                        )
                    })?;
                Some((text.to_string(), *path))
            }
            Some(other) => {
                return Err(bad(
                    path,
                    format!("chat_template is {}, not text", shown(&other.to_string())),
                ))
            }
        },
        (None, None) => None,
    };
    let Some((source, path)) = source else {
        return Ok(None);
    };
    let special = config
        .map(|(json, _)| special_tokens(&json))
        .unwrap_or_default();
    ChatTemplate::new(source, special)
        .map(Some)
        .map_err(|m| bad(path, m))
}

/// `bos_token`, `eos_token`, `unk_token`, `pad_token` as text: each either a string or an
/// added-token object with its `content`.
fn special_tokens(config: &Json) -> BTreeMap<String, String> {
    ["bos_token", "eos_token", "unk_token", "pad_token"]
        .into_iter()
        .filter_map(|k| {
            let v = config.get(k)?;
            let text = v
                .as_str()
                .or_else(|| v.get("content").and_then(Json::as_str))?;
            Some((k.to_string(), text.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(source: &str) -> ChatTemplate {
        let special = BTreeMap::from([("bos_token".to_string(), "<s>".to_string())]);
        ChatTemplate::new(source.into(), special).unwrap()
    }

    #[test]
    fn renders_the_pair_as_two_messages_with_trimmed_blocks() {
        let t = chat(
            "{{ bos_token }}{% for m in messages %}\n[{{ m['role'] }}] {{ m['content'] | trim }}\n{% endfor %}",
        );
        assert_eq!(
            t.render(" P ", "R").unwrap(),
            "<s>[user] P\n[assistant] R\n"
        );
    }

    #[test]
    fn python_string_methods_and_raise_exception_work() {
        let t = chat("{{ messages[1]['content'].strip() }}{% if messages|length > 2 %}{{ raise_exception('no') }}{% endif %}");
        assert_eq!(t.render("p", "  r  ").unwrap(), "r");
        let t = chat("{{ raise_exception('Conversation roles must alternate') }}");
        let e = t.render("p", "r").unwrap_err().to_string();
        assert!(e.contains("Conversation roles must alternate"), "{e}");
    }

    #[test]
    fn a_template_that_does_not_compile_is_refused_at_load() {
        let e = ChatTemplate::new("{% for %}".into(), BTreeMap::new()).unwrap_err();
        assert!(e.contains("does not compile"), "{e}");
    }
}
