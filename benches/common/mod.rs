//! A random-weight Mistral sequence classifier written to disk, shared by the benchmarks and the
//! benchmark binary: the same files the PyTorch side of `scripts/bench_vs_pytorch.py` reads.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

/// The widths of a model to generate.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub hidden: usize,
    pub intermediate: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub layers: usize,
    pub vocab: usize,
    pub labels: usize,
}

impl Shape {
    /// Mistral-7B's widths with `layers` layers.
    pub fn mistral_7b(layers: usize) -> Self {
        Self {
            hidden: 4096,
            intermediate: 14336,
            heads: 32,
            kv_heads: 8,
            head_dim: 128,
            layers,
            vocab: 32001,
            labels: 10,
        }
    }

    /// Small enough to build and run every mode in seconds; widths that every block format
    /// divides (256), so the quantised kernels are the ones the real model uses.
    pub fn smoke() -> Self {
        Self {
            hidden: 256,
            intermediate: 512,
            heads: 4,
            kv_heads: 2,
            head_dim: 64,
            layers: 2,
            vocab: 32001,
            labels: 10,
        }
    }

    pub fn config_json(&self) -> String {
        serde_json::json!({
            "architectures": ["MistralForSequenceClassification"],
            "model_type": "mistral",
            "hidden_size": self.hidden,
            "intermediate_size": self.intermediate,
            "num_attention_heads": self.heads,
            "num_key_value_heads": self.kv_heads,
            "head_dim": self.head_dim,
            "num_hidden_layers": self.layers,
            "vocab_size": self.vocab,
            "num_labels": self.labels,
            "hidden_act": "silu",
            "max_position_embeddings": 32768,
            "rms_norm_eps": 1e-5,
            "rope_theta": 1000000.0,
            "sliding_window": null,
            "pad_token_id": 32000,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "tie_word_embeddings": false,
            "torch_dtype": "bfloat16",
        })
        .to_string()
    }

    /// Multiply-adds ×2 of one pass over `tokens` tokens (projections, attention, head).
    pub fn flops(&self, tokens: usize) -> f64 {
        let (h, q, kv) = (
            self.hidden as f64,
            (self.heads * self.head_dim) as f64,
            (self.kv_heads * self.head_dim) as f64,
        );
        let t = tokens as f64;
        let proj = h * (q + 2.0 * kv) + q * h + 3.0 * h * self.intermediate as f64;
        let attn = 2.0 * t * q; // scores and weighted values, per token
        self.layers as f64 * 2.0 * t * (proj + attn)
    }
}

/// Writes `config.json`, `model.safetensors` (bf16, deterministic, std 0.02) and
/// the real tokenizer into `dir`.
pub fn write_model(dir: &Path, s: &Shape) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let dev = Device::Cpu;
    // Deterministic (a fixed generator), uniform with the standard deviation transformers
    // initialises with (0.02).
    let state = std::cell::Cell::new(0x2545_f491_4f6c_dd1du64);
    let randn = |shape: &[usize]| -> anyhow::Result<Tensor> {
        let half_width = 0.02 * 3f32.sqrt();
        let v: Vec<f32> = (0..shape.iter().product::<usize>())
            .map(|_| {
                let s = state
                    .get()
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                state.set(s);
                ((s >> 40) as f32 / (1u64 << 23) as f32 - 1.0) * half_width
            })
            .collect();
        Ok(Tensor::from_vec(v, shape, &dev)?.to_dtype(DType::BF16)?)
    };
    let ones = |n: usize| -> anyhow::Result<Tensor> { Ok(Tensor::ones(n, DType::BF16, &dev)?) };
    let (h, q, kv) = (s.hidden, s.heads * s.head_dim, s.kv_heads * s.head_dim);
    let mut t: HashMap<String, Tensor> = HashMap::new();
    t.insert("model.embed_tokens.weight".into(), randn(&[s.vocab, h])?);
    for i in 0..s.layers {
        let p = format!("model.layers.{i}");
        t.insert(format!("{p}.input_layernorm.weight"), ones(h)?);
        t.insert(format!("{p}.post_attention_layernorm.weight"), ones(h)?);
        t.insert(format!("{p}.self_attn.q_proj.weight"), randn(&[q, h])?);
        t.insert(format!("{p}.self_attn.k_proj.weight"), randn(&[kv, h])?);
        t.insert(format!("{p}.self_attn.v_proj.weight"), randn(&[kv, h])?);
        t.insert(format!("{p}.self_attn.o_proj.weight"), randn(&[h, q])?);
        t.insert(
            format!("{p}.mlp.gate_proj.weight"),
            randn(&[s.intermediate, h])?,
        );
        t.insert(
            format!("{p}.mlp.up_proj.weight"),
            randn(&[s.intermediate, h])?,
        );
        t.insert(
            format!("{p}.mlp.down_proj.weight"),
            randn(&[h, s.intermediate])?,
        );
    }
    t.insert("model.norm.weight".into(), ones(h)?);
    t.insert("score.weight".into(), randn(&[s.labels, h])?);
    candle_core::safetensors::save(&t, dir.join("model.safetensors"))?;
    std::fs::write(dir.join("config.json"), s.config_json())?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(
        root.join("assets/tokenizer/tokenizer.json"),
        dir.join("tokenizer.json"),
    )?;
    Ok(())
}

/// Peak resident memory of this process so far (Linux `VmHWM`), in bytes.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Deterministic token ids in the ordinary vocabulary, starting with BOS.
pub fn token_ids(len: usize, seed: u64) -> Vec<u32> {
    let mut s = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut ids = vec![1u32];
    while ids.len() < len {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ids.push(3 + ((s >> 33) % 31000) as u32);
    }
    ids
}
