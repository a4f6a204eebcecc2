//! The Mistral decoder with a sequence-classification (`score`) head, as transformers'
//! `MistralForSequenceClassification` computes it (eager attention), in candle.
//!
//! Unlike a text-generation port it returns only the head's output at each sequence's last
//! token, takes a batch of right-padded sequences, and can start from the keys and values of
//! an already computed prefix (see [`KvCache`]).

use candle_core::{DType, Device, Tensor, D};

use super::config::{Family, MistralConfig};
use super::gpu;
use super::heads::{Head, Reads};
use super::linear::{Linear, LinearLoader};
use super::weights::Checkpoint;

pub use super::kv_cache::KvCache;
use super::kv_cache::{with_room, Extension};
use super::ModelError;

type Result<T> = std::result::Result<T, ModelError>;

/// Above this many attention scores per query block, queries are processed in blocks so that
/// long inputs never materialise the whole `[heads, t, t]` score matrix at once.
const MAX_SCORES_PER_BLOCK: usize = 1 << 24;
/// The same on a GPU (bf16 scores: 512 MiB).
const MAX_SCORES_PER_BLOCK_GPU: usize = 1 << 28;

#[derive(Debug, Clone)]
struct RmsNorm {
    weight: Tensor,
    eps: f32,
}

impl RmsNorm {
    /// `plus_one`: Gemma's norms scale by `1 + w` (made once here, in f32).
    fn load(
        ckpt: &mut Checkpoint,
        name: &str,
        (size, eps): (usize, f64),
        plus_one: bool,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let weight = if plus_one {
            (ckpt.get(name, &[size], DType::F32, device)? + 1.0)?.to_dtype(dtype)?
        } else {
            ckpt.get(name, &[size], dtype, device)?
        };
        Ok(Self {
            weight,
            eps: eps as f32,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::rms_norm(x, &self.weight, self.eps)?)
    }
}

/// Rotary tables for positions `0..len`, in the compute dtype, grown on demand.
#[derive(Debug, Clone)]
struct Rotary {
    inv_freq: Vec<f32>,
    cos: Tensor,
    sin: Tensor,
}

impl Rotary {
    fn new(cfg: &MistralConfig, dtype: DType, device: &Device) -> Result<Self> {
        let dim = cfg.head_dim;
        let inv_freq = super::config::Rope {
            theta: cfg.rope_theta,
            scaling: cfg.rope_scaling,
        }
        .inv_freq(dim);
        let empty = Tensor::zeros((0, dim / 2), dtype, device)?;
        Ok(Self {
            inv_freq,
            cos: empty.clone(),
            sin: empty,
        })
    }

    fn ensure(&mut self, len: usize) -> Result<()> {
        let have = self.cos.dim(0)?;
        if len <= have {
            return Ok(());
        }
        // Grow in powers of two so that typing does not rebuild the tables at every token.
        let len = len.next_power_of_two().max(256);
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(len * half);
        let mut sin = Vec::with_capacity(len * half);
        for pos in 0..len {
            for &f in &self.inv_freq {
                // f32 product as in transformers, trigonometry in f64 rounded once.
                let angle = (pos as f32 * f) as f64;
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        let (dtype, device) = (self.cos.dtype(), self.cos.device().clone());
        self.cos = Tensor::from_vec(cos, (len, half), &device)?.to_dtype(dtype)?;
        self.sin = Tensor::from_vec(sin, (len, half), &device)?.to_dtype(dtype)?;
        Ok(())
    }

    fn tables(&self, start: usize, len: usize) -> Result<(Tensor, Tensor)> {
        Ok((
            self.cos.narrow(0, start, len)?.contiguous()?,
            self.sin.narrow(0, start, len)?.contiguous()?,
        ))
    }
}

#[derive(Debug)]
struct Attention {
    qkv: Linear,
    /// Qwen2's (and some Llamas') biases of q, k and v, stacked as `qkv`'s outputs are.
    qkv_bias: Option<Tensor>,
    o_proj: Linear,
    o_bias: Option<Tensor>,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    window: Option<usize>,
    /// The scores' scale (1/√head_dim unless the model sets its own).
    scale: f64,
    /// Gemma-2: scores become `cap · tanh(s / cap)` before the mask.
    softcap: Option<f64>,
}

#[derive(Debug)]
struct Mlp {
    /// GELU (tanh) instead of SiLU (Gemma-2).
    gelu: bool,
    gate_up: Linear,
    down: Linear,
    intermediate: usize,
}

#[derive(Debug)]
struct Layer {
    input_norm: RmsNorm,
    attn: Attention,
    /// Before the MLP (on the residual sum); Gemma-2: on the attention's output.
    post_norm: RmsNorm,
    /// Gemma-2's norms before and after the MLP.
    feedforward_norms: Option<(RmsNorm, RmsNorm)>,
    mlp: Mlp,
}

/// What one forward pass returns.
pub struct ForwardOutput {
    /// `[batch, width]` in f32: the head's output rows (see [`Mistral::width`]).
    pub logits: Tensor,
    /// For each sequence, the prefix cache extended by its own tokens (when asked for).
    pub caches: Option<Vec<KvCache>>,
}

/// The decoder, the final norm and the score head.
#[derive(Debug)]
pub struct Mistral {
    embed: Tensor,
    /// Gemma-2 scales the embeddings by √hidden (in the compute dtype).
    embed_scale: Option<f64>,
    layers: Vec<Layer>,
    norm: RmsNorm,
    head: Head,
    rotary: std::sync::Mutex<Rotary>,
    cfg: MistralConfig,
    dtype: DType,
    device: Device,
}

impl Mistral {
    /// Builds the model from a checkpoint, checking every tensor's presence and shape.
    pub fn load(
        cfg: &MistralConfig,
        ckpt: &mut Checkpoint,
        dtype: DType,
        device: &Device,
        linear: &LinearLoader,
    ) -> Result<Self> {
        check_layers(cfg.num_hidden_layers, &ckpt.layer_indices())?;
        let h = cfg.hidden_size;
        let q_out = cfg.num_attention_heads * cfg.head_dim;
        let kv_out = cfg.num_key_value_heads * cfg.head_dim;
        // Only a few rows are read per pass: a 16-bit table stays 16-bit (widening is exact).
        let embed_dtype = match ckpt.dtype_of("model.embed_tokens.weight") {
            Some(d @ (DType::BF16 | DType::F16)) if dtype == DType::F32 => d,
            _ => dtype,
        };
        let embed = ckpt.get(
            "model.embed_tokens.weight",
            &[cfg.vocab_size, h],
            embed_dtype,
            device,
        )?;
        let gemma = cfg.family == Family::Gemma2;
        let norm_of = |ckpt: &mut Checkpoint, name: &str| {
            RmsNorm::load(ckpt, name, (h, cfg.rms_norm_eps), gemma, dtype, device)
        };
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = format!("model.layers.{i}");
            let n = |s: &str| format!("{p}.{s}");
            let (q, k, v) = (
                n("self_attn.q_proj.weight"),
                n("self_attn.k_proj.weight"),
                n("self_attn.v_proj.weight"),
            );
            let (g, u) = (n("mlp.gate_proj.weight"), n("mlp.up_proj.weight"));
            layers.push(Layer {
                input_norm: norm_of(ckpt, &n("input_layernorm.weight"))?,
                attn: Attention {
                    qkv: linear(ckpt, &[&q, &k, &v], &[q_out, kv_out, kv_out], h)?,
                    qkv_bias: if cfg.qkv_bias {
                        let get = |c: &mut Checkpoint, s: &str, len: usize| {
                            c.get(
                                &n(&format!("self_attn.{s}_proj.bias")),
                                &[len],
                                DType::F32,
                                device,
                            )
                        };
                        let parts = [
                            get(ckpt, "q", q_out)?,
                            get(ckpt, "k", kv_out)?,
                            get(ckpt, "v", kv_out)?,
                        ];
                        Some(Tensor::cat(&parts, 0)?)
                    } else {
                        None
                    },
                    o_proj: linear(ckpt, &[&n("self_attn.o_proj.weight")], &[h], q_out)?,
                    o_bias: if cfg.o_bias {
                        Some(ckpt.get(&n("self_attn.o_proj.bias"), &[h], DType::F32, device)?)
                    } else {
                        None
                    },
                    heads: cfg.num_attention_heads,
                    kv_heads: cfg.num_key_value_heads,
                    head_dim: cfg.head_dim,
                    window: cfg.layer_window(i),
                    scale: cfg.attn_scale.unwrap_or(1.0 / (cfg.head_dim as f64).sqrt()),
                    softcap: cfg.attn_softcap,
                },
                post_norm: norm_of(ckpt, &n("post_attention_layernorm.weight"))?,
                feedforward_norms: if gemma {
                    Some((
                        norm_of(ckpt, &n("pre_feedforward_layernorm.weight"))?,
                        norm_of(ckpt, &n("post_feedforward_layernorm.weight"))?,
                    ))
                } else {
                    None
                },
                mlp: Mlp {
                    gelu: gemma,
                    gate_up: linear(
                        ckpt,
                        &[&g, &u],
                        &[cfg.intermediate_size, cfg.intermediate_size],
                        h,
                    )?,
                    down: linear(
                        ckpt,
                        &[&n("mlp.down_proj.weight")],
                        &[h],
                        cfg.intermediate_size,
                    )?,
                    intermediate: cfg.intermediate_size,
                },
            });
        }
        let norm = norm_of(ckpt, "model.norm.weight")?;
        // transformers multiplies by √hidden held in the activations' dtype.
        let embed_scale = gemma.then(|| {
            let s = (h as f64).sqrt() as f32;
            match dtype {
                DType::BF16 => half::bf16::from_f32(s).to_f32() as f64,
                DType::F16 => half::f16::from_f32(s).to_f32() as f64,
                _ => s as f64,
            }
        });
        let head = Head::load(cfg, ckpt, device)?;
        Ok(Self {
            embed,
            embed_scale,
            layers,
            norm,
            head,
            rotary: std::sync::Mutex::new(Rotary::new(cfg, dtype, device)?),
            cfg: cfg.clone(),
            dtype,
            device: device.clone(),
        })
    }

    pub fn config(&self) -> &MistralConfig {
        &self.cfg
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Bytes of all weights as held in memory.
    pub fn weight_bytes(&self) -> usize {
        self.embed.elem_count() * self.embed.dtype().size_in_bytes() + self.pass_weight_bytes()
    }

    /// Bytes of the weights every pass reads in full: all but the embedding table, of which a
    /// pass reads only its tokens' rows.
    pub fn pass_weight_bytes(&self) -> usize {
        let t = |t: &Tensor| t.elem_count() * t.dtype().size_in_bytes();
        let layers: usize = self
            .layers
            .iter()
            .map(|l| {
                t(&l.input_norm.weight)
                    + t(&l.post_norm.weight)
                    + l.feedforward_norms
                        .as_ref()
                        .map_or(0, |(a, b)| t(&a.weight) + t(&b.weight))
                    + l.attn.qkv.weight_bytes()
                    + l.attn.o_proj.weight_bytes()
                    + l.mlp.gate_up.weight_bytes()
                    + l.mlp.down.weight_bytes()
            })
            .sum();
        layers + t(&self.norm.weight) + self.head.bytes()
    }

    /// Bytes of projection weights used in place from a mapped cache file, not copied.
    pub fn mapped_bytes(&self) -> usize {
        let mapped = |l: &Linear| if l.is_mapped() { l.weight_bytes() } else { 0 };
        self.layers
            .iter()
            .map(|l| {
                mapped(&l.attn.qkv)
                    + mapped(&l.attn.o_proj)
                    + mapped(&l.mlp.gate_up)
                    + mapped(&l.mlp.down)
            })
            .sum()
    }

    /// Scores `seqs` (token ids after `prefix`, each non-empty) in one right-padded batch.
    ///
    /// Every sequence continues the same `prefix`. `keep_caches` returns, per sequence, the
    /// prefix cache extended with that sequence's keys and values. `should_stop` is polled
    /// between layers; when it returns true the pass is abandoned with [`ModelError::Cancelled`].
    pub fn forward(
        &self,
        prefix: Option<&KvCache>,
        seqs: &[&[u32]],
        keep_caches: bool,
        should_stop: &dyn Fn() -> bool,
    ) -> Result<ForwardOutput> {
        self.pass(prefix, seqs, keep_caches, true, should_stop)
    }

    /// The keys and values of `seq` after `prefix`, with no scores: a shared prefix, which
    /// need not hold what the head reads.
    pub fn prefill(
        &self,
        prefix: Option<&KvCache>,
        seq: &[u32],
        should_stop: &dyn Fn() -> bool,
    ) -> Result<KvCache> {
        self.pass(prefix, &[seq], true, false, should_stop)?
            .caches
            .and_then(|mut c| c.pop())
            .ok_or_else(|| ModelError::Input("the pass kept no cache".into()))
    }

    fn pass(
        &self,
        prefix: Option<&KvCache>,
        seqs: &[&[u32]],
        keep_caches: bool,
        head: bool,
        should_stop: &dyn Fn() -> bool,
    ) -> Result<ForwardOutput> {
        let b = seqs.len();
        if b == 0 {
            return Ok(ForwardOutput {
                logits: Tensor::zeros((0, self.width()), DType::F32, &self.device)?,
                caches: keep_caches.then(Vec::new),
            });
        }
        let lens: Vec<usize> = seqs.iter().map(|s| s.len()).collect();
        if lens.contains(&0) {
            return Err(ModelError::Input(
                "cannot score an empty token sequence".into(),
            ));
        }
        let t = *lens.iter().max().unwrap_or(&1);
        let p = prefix.map_or(0, |c| c.len());
        if p + t > self.cfg.max_position_embeddings {
            return Err(ModelError::Input(format!(
                "{} tokens exceed the model's context of {} positions",
                p + t,
                self.cfg.max_position_embeddings
            )));
        }
        // Right padding with the pad id (or 0): padded positions never influence real ones,
        // since causal attention keeps every real query from seeing later keys.
        let pad = self.cfg.pad_token_id.unwrap_or(0);
        let mut ids = Vec::with_capacity(b * t);
        for s in seqs {
            ids.extend_from_slice(s);
            ids.extend(std::iter::repeat_n(pad, t - s.len()));
        }
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= self.cfg.vocab_size) {
            return Err(ModelError::Input(format!(
                "token id {bad} is outside the model's vocabulary of {}",
                self.cfg.vocab_size
            )));
        }
        let ids = Tensor::from_vec(ids, (b * t,), &self.device)?;
        let x = self.embed(&ids)?.reshape((b, t, self.cfg.hidden_size))?;

        let (cos, sin) = {
            let mut rot = self.rotary.lock().unwrap_or_else(|e| e.into_inner());
            rot.ensure(p + t)?;
            rot.tables(p, t)?
        };
        let lazy = |window| LazyMask {
            t,
            p,
            window,
            device: &self.device,
            made: std::cell::OnceCell::new(),
            given: false,
        };
        let mask = lazy(self.cfg.sliding_window);
        let full = self.mixed_windows().then(|| lazy(None));
        // The rows the head reads, all within each sequence's own tokens (see `reuse_limit`):
        // the rewards' rows first, then any gating rows.
        let reads = seqs
            .iter()
            .map(|s| match head {
                true => self.head.reads(s),
                false => Ok(Reads {
                    reward: s.len() - 1,
                    gating: None,
                }),
            })
            .collect::<Result<Vec<_>>>()?;
        let mut pooled: Vec<u32> = reads
            .iter()
            .enumerate()
            .map(|(i, r)| (i * t + r.reward) as u32)
            .collect();
        pooled.extend(
            reads
                .iter()
                .enumerate()
                .filter_map(|(i, r)| r.gating.map(|g| (i * t + g) as u32)),
        );
        // One sequence on the CPU writes its keys and values into room after the prefix's
        // (see `kv_cache`): in place where the prefix's room is free, else into new storage
        // when its cache is kept. Batches and GPUs concatenate.
        let extension = match (b == 1 && self.device.is_cpu(), prefix) {
            (false, _) => None,
            (true, Some(c)) => match c.claim(t) {
                Some(e) => Some(e),
                None => keep_caches.then(|| Extension::fresh(prefix, t, self.layers.len())),
            },
            (true, None) => keep_caches.then(|| Extension::fresh(None, t, self.layers.len())),
        };
        let pass = Pass {
            past: prefix,
            extension: extension.as_ref(),
            cos: &cos,
            sin: &sin,
            mask: &mask,
            full_mask: full.as_ref(),
            pooled: &pooled,
            keep_caches,
        };
        let (hidden, caches) = self.run(x, &pass, should_stop)?;
        let logits = if head {
            let gating = (pooled.len() > b)
                .then(|| hidden.narrow(0, b, b))
                .transpose()?;
            self.head.apply(&hidden.narrow(0, 0, b)?, gating.as_ref())?
        } else {
            Tensor::zeros((b, 0), DType::F32, &self.device)?
        };
        let caches = match (keep_caches, extension) {
            (false, _) => None,
            (true, Some(e)) => Some(vec![e.into_cache(caches)?]),
            (true, None) => Some(split_caches(prefix, &caches, &lens)?),
        };
        Ok(ForwardOutput { logits, caches })
    }

    /// Scores many continuations of one cached sequence in one pass: continuation `i`
    /// (`tails[i].1`) follows the first `tails[i].0` positions of `cache`, as if those
    /// positions and then its tokens were the whole input; it sees nothing of the cache past
    /// its start nor of the other continuations. Rows of scores in `tails` order. This is
    /// what an input that shares the start of a longer, cached one costs: its own tokens.
    pub fn forward_continuations(
        &self,
        cache: &KvCache,
        tails: &[(usize, &[u32])],
        should_stop: &dyn Fn() -> bool,
    ) -> Result<Tensor> {
        if tails.is_empty() {
            return Ok(Tensor::zeros((0, self.width()), DType::F32, &self.device)?);
        }
        if matches!(self.head, Head::Gating(_)) {
            return Err(ModelError::Input(
                "continuations are not computed for a gating head".into(),
            ));
        }
        let p = cache.len();
        let mut ids = Vec::new();
        let mut positions = Vec::new();
        let mut pooled = Vec::with_capacity(tails.len());
        for &(start, tail) in tails {
            if tail.is_empty() || start > p {
                return Err(ModelError::Input(format!(
                    "a continuation of {} tokens from position {start} of a {p}-token cache",
                    tail.len()
                )));
            }
            ids.extend_from_slice(tail);
            positions.extend(start..start + tail.len());
            pooled.push((ids.len() - 1) as u32);
        }
        let t = ids.len();
        let top = positions.iter().copied().max().unwrap_or(0) + 1;
        if top > self.cfg.max_position_embeddings {
            return Err(ModelError::Input(format!(
                "{top} tokens exceed the model's context of {} positions",
                self.cfg.max_position_embeddings
            )));
        }
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= self.cfg.vocab_size) {
            return Err(ModelError::Input(format!(
                "token id {bad} is outside the model's vocabulary of {}",
                self.cfg.vocab_size
            )));
        }
        // Query j of continuation i sees cache keys before its start and its own earlier
        // tokens, within the sliding window counted in positions.
        let given = |window: Option<usize>| -> Result<LazyMask<'_>> {
            let mut m = vec![f32::NEG_INFINITY; t * (p + t)];
            let mut row = 0;
            for &(start, tail) in tails {
                let first = row;
                for j in 0..tail.len() {
                    let q = start + j;
                    let seen = |pos: usize| in_window(q, pos, window);
                    let out = &mut m[(row + j) * (p + t)..(row + j + 1) * (p + t)];
                    for (pos, o) in out.iter_mut().enumerate().take(start) {
                        if seen(pos) {
                            *o = 0.0;
                        }
                    }
                    for jj in 0..=j {
                        if seen(start + jj) {
                            out[p + first + jj] = 0.0;
                        }
                    }
                }
                row += tail.len();
            }
            let made = Some(Tensor::from_vec(m, (t, p + t), &self.device)?);
            Ok(LazyMask {
                t,
                p,
                window,
                device: &self.device,
                made: std::cell::OnceCell::from(made),
                given: true,
            })
        };
        let mask = given(self.cfg.sliding_window)?;
        let full = if self.mixed_windows() {
            Some(given(None)?)
        } else {
            None
        };
        let (cos, sin) = {
            let mut rot = self.rotary.lock().unwrap_or_else(|e| e.into_inner());
            rot.ensure(top)?;
            let at = Tensor::from_vec(
                positions.iter().map(|&x| x as u32).collect::<Vec<_>>(),
                (t,),
                &self.device,
            )?;
            let (cos, sin) = rot.tables(0, top)?;
            (cos.index_select(&at, 0)?, sin.index_select(&at, 0)?)
        };
        let ids = Tensor::from_vec(ids, (t,), &self.device)?;
        let x = self.embed(&ids)?.reshape((1, t, self.cfg.hidden_size))?;
        let pass = Pass {
            past: Some(cache),
            extension: None,
            cos: &cos,
            sin: &sin,
            mask: &mask,
            full_mask: full.as_ref(),
            pooled: &pooled,
            keep_caches: false,
        };
        let hidden = self.run(x, &pass, should_stop)?.0;
        self.head.apply(&hidden, None)
    }

    /// The rows of `ids` in the embedding table, in the compute dtype (scaled, for Gemma-2).
    fn embed(&self, ids: &Tensor) -> Result<Tensor> {
        let x = self.embed.index_select(ids, 0)?.to_dtype(self.dtype)?;
        Ok(match self.embed_scale {
            Some(s) => (x * s)?,
            None => x,
        })
    }

    /// Whether some layers have no window while others have one (Gemma-2): those layers
    /// need a mask of their own.
    fn mixed_windows(&self) -> bool {
        self.layers
            .iter()
            .any(|l| l.attn.window != self.cfg.sliding_window)
    }

    /// Values in each output row: one per label, or for a gating head the rewards, the
    /// gating weights and the score.
    pub fn width(&self) -> usize {
        self.head.width(self.cfg.num_labels)
    }

    /// How many of `ids`' first positions may come from a cache: every row the head reads
    /// must be computed in the pass.
    pub fn reuse_limit(&self, ids: &[u32]) -> usize {
        match &self.head {
            Head::Score { .. } => ids.len(),
            Head::Gating(_) => match self.head.reads(ids) {
                Ok(r) => r.reward.min(r.gating.unwrap_or(usize::MAX)),
                Err(_) => 0,
            },
        }
    }

    pub fn has_gating(&self) -> bool {
        matches!(self.head, Head::Gating(_))
    }

    /// The decoder over `x` (`[b, t, hidden]`), then the final norm, on the rows `pass.pooled`
    /// names (in `b · t` order). Returns those rows in f32 and, when asked, each layer's keys
    /// and values.
    #[allow(clippy::type_complexity)]
    fn run(
        &self,
        mut x: Tensor,
        pass: &Pass<'_>,
        should_stop: &dyn Fn() -> bool,
    ) -> Result<(Tensor, Vec<(Tensor, Tensor)>)> {
        let (b, t, hidden) = x.dims3()?;
        let rows = Tensor::from_vec(pass.pooled.to_vec(), (pass.pooled.len(),), &self.device)?;
        let pooled_rows = |x: &Tensor| x.reshape((b * t, hidden))?.index_select(&rows, 0);
        let mut caches: Vec<(Tensor, Tensor)> = Vec::with_capacity(self.layers.len());
        let mut pooled = None;
        for (li, layer) in self.layers.iter().enumerate() {
            if should_stop() {
                return Err(ModelError::Cancelled);
            }
            let past = pass.past.map(|c| &c.layers[li]);
            let residual = &x;
            let h = layer.input_norm.forward(&x)?;
            let mask = match pass.full_mask {
                Some(full) if layer.attn.window.is_none() => full,
                _ => pass.mask,
            };
            let extend = pass.extension.map(|e| (e, li));
            let (attn, k, v) = layer
                .attn
                .forward(&h, past, extend, pass.cos, pass.sin, mask)?;
            // Gemma-2 normalises the attention's output before the residual sum.
            let attn = match &layer.feedforward_norms {
                Some(_) => layer.post_norm.forward(&attn)?,
                None => attn,
            };
            if pass.keep_caches {
                caches.push((k, v));
            }
            if li + 1 == self.layers.len() {
                // Nothing reads the other tokens' rows after the last layer's attention (its
                // keys and values are made above), so its MLP runs on the pooled rows alone.
                let x1 = (pooled_rows(residual)? + pooled_rows(&attn)?)?;
                pooled = Some(layer.feed_forward(&x1)?);
            } else {
                let x1 = (residual + attn)?;
                x = layer.feed_forward(&x1)?;
            }
        }
        let pooled = match pooled {
            Some(p) => p,
            None => pooled_rows(&x)?,
        };
        let pooled = self.norm.forward(&pooled)?.to_dtype(DType::F32)?;
        Ok((pooled, caches))
    }
}

/// What one pass of [`Mistral::run`] reads besides the input.
struct Pass<'a> {
    past: Option<&'a KvCache>,
    /// Where the pass's keys and values go after `past`'s, when not concatenated.
    extension: Option<&'a Extension>,
    cos: &'a Tensor,
    sin: &'a Tensor,
    mask: &'a LazyMask<'a>,
    /// The mask of layers without a window when others have one.
    full_mask: Option<&'a LazyMask<'a>>,
    /// Rows (in `b · t` order) the head reads.
    pooled: &'a [u32],
    keep_caches: bool,
}

/// The config's layer count must be the layers the checkpoint has, numbered from 0: it sizes
/// allocations before any tensor is read.
pub(crate) fn check_layers(n: usize, present: &std::collections::BTreeSet<usize>) -> Result<()> {
    let last = present.last().copied();
    if present.len() == n && last.map(|l| l + 1) == Some(n) {
        return Ok(());
    }
    let has = match (present.first(), last) {
        (Some(a), Some(b)) if b - a + 1 == present.len() => {
            format!(
                "{} layer(s), model.layers.{a} to model.layers.{b}",
                present.len()
            )
        }
        (Some(_), Some(_)) => {
            let shown: Vec<String> = present.iter().take(8).map(|i| i.to_string()).collect();
            let more = if present.len() > 8 { ", …" } else { "" };
            format!(
                "{} layer(s), numbered {}{more}",
                present.len(),
                shown.join(", ")
            )
        }
        _ => "no layers".into(),
    };
    Err(ModelError::ConfigMismatch(format!(
        "num_hidden_layers is {n} but the checkpoint has {has}"
    )))
}

/// Per-sequence caches from a batch's stacked keys and values: prefix + own real tokens,
/// each copied out (a view would keep the whole batch's tensors alive), with room to grow on
/// the CPU.
fn split_caches(
    prefix: Option<&KvCache>,
    stacked: &[(Tensor, Tensor)],
    lens: &[usize],
) -> Result<Vec<KvCache>> {
    let p = prefix.map_or(0, |c| c.len());
    let mut out = Vec::with_capacity(lens.len());
    for (i, &l) in lens.iter().enumerate() {
        let own = |t: &Tensor| t.narrow(0, i, 1)?.narrow(2, 0, p + l);
        let layers = stacked
            .iter()
            .map(|(k, v)| Ok((own(k)?, own(v)?)))
            .collect::<Result<Vec<_>>>()?;
        let on_cpu = layers.first().is_some_and(|(k, _)| k.device().is_cpu());
        out.push(if on_cpu {
            with_room(&layers, p + l)?
        } else {
            let copy = |t: &Tensor| match lens.len() {
                1 => t.contiguous(),
                _ => t.force_contiguous(),
            };
            let layers = layers
                .iter()
                .map(|(k, v)| Ok((copy(k)?, copy(v)?)))
                .collect::<Result<Vec<_>>>()?;
            KvCache::new(layers, p + l)
        });
    }
    Ok(out)
}

/// The [`causal_mask`] of one forward pass, made when a layer's unfused softmax first asks for
/// it: the fused GPU softmax never does, and a long input's mask is large.
struct LazyMask<'a> {
    t: usize,
    p: usize,
    window: Option<usize>,
    device: &'a Device,
    made: std::cell::OnceCell<Option<Tensor>>,
    /// The mask was given whole (not causal by position): fused kernels that mask by
    /// position must not be used.
    given: bool,
}

impl LazyMask<'_> {
    fn get(&self) -> Result<Option<&Tensor>> {
        if self.made.get().is_none() {
            let mask = causal_mask(self.t, self.p, self.window, self.device)?;
            // Only this thread can have filled it since the check.
            let _ = self.made.set(mask);
        }
        Ok(self.made.get().and_then(Option::as_ref))
    }
}

/// Whether the query at position `q` sees the key at an earlier (or its own) position `k`
/// under a sliding window of `window` positions, the query's own included, as transformers'
/// sliding-window mask.
fn in_window(q: usize, k: usize, window: Option<usize>) -> bool {
    window.is_none_or(|w| q < w + k)
}

/// Additive mask `[t, p + t]` for queries at positions `p..p+t` over keys `0..p+t`: causal and,
/// with a sliding window, only the last `window` positions (the query's own included), as
/// transformers' sliding-window mask. `None` when nothing needs masking.
fn causal_mask(
    t: usize,
    p: usize,
    window: Option<usize>,
    device: &Device,
) -> Result<Option<Tensor>> {
    let total = p + t;
    let window_bites = window.is_some_and(|w| total > w);
    if t == 1 && !window_bites {
        return Ok(None);
    }
    let mut m = Vec::with_capacity(t * total);
    for i in 0..t {
        let q = p + i;
        for k in 0..total {
            let visible = k <= q && in_window(q, k, window);
            m.push(if visible { 0f32 } else { f32::NEG_INFINITY });
        }
    }
    Ok(Some(Tensor::from_vec(m, (t, total), device)?))
}

impl Attention {
    /// `x`: `[b, t, hidden]`. Returns the output and this layer's keys and values over
    /// prefix + `t` (`[b, kv_heads, p + t, head_dim]`).
    fn forward(
        &self,
        x: &Tensor,
        past: Option<&(Tensor, Tensor)>,
        extend: Option<(&Extension, usize)>,
        cos: &Tensor,
        sin: &Tensor,
        mask: &LazyMask<'_>,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let (b, t, _) = x.dims3()?;
        let (h, kvh, d) = (self.heads, self.kv_heads, self.head_dim);
        let qkv = add_bias(self.qkv.forward(x)?, self.qkv_bias.as_ref())?;
        let shape = gpu::Heads {
            heads: h,
            kv_heads: kvh,
            head_dim: d,
        };
        let fused = match gpu::split_heads_rope(&qkv, cos, sin, shape)? {
            Some(qkv) => Some(qkv),
            None => super::split_rope::split_heads_rope(&qkv, cos, sin, shape)?,
        };
        let (q, k, v) = match fused {
            Some(qkv) => qkv,
            None => {
                let q = qkv.narrow(D::Minus1, 0, h * d)?;
                let k = qkv.narrow(D::Minus1, h * d, kvh * d)?;
                let v = qkv.narrow(D::Minus1, h * d + kvh * d, kvh * d)?;
                let q = q.reshape((b, t, h, d))?.transpose(1, 2)?.contiguous()?;
                let k = k.reshape((b, t, kvh, d))?.transpose(1, 2)?.contiguous()?;
                let v = v.reshape((b, t, kvh, d))?.transpose(1, 2)?.contiguous()?;
                let q = candle_nn::rotary_emb::rope(&q, cos, sin)?;
                let k = candle_nn::rotary_emb::rope(&k, cos, sin)?;
                (q, k, v)
            }
        };
        let (k, v) = match (extend, past) {
            (Some((e, li)), _) => e.write(li, &k, &v)?,
            (None, Some((pk, pv))) => {
                let p = pk.dim(2)?;
                // Contiguous parts make a contiguous concatenation, as the matmuls below need
                // (a broadcast or truncated prefix is a strided view).
                let pk = pk.broadcast_as((b, kvh, p, d))?.contiguous()?;
                let pv = pv.broadcast_as((b, kvh, p, d))?.contiguous()?;
                (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?)
            }
            (None, None) => (k, v),
        };
        #[cfg(feature = "flash-attn")]
        if !mask.given && self.softcap.is_none() && self.scale == 1.0 / (d as f64).sqrt() {
            if let Some(out) = super::flash::attend(&q, &k, &v, self.window)? {
                return Ok((self.project_out(&out)?, k, v));
            }
        }
        let total = k.dim(2)?;
        // Grouped-query attention without repeating keys: the n_rep query heads that share a
        // key/value head are stacked along the query axis of that head.
        let n_rep = h / kvh;
        let q = q.reshape((b, kvh, n_rep * t, d))?;
        // The mask over the stacked query rows, made on the unfused path's first use (the fused
        // softmax masks by position itself).
        let mut stacked_mask: Option<Option<Tensor>> = None;
        let scale = self.scale;
        let kt = k.t()?;
        let rows = n_rep * t;
        // A GPU has the memory to take every row at once: fewer, larger launches.
        let max_scores = if q.device().is_cpu() {
            MAX_SCORES_PER_BLOCK
        } else {
            MAX_SCORES_PER_BLOCK_GPU
        };
        let block = (max_scores / (b * kvh * total).max(1)).clamp(1, rows);
        let mut outs = Vec::with_capacity(rows.div_ceil(block));
        if !mask.given && self.softcap.is_none() && rows <= super::softmax::FEW_ROWS {
            let at = gpu::RowPlacement {
                rows,
                first_row: 0,
                tokens: t,
                prefix: total - t,
                window: self.window,
            };
            outs.extend(super::softmax::attend_few(&q, &k, &v, scale, at)?);
        }
        let mut start = if outs.is_empty() { 0 } else { rows };
        while start < rows {
            let n = block.min(rows - start);
            let qb = if n == rows {
                q.clone()
            } else {
                q.narrow(2, start, n)?
            };
            let scores = qb.matmul(&kt)?;
            let at = gpu::RowPlacement {
                rows: n,
                first_row: start,
                tokens: t,
                prefix: total - t,
                window: self.window,
            };
            let fused = if mask.given || self.softcap.is_some() {
                None
            } else if scores.device().is_cpu() {
                super::softmax::causal_softmax(&scores, scale, at)?
            } else {
                gpu::causal_softmax(&scores, scale, at)?
            };
            let probs = match fused {
                Some(probs) => probs,
                None => {
                    let mask = match &mut stacked_mask {
                        Some(m) => m,
                        slot @ None => slot.insert(stack_mask(mask.get()?, n_rep)?),
                    };
                    let scores = (scores * scale)?.to_dtype(DType::F32)?;
                    let scores = match self.softcap {
                        Some(cap) => ((scores / cap)?.tanh()? * cap)?,
                        None => scores,
                    };
                    let scores = match mask {
                        Some(m) => scores.broadcast_add(&m.narrow(0, start, n)?)?,
                        None => scores,
                    };
                    candle_nn::ops::softmax_last_dim(&scores)?.to_dtype(v.dtype())?
                }
            };
            outs.push(probs.matmul(&v)?);
            start += n;
        }
        let out = if outs.len() == 1 {
            outs.pop().unwrap_or_else(|| unreachable!())
        } else {
            Tensor::cat(&outs, 2)?
        };
        let out = out.reshape((b, h, t, d))?;
        let out = match gpu::merge_heads(&out)? {
            Some(out) => out,
            None => out.transpose(1, 2)?.reshape((b, t, h * d))?,
        };
        Ok((self.project_out(&out)?, k, v))
    }

    fn project_out(&self, x: &Tensor) -> Result<Tensor> {
        add_bias(self.o_proj.forward(x)?, self.o_bias.as_ref())
    }
}

/// `y + bias` over the last axis, in `y`'s dtype (the bias is kept in f32).
fn add_bias(y: Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    Ok(match bias {
        None => y,
        Some(b) => y.broadcast_add(&b.to_dtype(y.dtype())?)?,
    })
}

/// The `[t, total]` mask repeated for `n_rep` query heads stacked along the query axis.
fn stack_mask(mask: Option<&Tensor>, n_rep: usize) -> Result<Option<Tensor>> {
    match mask {
        Some(m) if n_rep > 1 => {
            let (t, total) = m.dims2()?;
            Ok(Some(
                m.unsqueeze(0)?
                    .broadcast_as((n_rep, t, total))?
                    .reshape((n_rep * t, total))?,
            ))
        }
        m => Ok(m.cloned()),
    }
}

impl Layer {
    /// The residual sum `x1` through the MLP and back: `x1 + mlp(norm(x1))`, or Gemma-2's
    /// `x1 + norm(mlp(norm(x1)))`.
    fn feed_forward(&self, x1: &Tensor) -> Result<Tensor> {
        match &self.feedforward_norms {
            None => {
                let h = self.post_norm.forward(x1)?;
                Ok((x1 + self.mlp.forward(&h)?)?)
            }
            Some((pre, post)) => {
                let h = pre.forward(x1)?;
                Ok((x1 + post.forward(&self.mlp.forward(&h)?)?)?)
            }
        }
    }
}

impl Mlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let gu = self.gate_up.forward(x)?;
        if !self.gelu {
            let fused = match gpu::silu_mul(&gu)? {
                Some(h) => Some(h),
                None => super::activation::silu_mul(&gu)?,
            };
            if let Some(h) = fused {
                return self.down.forward(&h);
            }
        }
        let gate = gu.narrow(D::Minus1, 0, self.intermediate)?;
        let up = gu.narrow(D::Minus1, self.intermediate, self.intermediate)?;
        let act = if self.gelu {
            // PyTorch's tanh approximation, as `gelu_pytorch_tanh`.
            gate.gelu()?
        } else {
            candle_nn::ops::silu(&gate)?
        };
        self.down.forward(&(act * up)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask_rows(t: usize, p: usize, w: Option<usize>) -> Vec<Vec<bool>> {
        let m = causal_mask(t, p, w, &Device::Cpu).unwrap().unwrap();
        m.to_vec2::<f32>()
            .unwrap()
            .into_iter()
            .map(|r| r.into_iter().map(|x| x == 0.0).collect())
            .collect()
    }

    #[test]
    fn causal_mask_is_lower_triangular() {
        let rows = mask_rows(3, 0, None);
        assert_eq!(
            rows,
            vec![
                vec![true, false, false],
                vec![true, true, false],
                vec![true, true, true]
            ]
        );
    }

    #[test]
    fn sliding_window_keeps_the_last_w_positions() {
        // window 2: each query sees itself and the one before it.
        let rows = mask_rows(4, 0, Some(2));
        assert_eq!(rows[3], vec![false, false, true, true]);
        assert_eq!(rows[0], vec![true, false, false, false]);
        // with a prefix of 2, query 0 sits at position 2.
        let rows = mask_rows(2, 2, Some(2));
        assert_eq!(rows[0], vec![false, true, true, false]);
    }

    #[test]
    fn single_query_needs_no_mask_without_a_biting_window() {
        assert!(causal_mask(1, 10, None, &Device::Cpu).unwrap().is_none());
        assert!(causal_mask(1, 10, Some(64), &Device::Cpu)
            .unwrap()
            .is_none());
        assert!(causal_mask(1, 10, Some(4), &Device::Cpu).unwrap().is_some());
    }

    #[test]
    fn rope_tables_match_the_transformers_formula() {
        let cfg = MistralConfig::from_json(
            r#"{"vocab_size": 8, "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1,
                "num_attention_heads": 1, "rope_theta": 10000.0}"#,
        )
        .unwrap();
        let mut r = Rotary::new(&cfg, DType::F32, &Device::Cpu).unwrap();
        r.ensure(5).unwrap();
        let (cos, sin) = r.tables(3, 2).unwrap();
        let cos = cos.to_vec2::<f32>().unwrap();
        let sin = sin.to_vec2::<f32>().unwrap();
        // position 3, frequency index 1: inv_freq = 10000^(-2/8) = 0.1
        assert!((cos[0][1] - (0.3f32).cos()).abs() < 1e-6);
        assert!((sin[1][0] - (4.0f32).sin()).abs() < 1e-6);
    }
}
