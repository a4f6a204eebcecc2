//! `config.json` as written by transformers 4.x and 5.x, reduced to what the port needs.

mod rope;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::files::shown;
use super::ModelError;
pub use rope::{Llama3Scaling, Rope};

/// The order of the DPA reward model's ten outputs, used when `id2label` is generic.
pub const DPA_LABELS: [&str; 10] = [
    "helpsteer-helpfulness",
    "helpsteer-correctness",
    "helpsteer-coherence",
    "helpsteer-complexity",
    "helpsteer-verbosity",
    "ultrafeedback-overall_score",
    "ultrafeedback-instruction_following",
    "ultrafeedback-truthfulness",
    "ultrafeedback-honesty",
    "ultrafeedback-helpfulness",
];

/// ArmoRM's 19 objectives, in its output order (its config leaves them `LABEL_0`).
pub const ARMO_LABELS: [&str; 19] = [
    "helpsteer-helpfulness",
    "helpsteer-correctness",
    "helpsteer-coherence",
    "helpsteer-complexity",
    "helpsteer-verbosity",
    "ultrafeedback-overall_score",
    "ultrafeedback-instruction_following",
    "ultrafeedback-truthfulness",
    "ultrafeedback-honesty",
    "ultrafeedback-helpfulness",
    "beavertails-is_safe",
    "prometheus-score",
    "argilla-overall_quality",
    "argilla-judge_lm",
    "code-complexity",
    "code-style",
    "code-explanation",
    "code-instruction-following",
    "code-readability",
];

/// The architecture name of ArmoRM's gated head.
pub const GATING_ARCHITECTURE: &str = "LlamaForRewardModelWithGating";
/// Where ArmoRM's gating reads the prompt: `<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n`
/// in Llama 3's vocabulary, as its modelling code fixes it.
const ARMO_PATTERN: [u32; 5] = [128009, 128006, 78191, 128007, 271];

/// Both dialects at once: every field that either writes, all optional where either may omit it.
#[derive(Debug, Clone, Deserialize)]
struct RawConfig {
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    model_type: Option<String>,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    #[serde(default)]
    num_key_value_heads: Option<usize>,
    #[serde(default)]
    head_dim: Option<usize>,
    #[serde(default = "default_act")]
    hidden_act: String,
    /// Gemma-2's name for it.
    #[serde(default)]
    hidden_activation: Option<String>,
    #[serde(default)]
    query_pre_attn_scalar: Option<f64>,
    #[serde(default)]
    attn_logit_softcapping: Option<f64>,
    /// Gemma-2: which layers use the sliding window.
    #[serde(default)]
    layer_types: Option<Vec<String>>,
    #[serde(default = "default_max_pos")]
    max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    rms_norm_eps: f64,
    /// transformers 4.x
    #[serde(default)]
    rope_theta: Option<f64>,
    #[serde(default)]
    rope_scaling: Option<serde_json::Value>,
    /// transformers 5.x
    #[serde(default)]
    rope_parameters: Option<serde_json::Value>,
    #[serde(default)]
    sliding_window: Option<usize>,
    /// Qwen2: the window is used only when this is set.
    #[serde(default)]
    use_sliding_window: Option<bool>,
    /// Llama: biases on the four attention projections.
    #[serde(default)]
    attention_bias: Option<bool>,
    #[serde(default)]
    mlp_bias: Option<bool>,
    #[serde(default)]
    pad_token_id: Option<u32>,
    #[serde(default)]
    bos_token_id: Option<u32>,
    #[serde(default)]
    num_labels: Option<usize>,
    #[serde(default)]
    id2label: Option<BTreeMap<String, String>>,
    /// transformers 4.x
    #[serde(default)]
    torch_dtype: Option<String>,
    /// transformers 5.x
    #[serde(default)]
    dtype: Option<String>,
    #[serde(default)]
    auto_map: Option<serde_json::Value>,
    /// ArmoRM's gated head.
    #[serde(default)]
    num_objectives: Option<usize>,
    #[serde(default)]
    gating_hidden_dim: Option<usize>,
    #[serde(default)]
    gating_n_hidden: Option<usize>,
    #[serde(default)]
    gating_temperature: Option<f64>,
}

/// What reads the decoder's output.
#[derive(Debug, Clone, PartialEq)]
pub enum HeadConfig {
    /// A `score` layer on the last token (`*ForSequenceClassification`).
    Score,
    /// ArmoRM's regression layer with its gating network.
    Gating(GatingConfig),
}

#[derive(Debug, Clone, PartialEq)]
pub struct GatingConfig {
    pub objectives: usize,
    pub hidden_dim: usize,
    /// Hidden layers of the gating network (it has one more, to `objectives`).
    pub n_hidden: usize,
    pub temperature: f64,
    pub pattern: Vec<u32>,
}

/// A real config.json is a few KB.
const MAX_CONFIG_BYTES: u64 = 16 << 20;
/// More outputs than any reward head has; bounds the label table made before the weights are read.
pub const MAX_LABELS: usize = 1 << 16;

fn default_act() -> String {
    "silu".into()
}
fn default_max_pos() -> usize {
    32768
}
fn default_eps() -> f64 {
    1e-6
}

/// The decoders this port runs: one computation with a few switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Mistral,
    /// No sliding window; optional attention biases; `llama3` rope scaling.
    Llama,
    /// Biases on the query, key and value projections.
    Qwen2,
    /// Norms around attention and MLP, `x · (1 + w)`; a scaled embedding; GELU (tanh); its
    /// own attention scale and soft-capping; a sliding window on alternate layers.
    Gemma2,
}

impl Family {
    fn from_model_type(model_type: &str) -> Option<Self> {
        match model_type {
            "mistral" => Some(Self::Mistral),
            "llama" => Some(Self::Llama),
            "qwen2" => Some(Self::Qwen2),
            "gemma2" => Some(Self::Gemma2),
            _ => None,
        }
    }
}

/// A decoder-only sequence classifier's configuration (Mistral, Llama or Qwen2), with both
/// dialects resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct MistralConfig {
    pub architectures: Vec<String>,
    pub family: Family,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub max_position_embeddings: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: Option<Llama3Scaling>,
    pub sliding_window: Option<usize>,
    /// Each layer's window where `layer_types` gives them (Gemma-2); see [`Self::layer_window`].
    pub layer_windows: Option<Vec<Option<usize>>>,
    /// Gemma-2's attention: the scale (`query_pre_attn_scalar`^-½) and the soft cap of the
    /// scores (`cap · tanh(s / cap)`).
    pub attn_scale: Option<f64>,
    pub attn_softcap: Option<f64>,
    /// Biases on the query, key and value projections (Qwen2; Llama's `attention_bias`).
    pub qkv_bias: bool,
    /// A bias on the output projection (Llama's `attention_bias`).
    pub o_bias: bool,
    pub pad_token_id: Option<u32>,
    pub bos_token_id: Option<u32>,
    pub num_labels: usize,
    /// One name per output, in output order.
    pub labels: Vec<String>,
    pub head: HeadConfig,
    /// The dtype the checkpoint says its weights are stored in, when it says.
    pub stored_dtype: Option<String>,
    /// Set when the checkpoint ships its own modelling code, which the port never runs.
    pub auto_map: bool,
}

impl MistralConfig {
    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        let bytes = super::files::read_small(path, MAX_CONFIG_BYTES, "config.json")?;
        let text = String::from_utf8(bytes).map_err(|e| ModelError::Config {
            path: path.to_path_buf(),
            message: format!("not UTF-8 text ({e})"),
        })?;
        Self::from_json(&text).map_err(|e| match e {
            ModelError::Config { message, .. } => ModelError::Config {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })
    }

    pub fn from_json(text: &str) -> Result<Self, ModelError> {
        let bad = |message: String| ModelError::Config {
            path: Default::default(),
            message,
        };
        let raw: RawConfig = serde_json::from_str(text).map_err(|e| bad(shown(&e.to_string())))?;
        // A config without model_type (hand-written, old) is read as Mistral's.
        let family = match raw.model_type.as_deref() {
            None => Family::Mistral,
            Some(mt) => Family::from_model_type(mt).ok_or_else(|| {
                bad(format!(
                    "model_type is {:?}; dpa-explorer runs \"mistral\", \"llama\", \"qwen2\" and \"gemma2\" checkpoints",
                    shown(mt)
                ))
            })?,
        };
        let (act, want) = match family {
            Family::Gemma2 => (
                raw.hidden_activation
                    .as_deref()
                    .unwrap_or("gelu_pytorch_tanh"),
                "gelu_pytorch_tanh",
            ),
            _ => (raw.hidden_act.as_str(), "silu"),
        };
        if act != want {
            return Err(bad(format!(
                "the activation {:?} is not supported (this model type uses \"{want}\")",
                shown(act)
            )));
        }
        if raw.mlp_bias == Some(true) {
            return Err(bad("mlp_bias true is not supported".into()));
        }
        let rope = rope::parse(
            raw.rope_theta,
            raw.rope_scaling.as_ref(),
            raw.rope_parameters.as_ref(),
        )
        .map_err(bad)?;
        let rope_theta = rope.theta;
        let sliding_window = match family {
            Family::Mistral => raw.sliding_window,
            // Llama has no window; Qwen2 keeps the key but uses it only when asked to.
            Family::Llama => None,
            Family::Qwen2 if raw.use_sliding_window == Some(true) => {
                return Err(bad(
                    "use_sliding_window true is not supported for qwen2 (its window applies to some layers only)"
                        .into(),
                ))
            }
            Family::Qwen2 => None,
            Family::Gemma2 => raw.sliding_window,
        };
        // Only as long as the list in the file: the layer count is not trusted yet.
        let layer_windows = match (family, &raw.layer_types) {
            (Family::Gemma2, Some(types)) => Some({
                if types.len() != raw.num_hidden_layers {
                    return Err(bad(format!(
                        "layer_types has {} entries for {} layers",
                        types.len(),
                        raw.num_hidden_layers
                    )));
                }
                types
                    .iter()
                    .map(|t| match t.as_str() {
                        "sliding_attention" => Ok(sliding_window),
                        "full_attention" => Ok(None),
                        other => Err(bad(format!(
                            "layer type {:?} is not supported",
                            shown(other)
                        ))),
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }),
            _ => None,
        };
        let (attn_scale, attn_softcap) = match family {
            Family::Gemma2 => {
                let scalar = raw.query_pre_attn_scalar.unwrap_or(256.0);
                let cap = raw.attn_logit_softcapping;
                let ok = |x: f64| x.is_finite() && x > 0.0 && (x as f32).is_normal();
                if !ok(scalar) || cap.is_some_and(|c| !ok(c)) {
                    return Err(bad(format!(
                        "query_pre_attn_scalar {scalar:?} and attn_logit_softcapping {cap:?} must be positive finite numbers"
                    )));
                }
                (Some(1.0 / scalar.sqrt()), cap)
            }
            _ => (None, None),
        };
        let attention_bias = raw.attention_bias == Some(true) && family == Family::Llama;
        for (name, value) in [
            ("vocab_size", raw.vocab_size),
            ("hidden_size", raw.hidden_size),
            ("intermediate_size", raw.intermediate_size),
            ("num_hidden_layers", raw.num_hidden_layers),
            ("num_attention_heads", raw.num_attention_heads),
            ("max_position_embeddings", raw.max_position_embeddings),
        ] {
            if value == 0 {
                return Err(bad(format!("{name} is 0; it must be positive")));
            }
        }
        let heads = raw.num_attention_heads;
        let kv_heads = raw.num_key_value_heads.unwrap_or(heads);
        if kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
            return Err(bad(format!(
                "num_attention_heads ({heads}) must be a multiple of num_key_value_heads ({kv_heads})"
            )));
        }
        let head_dim = match raw.head_dim {
            Some(d) => d,
            None if raw.hidden_size.is_multiple_of(heads) => raw.hidden_size / heads,
            None => {
                return Err(bad(format!(
                    "hidden_size ({}) is not divisible by num_attention_heads ({heads}) and head_dim is not set",
                    raw.hidden_size
                )))
            }
        };
        if head_dim == 0 || head_dim % 2 != 0 {
            return Err(bad(format!(
                "head_dim ({head_dim}) must be positive and even for rotary embeddings"
            )));
        }
        if sliding_window == Some(0) {
            return Err(bad(
                "sliding_window is 0, which would hide every token; it must be positive, or null for no window"
                    .into(),
            ));
        }
        check_rms_norm_eps(raw.rms_norm_eps).map_err(bad)?;
        rope::check(rope_theta, head_dim, raw.max_position_embeddings).map_err(bad)?;
        for (name, id) in [
            ("pad_token_id", raw.pad_token_id),
            ("bos_token_id", raw.bos_token_id),
        ] {
            if let Some(id) = id.filter(|&id| id as usize >= raw.vocab_size) {
                return Err(bad(format!(
                    "{name} {id} is outside the vocabulary of {} entries",
                    raw.vocab_size
                )));
            }
        }
        let head = if raw.architectures.iter().any(|a| a == GATING_ARCHITECTURE) {
            HeadConfig::Gating(gating(&raw).map_err(bad)?)
        } else {
            HeadConfig::Score
        };
        // transformers derives num_labels from id2label; an explicit num_labels must agree with it.
        let id2label = raw.id2label.clone().unwrap_or_default();
        let num_labels = match (raw.num_labels, id2label.len()) {
            (Some(n), 0) => n,
            (Some(n), m) if n != m => {
                return Err(bad(format!(
                    "num_labels is {n} but id2label has {m} entries"
                )))
            }
            (_, 0) => 2,
            (_, m) => m,
        };
        if num_labels == 0 || num_labels > MAX_LABELS {
            return Err(bad(format!(
                "num_labels is {num_labels}; a reward head has between 1 and {MAX_LABELS} outputs"
            )));
        }
        let (num_labels, labels) = match &head {
            // The objectives name the outputs; id2label stays transformers' default.
            HeadConfig::Gating(g) if g.objectives == ARMO_LABELS.len() => (
                g.objectives,
                ARMO_LABELS.iter().map(|s| s.to_string()).collect(),
            ),
            HeadConfig::Gating(g) => (
                g.objectives,
                (0..g.objectives)
                    .map(|i| format!("objective_{i}"))
                    .collect(),
            ),
            HeadConfig::Score => (
                num_labels,
                resolve_labels(&id2label, num_labels).map_err(bad)?,
            ),
        };
        let cfg = Self {
            architectures: raw.architectures,
            family,
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_hidden_layers: raw.num_hidden_layers,
            num_attention_heads: heads,
            num_key_value_heads: kv_heads,
            head_dim,
            max_position_embeddings: raw.max_position_embeddings,
            rms_norm_eps: raw.rms_norm_eps,
            rope_theta,
            rope_scaling: rope.scaling,
            sliding_window,
            layer_windows,
            attn_scale,
            attn_softcap,
            qkv_bias: family == Family::Qwen2 || attention_bias,
            o_bias: attention_bias,
            pad_token_id: raw.pad_token_id,
            bos_token_id: raw.bos_token_id,
            num_labels,
            labels,
            head,
            stored_dtype: raw.dtype.or(raw.torch_dtype),
            auto_map: raw.auto_map.is_some_and(|v| !v.is_null()),
        };
        // Every size below is later multiplied out (tensor shapes, byte counts): refuse values
        // whose products do not fit, naming them, rather than let them wrap.
        for (what, a, b) in [
            ("num_attention_heads × head_dim", heads, head_dim),
            ("num_key_value_heads × head_dim", kv_heads, head_dim),
            ("vocab_size × hidden_size", cfg.vocab_size, cfg.hidden_size),
            (
                "intermediate_size × hidden_size",
                cfg.intermediate_size,
                cfg.hidden_size,
            ),
        ] {
            let fits = a
                .checked_mul(b)
                .and_then(|n| n.checked_mul(std::mem::size_of::<f32>()))
                .is_some_and(|bytes| bytes <= isize::MAX as usize);
            if !fits {
                return Err(bad(format!("{what} ({a} × {b}) is too large")));
            }
        }
        if cfg.checked_parameter_count().is_none() {
            return Err(bad(format!(
                "the sizes give more parameters than can be counted (num_hidden_layers {}, hidden_size {}, intermediate_size {})",
                cfg.num_hidden_layers, cfg.hidden_size, cfg.intermediate_size
            )));
        }
        Ok(cfg)
    }

    /// The sliding window of layer `i`: Gemma-2's from `layer_types`, else on its even layers
    /// (transformers' default); every other family's `sliding_window` on every layer.
    pub fn layer_window(&self, i: usize) -> Option<usize> {
        match (&self.layer_windows, self.family) {
            (Some(w), _) => w.get(i).copied().flatten(),
            (None, Family::Gemma2) if i % 2 == 1 => None,
            _ => self.sliding_window,
        }
    }

    /// Parameters of the decoder and head, for sizes and FLOP counts.
    pub fn parameter_count(&self) -> u64 {
        // Checked when the config was read.
        self.checked_parameter_count().unwrap_or(u64::MAX)
    }

    fn checked_parameter_count(&self) -> Option<u64> {
        let n = |x: usize| x as u64;
        let mul = |a: u64, b: u64| a.checked_mul(b);
        let h = n(self.hidden_size);
        let q = mul(n(self.num_attention_heads), n(self.head_dim))?;
        let kv = mul(n(self.num_key_value_heads), n(self.head_dim))?;
        let i = n(self.intermediate_size);
        let per_layer = mul(mul(h, q)?, 2)?
            .checked_add(mul(mul(h, kv)?, 2)?)?
            .checked_add(mul(mul(h, i)?, 3)?)?
            .checked_add(mul(h, 2)?)?;
        mul(n(self.vocab_size), h)?
            .checked_add(mul(n(self.num_hidden_layers), per_layer)?)?
            .checked_add(h)?
            .checked_add(mul(h, n(self.num_labels))?)
    }
}

/// The norm's epsilon is used in f32; zero or less lets an all-zero row divide by zero.
fn check_rms_norm_eps(eps: f64) -> Result<(), String> {
    let as_f32 = eps as f32;
    if eps.is_finite() && eps > 0.0 && as_f32.is_finite() && as_f32 > 0.0 {
        Ok(())
    } else {
        Err(format!(
            "rms_norm_eps is {eps:?}; it must be a positive number that f32 can hold"
        ))
    }
}

/// ArmoRM's gating settings, with its modelling code's defaults where the config is silent.
fn gating(raw: &RawConfig) -> Result<GatingConfig, String> {
    let objectives = raw
        .num_objectives
        .ok_or_else(|| format!("{GATING_ARCHITECTURE} needs num_objectives"))?;
    let g = GatingConfig {
        objectives,
        hidden_dim: raw.gating_hidden_dim.unwrap_or(1024),
        n_hidden: raw.gating_n_hidden.unwrap_or(3),
        temperature: raw.gating_temperature.unwrap_or(10.0),
        pattern: ARMO_PATTERN.to_vec(),
    };
    if objectives == 0 || objectives > MAX_LABELS {
        return Err(format!(
            "num_objectives is {objectives}; it must be between 1 and {MAX_LABELS}"
        ));
    }
    if g.hidden_dim == 0 || g.hidden_dim > 1 << 20 || g.n_hidden > 64 {
        return Err(format!(
            "gating_hidden_dim {} and gating_n_hidden {} are out of range",
            g.hidden_dim, g.n_hidden
        ));
    }
    let t = g.temperature;
    if !(t.is_finite() && t > 0.0 && (t as f32).is_normal()) {
        return Err(format!(
            "gating_temperature is {t:?}; it must be a positive finite number"
        ));
    }
    if raw.vocab_size <= ARMO_PATTERN.iter().copied().max().unwrap_or(0) as usize {
        return Err(format!(
            "{GATING_ARCHITECTURE} reads Llama 3's assistant header, but the vocabulary has only {} entries",
            raw.vocab_size
        ));
    }
    Ok(g)
}

/// Names for each output: the checkpoint's own when it has real ones; the DPA order when its
/// labels are transformers' generic `LABEL_i` and there are ten; `LABEL_i` otherwise.
fn resolve_labels(
    id2label: &BTreeMap<String, String>,
    num_labels: usize,
) -> Result<Vec<String>, String> {
    let mut labels = vec![None; num_labels];
    for (k, v) in id2label {
        let i: usize = k
            .parse()
            .map_err(|_| format!("id2label key {:?} is not an integer", shown(k)))?;
        if i >= num_labels {
            return Err(format!(
                "id2label key {i} is out of range for {num_labels} labels"
            ));
        }
        labels[i] = Some(v.clone());
    }
    let generic = labels
        .iter()
        .enumerate()
        .all(|(i, l)| l.as_deref().is_none_or(|l| l == format!("LABEL_{i}")));
    if generic && num_labels == DPA_LABELS.len() {
        return Ok(DPA_LABELS.iter().map(|s| s.to_string()).collect());
    }
    Ok(labels
        .into_iter()
        .enumerate()
        .map(|(i, l)| l.unwrap_or_else(|| format!("LABEL_{i}")))
        .collect())
}

#[cfg(test)]
mod tests;
