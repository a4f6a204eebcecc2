//! What turns the decoder's final hidden states into a model's outputs: a sequence
//! classifier's `score` layer (DPA, and Llama/Mistral/Qwen2 `*ForSequenceClassification`), or
//! ArmoRM's reward regression with its prompt-dependent gating (`LlamaForRewardModelWithGating`,
//! as its `modeling_custom.py` computes it).
//!
//! Every head runs in f32 whatever the compute dtype: it is tiny and its output is the result.

use candle_core::{DType, Device, Tensor, D};

use super::config::{GatingConfig, HeadConfig, MistralConfig};
use super::weights::Checkpoint;
use super::ModelError;

type Result<T> = std::result::Result<T, ModelError>;

#[derive(Debug)]
pub enum Head {
    /// `score.weight` `[labels, hidden]` (and a bias when the checkpoint has one) on the last
    /// token.
    Score {
        weight: Tensor,
        bias: Option<Tensor>,
    },
    Gating(Box<GatingHead>),
}

/// ArmoRM's head. Its output row is the rewards (`n`), the gating weights (`n`), the
/// coefficients those weights give through the transform (`n`: the direction the score is
/// taken along) and the score.
#[derive(Debug)]
pub struct GatingHead {
    /// `regression_layer.weight` `[n, hidden]`, no bias, on the last token.
    regression: Tensor,
    /// `gating.layers.i` weight `[out, in]` and bias `[out]`: ReLU between, none after.
    layers: Vec<(Tensor, Tensor)>,
    logit_scale: f32,
    temperature: f32,
    /// `reward_transform_matrix` `[n, n]`: the score is Σ gating · (rewards · M).
    transform: Tensor,
    pattern: Vec<u32>,
    pad: Option<u32>,
    n: usize,
}

/// Which hidden rows of one sequence a head reads, as positions in the whole input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reads {
    pub reward: usize,
    /// ArmoRM's gating row: the start of the last assistant-header pattern.
    pub gating: Option<usize>,
}

impl Head {
    pub fn load(cfg: &MistralConfig, ckpt: &mut Checkpoint, device: &Device) -> Result<Self> {
        let h = cfg.hidden_size;
        match &cfg.head {
            HeadConfig::Score => Ok(Head::Score {
                weight: ckpt.get("score.weight", &[cfg.num_labels, h], DType::F32, device)?,
                bias: ckpt.get_optional("score.bias", &[cfg.num_labels], DType::F32, device)?,
            }),
            HeadConfig::Gating(g) => Ok(Head::Gating(Box::new(GatingHead::load(
                cfg, g, ckpt, device,
            )?))),
        }
    }

    /// Values in one output row.
    pub fn width(&self, labels: usize) -> usize {
        match self {
            Head::Score { .. } => labels,
            Head::Gating(g) => 3 * g.n + 1,
        }
    }

    /// The rows the head reads in `ids` (a whole input).
    pub fn reads(&self, ids: &[u32]) -> Result<Reads> {
        let last = ids.len().saturating_sub(1);
        match self {
            Head::Score { .. } => Ok(Reads {
                reward: last,
                gating: None,
            }),
            Head::Gating(g) => g.reads(ids),
        }
    }

    /// The output rows from the hidden rows the head reads (`reward`: `[b, hidden]`;
    /// `gating`: `[b, hidden]` for a gating head), in f32.
    pub fn apply(&self, reward: &Tensor, gating: Option<&Tensor>) -> Result<Tensor> {
        match self {
            Head::Score { weight, bias } => {
                let logits = reward.matmul(&weight.t()?)?;
                Ok(match bias {
                    Some(b) => logits.broadcast_add(b)?,
                    None => logits,
                })
            }
            Head::Gating(g) => {
                let gating = gating.ok_or_else(|| {
                    ModelError::Input("the gating head needs its gating row".into())
                })?;
                g.apply(reward, gating)
            }
        }
    }

    /// Bytes of the head's tensors.
    pub fn bytes(&self) -> usize {
        let t = |t: &Tensor| t.elem_count() * t.dtype().size_in_bytes();
        match self {
            Head::Score { weight, bias } => t(weight) + bias.as_ref().map_or(0, t),
            Head::Gating(g) => {
                t(&g.regression)
                    + t(&g.transform)
                    + g.layers.iter().map(|(w, b)| t(w) + t(b)).sum::<usize>()
            }
        }
    }
}

impl GatingHead {
    fn load(
        cfg: &MistralConfig,
        g: &GatingConfig,
        ckpt: &mut Checkpoint,
        device: &Device,
    ) -> Result<Self> {
        let (h, n) = (cfg.hidden_size, g.objectives);
        let regression = ckpt.get("regression_layer.weight", &[n, h], DType::F32, device)?;
        let mut layers = Vec::with_capacity(g.n_hidden + 1);
        for i in 0..=g.n_hidden {
            let input = if i == 0 { h } else { g.hidden_dim };
            let out = if i == g.n_hidden { n } else { g.hidden_dim };
            let name = format!("gating.layers.{i}");
            layers.push((
                ckpt.get(&format!("{name}.weight"), &[out, input], DType::F32, device)?,
                ckpt.get(&format!("{name}.bias"), &[out], DType::F32, device)?,
            ));
        }
        let scale = ckpt.get("gating.logit_scale", &[1], DType::F32, device)?;
        let logit_scale = scale.to_vec1::<f32>()?[0];
        let transform = ckpt.get("reward_transform_matrix", &[n, n], DType::F32, device)?;
        Ok(Self {
            regression,
            layers,
            logit_scale,
            temperature: g.temperature as f32,
            transform,
            pattern: g.pattern.clone(),
            pad: cfg.pad_token_id,
            n,
        })
    }

    /// As the reference: the reward is read before the first padding token (the last token
    /// when there is none), the gating at the start of the pattern's last occurrence.
    fn reads(&self, ids: &[u32]) -> Result<Reads> {
        let len = ids.len();
        let reward = match self.pad.and_then(|p| ids.iter().position(|&i| i == p)) {
            Some(0) | None => len.saturating_sub(1),
            Some(first) => first - 1,
        };
        let k = self.pattern.len();
        let gating = (0..=len.saturating_sub(k))
            .rev()
            .find(|&j| len >= k && ids[j..j + k] == self.pattern[..])
            .ok_or_else(|| {
                ModelError::Input(format!(
                    "the input lacks the assistant header the gating reads (token ids {:?}); \
                     the reference raises \"Token pattern not found\"",
                    self.pattern
                ))
            })?;
        Ok(Reads {
            reward,
            gating: Some(gating),
        })
    }

    fn apply(&self, reward: &Tensor, gating: &Tensor) -> Result<Tensor> {
        let rewards = reward.matmul(&self.regression.t()?)?;
        let mut x = gating.clone();
        let last = self.layers.len() - 1;
        for (i, (w, b)) in self.layers.iter().enumerate() {
            x = x.matmul(&w.t()?)?.broadcast_add(b)?;
            if i < last {
                x = x.relu()?;
            }
        }
        let weights = (candle_nn::ops::softmax_last_dim(&(x / self.temperature as f64)?)?
            * self.logit_scale as f64)?;
        let transformed = rewards.matmul(&self.transform)?;
        let score = (&weights * &transformed)?.sum_keepdim(D::Minus1)?;
        let coefficients = weights.matmul(&self.transform.t()?)?;
        Ok(Tensor::cat(
            &[&rewards, &weights, &coefficients, &score],
            D::Minus1,
        )?)
    }
}
