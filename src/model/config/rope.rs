//! Rotary position settings from either config dialect: the base, and the `llama3` frequency
//! scaling that Llama 3.1 checkpoints use.

use serde_json::Value;

use crate::model::files::shown;

/// transformers' `llama3` rope type: long wavelengths slowed by `factor`, short ones kept, a
/// smooth blend between.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Llama3Scaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_max_position_embeddings: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rope {
    pub theta: f64,
    pub scaling: Option<Llama3Scaling>,
}

impl Rope {
    /// The inverse frequency of each rotary pair, as transformers computes it (f32 arithmetic).
    pub fn inv_freq(&self, head_dim: usize) -> Vec<f32> {
        let base = self.theta as f32;
        let plain = (0..head_dim).step_by(2).map(move |i| {
            let exponent = i as f32 / head_dim as f32;
            (1.0 / (base as f64).powf(exponent as f64)) as f32
        });
        let Some(s) = self.scaling else {
            return plain.collect();
        };
        let factor = s.factor as f32;
        let (low, high) = (s.low_freq_factor as f32, s.high_freq_factor as f32);
        let old = s.original_max_position_embeddings as f32;
        let (low_wavelen, high_wavelen) = (old / low, old / high);
        plain
            .map(|f| {
                let wavelen = (2.0 * std::f64::consts::PI) as f32 / f;
                let scaled = if wavelen > low_wavelen { f / factor } else { f };
                if wavelen < high_wavelen || wavelen > low_wavelen {
                    return scaled;
                }
                let smooth = (old / wavelen - low) / (high - low);
                (1.0 - smooth) * scaled / factor + smooth * scaled
            })
            .collect()
    }
}

fn number(v: &Value, key: &str) -> Result<Option<f64>, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(n) => n
            .as_f64()
            .filter(|x| x.is_finite())
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "rope {key} is {}, not a finite number",
                    shown(&n.to_string())
                )
            }),
    }
}

/// The rope of a config: `rope_theta` and `rope_scaling` (transformers 4.x) or
/// `rope_parameters` (5.x). Scalings other than `llama3` are refused by name.
pub(super) fn parse(
    rope_theta: Option<f64>,
    rope_scaling: Option<&Value>,
    rope_parameters: Option<&Value>,
) -> Result<Rope, String> {
    let (spec, what) = match (rope_parameters.filter(|v| !v.is_null()), rope_scaling) {
        (Some(p), _) => (Some(p), "rope_parameters"),
        (None, s) => (s.filter(|v| !v.is_null()), "rope_scaling"),
    };
    let theta = match spec {
        Some(p) if what == "rope_parameters" => number(p, "rope_theta")?.or(rope_theta),
        _ => rope_theta,
    }
    .unwrap_or(10_000.0);
    let Some(spec) = spec else {
        return Ok(Rope {
            theta,
            scaling: None,
        });
    };
    if !spec.is_object() {
        return Err(format!(
            "{what} is {}, not an object",
            shown(&spec.to_string())
        ));
    }
    let kind = ["rope_type", "type"]
        .iter()
        .find_map(|k| spec.get(*k).and_then(Value::as_str))
        .unwrap_or("default");
    match kind {
        "default" => Ok(Rope {
            theta,
            scaling: None,
        }),
        "llama3" => {
            let need = |key: &str| {
                number(spec, key)?.ok_or_else(|| format!("{what} of type llama3 has no {key}"))
            };
            let original = need("original_max_position_embeddings")?;
            let s = Llama3Scaling {
                factor: need("factor")?,
                low_freq_factor: need("low_freq_factor")?,
                high_freq_factor: need("high_freq_factor")?,
                original_max_position_embeddings: original as usize,
            };
            let positive = |x: f64| x > 0.0 && (x as f32).is_finite() && (x as f32) > 0.0;
            if !(positive(s.factor)
                && positive(s.low_freq_factor)
                && positive(original)
                && original.fract() == 0.0
                && original <= u32::MAX as f64
                && s.high_freq_factor > s.low_freq_factor
                && (s.high_freq_factor as f32).is_finite())
            {
                return Err(format!(
                    "{what} of type llama3 needs positive factor, low_freq_factor < \
                     high_freq_factor and a whole original_max_position_embeddings; it has {}",
                    shown(&spec.to_string())
                ));
            }
            Ok(Rope {
                theta,
                scaling: Some(s),
            })
        }
        other => Err(format!("{what} type {:?} is not supported", shown(other))),
    }
}

/// The rotary angles of every position the model allows must be finite: a base of zero or less
/// (or one so small that the frequencies overflow) gives NaN scores.
pub(super) fn check(theta: f64, head_dim: usize, max_positions: usize) -> Result<(), String> {
    let base = theta as f32;
    if !(theta.is_finite() && theta > 0.0 && base.is_finite() && base > 0.0) {
        return Err(format!(
            "rope_theta is {theta:?}; it must be a positive finite number"
        ));
    }
    // The largest frequency is at one end of the range (the exponent is monotonic); scaling
    // only lowers frequencies.
    let freq = |i: usize| (1.0 / (base as f64).powf(i as f64 / head_dim as f64)) as f32;
    let fastest = freq(0).max(freq(head_dim - 2));
    if !(fastest * max_positions as f32).is_finite() {
        return Err(format!(
            "rope_theta is {theta:?}: with max_position_embeddings {max_positions} the rotary angles overflow"
        ));
    }
    Ok(())
}
