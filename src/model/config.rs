//! `config.json` as written by transformers 4.x and 5.x, reduced to what the port needs.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::files::shown;
use super::ModelError;

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
    rope_parameters: Option<RopeParameters>,
    #[serde(default)]
    sliding_window: Option<usize>,
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
}

#[derive(Debug, Clone, Deserialize)]
struct RopeParameters {
    #[serde(default)]
    rope_type: Option<String>,
    #[serde(default)]
    rope_theta: Option<f64>,
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

/// The Mistral sequence-classification configuration, with both dialects resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct MistralConfig {
    pub architectures: Vec<String>,
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
    pub sliding_window: Option<usize>,
    pub pad_token_id: Option<u32>,
    pub bos_token_id: Option<u32>,
    pub num_labels: usize,
    /// One name per output, in output order.
    pub labels: Vec<String>,
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
        if let Some(mt) = &raw.model_type {
            if mt != "mistral" {
                return Err(bad(format!(
                    "model_type is {:?}; dpa-explorer runs Mistral checkpoints (model_type \"mistral\")",
                    shown(mt)
                )));
            }
        }
        if raw.hidden_act != "silu" {
            return Err(bad(format!(
                "hidden_act {:?} is not supported (Mistral uses \"silu\")",
                shown(&raw.hidden_act)
            )));
        }
        if let Some(scaling) = raw.rope_scaling.as_ref().filter(|v| !v.is_null()) {
            return Err(bad(format!(
                "rope_scaling {} is not supported",
                shown(&scaling.to_string())
            )));
        }
        let rope_theta = match (&raw.rope_parameters, raw.rope_theta) {
            (Some(rp), _) => {
                if let Some(t) = rp.rope_type.as_deref().filter(|t| *t != "default") {
                    return Err(bad(format!(
                        "rope_parameters.rope_type {:?} is not supported",
                        shown(t)
                    )));
                }
                rp.rope_theta.or(raw.rope_theta).unwrap_or(10_000.0)
            }
            (None, Some(t)) => t,
            (None, None) => 10_000.0,
        };
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
        if raw.sliding_window == Some(0) {
            return Err(bad(
                "sliding_window is 0, which would hide every token; it must be positive, or null for no window"
                    .into(),
            ));
        }
        check_rms_norm_eps(raw.rms_norm_eps).map_err(bad)?;
        check_rope(rope_theta, head_dim, raw.max_position_embeddings).map_err(bad)?;
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
        // transformers derives num_labels from id2label; an explicit num_labels must agree with it.
        let id2label = raw.id2label.unwrap_or_default();
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
        let labels = resolve_labels(&id2label, num_labels).map_err(bad)?;
        let cfg = Self {
            architectures: raw.architectures,
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
            sliding_window: raw.sliding_window,
            pad_token_id: raw.pad_token_id,
            bos_token_id: raw.bos_token_id,
            num_labels,
            labels,
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

/// The rotary angles of every position the model allows must be finite: a base of zero or less
/// (or one so small that the frequencies overflow) gives NaN scores.
fn check_rope(theta: f64, head_dim: usize, max_positions: usize) -> Result<(), String> {
    let base = theta as f32;
    if !(theta.is_finite() && theta > 0.0 && base.is_finite() && base > 0.0) {
        return Err(format!(
            "rope_theta is {theta:?}; it must be a positive finite number"
        ));
    }
    // The largest frequency is at one end of the range (the exponent is monotonic).
    let freq = |i: usize| (1.0 / (base as f64).powf(i as f64 / head_dim as f64)) as f32;
    let fastest = freq(0).max(freq(head_dim - 2));
    if !(fastest * max_positions as f32).is_finite() {
        return Err(format!(
            "rope_theta is {theta:?}: with max_position_embeddings {max_positions} the rotary angles overflow"
        ));
    }
    Ok(())
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
mod tests {
    use super::*;

    const V5: &str = r#"{
      "architectures": ["MistralForSequenceClassification"], "model_type": "mistral",
      "vocab_size": 32001, "hidden_size": 32, "intermediate_size": 80, "num_hidden_layers": 3,
      "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "rms_norm_eps": 1e-05,
      "rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"}, "sliding_window": 24,
      "pad_token_id": 32000, "dtype": "bfloat16",
      "id2label": {"0": "LABEL_0", "1": "LABEL_1", "2": "LABEL_2", "3": "LABEL_3", "4": "LABEL_4",
                   "5": "LABEL_5", "6": "LABEL_6", "7": "LABEL_7", "8": "LABEL_8", "9": "LABEL_9"}
    }"#;

    #[test]
    fn v5_dialect() {
        let c = MistralConfig::from_json(V5).unwrap();
        assert_eq!(c.rope_theta, 1e6);
        assert_eq!(c.head_dim, 16);
        assert_eq!(c.num_key_value_heads, 2);
        assert_eq!(c.sliding_window, Some(24));
        assert_eq!(c.stored_dtype.as_deref(), Some("bfloat16"));
        assert_eq!(c.num_labels, 10);
        assert_eq!(c.labels[0], "helpsteer-helpfulness");
        assert_eq!(c.labels[9], "ultrafeedback-helpfulness");
    }

    #[test]
    fn v4_dialect_matches_v5() {
        let v4 = V5
            .replace(
                r#""rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"}"#,
                r#""rope_theta": 1000000.0"#,
            )
            .replace(r#""dtype""#, r#""torch_dtype""#);
        assert!(v4.contains("torch_dtype") && !v4.contains("rope_parameters"));
        assert_eq!(
            MistralConfig::from_json(&v4).unwrap(),
            MistralConfig::from_json(V5).unwrap()
        );
    }

    #[test]
    fn head_dim_defaults_to_hidden_over_heads_and_null_window() {
        let j = V5
            .replace(r#""head_dim": 16,"#, "")
            .replace(r#""sliding_window": 24"#, r#""sliding_window": null"#);
        let c = MistralConfig::from_json(&j).unwrap();
        assert_eq!(c.head_dim, 8);
        assert_eq!(c.sliding_window, None);
    }

    #[test]
    fn real_label_names_are_kept() {
        let j = V5.replace("LABEL_0", "my-helpfulness");
        let c = MistralConfig::from_json(&j).unwrap();
        assert_eq!(c.labels[0], "my-helpfulness");
        assert_eq!(c.labels[1], "LABEL_1");
    }

    #[test]
    fn generic_labels_of_other_counts_stay_generic() {
        let j = r#"{"vocab_size": 10, "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1,
                    "num_attention_heads": 2, "num_labels": 3}"#;
        let c = MistralConfig::from_json(j).unwrap();
        assert_eq!(c.labels, ["LABEL_0", "LABEL_1", "LABEL_2"]);
        assert_eq!(c.rope_theta, 10_000.0);
    }

    #[test]
    fn refusals_say_why() {
        let e = MistralConfig::from_json(&V5.replace(r#""mistral""#, r#""llama""#)).unwrap_err();
        assert!(e.to_string().contains("llama"), "{e}");
        let e = MistralConfig::from_json(
            &V5.replace(r#""num_key_value_heads": 2"#, r#""num_key_value_heads": 3"#),
        )
        .unwrap_err();
        assert!(e.to_string().contains("multiple"), "{e}");
        let e = MistralConfig::from_json(
            &V5.replace(r#""rope_type": "default""#, r#""rope_type": "yarn""#),
        )
        .unwrap_err();
        assert!(e.to_string().contains("yarn"), "{e}");
        let e = MistralConfig::from_json("{not json").unwrap_err();
        assert!(e.to_string().contains("config"), "{e}");
    }
}
