//! A random-weight model with the real Mistral-7B widths and a few layers, written once as
//! bf16 safetensors (never committed), and deterministic text of a given token length.
#![allow(dead_code)]

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use dpa_explorer::model::{
    DTypeChoice, DeviceChoice, InputEncoder, LoadOptions, ModelFiles, RewardModel,
};

pub const HIDDEN: usize = 4096;
pub const INTERMEDIATE: usize = 14336;
pub const HEADS: usize = 32;
pub const KV_HEADS: usize = 8;
pub const HEAD_DIM: usize = 128;
pub const VOCAB: usize = 32001;
pub const LABELS: usize = 10;

/// The source tree: `DPA_BENCH_ROOT` (to run a copied binary elsewhere), else where it was built.
fn root() -> PathBuf {
    std::env::var_os("DPA_BENCH_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The layer count: `DPA_BENCH_LAYERS`, default 2 (the per-layer cost is what matters).
pub fn layers() -> usize {
    std::env::var("DPA_BENCH_LAYERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(2)
}

/// Whether to run on the tiny test fixture instead (`DPA_BENCH_SMOKE=1`): checks the bench
/// runs, measures nothing.
pub fn smoke() -> bool {
    std::env::var("DPA_BENCH_SMOKE").is_ok_and(|v| v == "1")
}

/// The model directory: the tiny fixture when smoke-testing, else the 7B-width model under
/// `target/`, written on first use.
pub fn model_dir() -> PathBuf {
    if smoke() {
        return root().join("tests/fixtures/tiny-gqa-window");
    }
    let dir = root().join(format!(
        "target/bench-models/mistral7b-widths-{}l",
        layers()
    ));
    if !dir.join("model.safetensors").is_file() {
        eprintln!(
            "writing a random {}-layer 7B-width model to {}",
            layers(),
            dir.display()
        );
        write_model(&dir, layers()).expect("write the bench model");
    }
    dir
}

pub fn load(dir: &Path, dtype: DTypeChoice) -> RewardModel {
    let files = ModelFiles::from_dir(dir).expect("model files");
    let opts = LoadOptions {
        device: DeviceChoice::Cpu,
        dtype,
        max_tokens: 4096,
    };
    RewardModel::load(&files, &opts).expect("bench model loads")
}

/// xorshift64*, for weights and texts that are the same on every run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn config_json(layers: usize) -> String {
    let labels: Vec<String> = (0..LABELS)
        .map(|i| format!("\"{i}\": \"LABEL_{i}\""))
        .collect();
    format!(
        r#"{{
  "architectures": ["MistralForSequenceClassification"],
  "model_type": "mistral",
  "vocab_size": {VOCAB},
  "hidden_size": {HIDDEN},
  "intermediate_size": {INTERMEDIATE},
  "num_hidden_layers": {layers},
  "num_attention_heads": {HEADS},
  "num_key_value_heads": {KV_HEADS},
  "head_dim": {HEAD_DIM},
  "max_position_embeddings": 32768,
  "rms_norm_eps": 1e-05,
  "rope_theta": 1000000.0,
  "sliding_window": null,
  "bos_token_id": 1,
  "eos_token_id": 2,
  "pad_token_id": 32000,
  "torch_dtype": "bfloat16",
  "id2label": {{ {} }}
}}
"#,
        labels.join(", ")
    )
}

/// Writes config, tokenizer and bf16 safetensors with small uniform random weights (norms 1).
pub fn write_model(dir: &Path, layers: usize) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("config.json"), config_json(layers))?;
    std::fs::copy(
        root().join("assets/tokenizer/tokenizer.json"),
        dir.join("tokenizer.json"),
    )?;
    let (h, i) = (HIDDEN, INTERMEDIATE);
    let (q, kv) = (HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM);
    let mut tensors: Vec<(String, Vec<usize>, bool)> =
        vec![("model.embed_tokens.weight".into(), vec![VOCAB, h], false)];
    for l in 0..layers {
        let p = format!("model.layers.{l}");
        tensors.extend([
            (format!("{p}.input_layernorm.weight"), vec![h], true),
            (
                format!("{p}.post_attention_layernorm.weight"),
                vec![h],
                true,
            ),
            (format!("{p}.self_attn.q_proj.weight"), vec![q, h], false),
            (format!("{p}.self_attn.k_proj.weight"), vec![kv, h], false),
            (format!("{p}.self_attn.v_proj.weight"), vec![kv, h], false),
            (format!("{p}.self_attn.o_proj.weight"), vec![h, q], false),
            (format!("{p}.mlp.gate_proj.weight"), vec![i, h], false),
            (format!("{p}.mlp.up_proj.weight"), vec![i, h], false),
            (format!("{p}.mlp.down_proj.weight"), vec![h, i], false),
        ]);
    }
    tensors.push(("model.norm.weight".into(), vec![h], true));
    tensors.push(("score.weight".into(), vec![LABELS, h], false));

    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, shape, _) in &tensors {
        let bytes = shape.iter().product::<usize>() * 2;
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let mut header = serde_json::to_vec(&serde_json::Value::Object(header))?;
    while header.len() % 8 != 0 {
        header.push(b' ');
    }
    let tmp = dir.join("model.safetensors.tmp");
    let mut out = BufWriter::with_capacity(1 << 22, std::fs::File::create(&tmp)?);
    out.write_all(&(header.len() as u64).to_le_bytes())?;
    out.write_all(&header)?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let one = half::bf16::from_f32(1.0).to_bits().to_le_bytes();
    let mut buf = Vec::with_capacity(1 << 20);
    for (_, shape, is_norm) in &tensors {
        let n: usize = shape.iter().product();
        let scale = 0.5 / (shape[shape.len() - 1] as f32).sqrt();
        for _ in 0..n {
            let b = if *is_norm {
                one
            } else {
                // Uniform in [-scale, scale): activations stay O(1) through the layers.
                let u = (rng.next() >> 40) as f32 / (1u64 << 24) as f32;
                half::bf16::from_f32((2.0 * u - 1.0) * scale)
                    .to_bits()
                    .to_le_bytes()
            };
            buf.extend_from_slice(&b);
            if buf.len() >= 1 << 20 {
                out.write_all(&buf)?;
                buf.clear();
            }
        }
    }
    out.write_all(&buf)?;
    out.flush()?;
    drop(out);
    std::fs::rename(tmp, dir.join("model.safetensors"))
}

const WORDS: [&str; 48] = [
    "the", "answer", "depends", "on", "context", "and", "careful", "reading", "of", "what", "was",
    "asked", "because", "models", "often", "miss", "details", "that", "matter", "most", "when",
    "users", "explain", "their", "goals", "clearly", "so", "we", "should", "consider", "several",
    "options", "before", "choosing", "one", "with", "good", "reasons", "for", "each", "step", "in",
    "a", "plan", "which", "then", "works", "well",
];

/// Deterministic words whose template tokenization makes about `tokens` tokens.
pub fn words(rng: &mut Rng, enc: &InputEncoder, tokens: usize) -> String {
    let mut s = String::new();
    loop {
        let ids = enc.encode_text(&s).map(|e| e.ids.len() - 1).unwrap_or(0);
        if ids >= tokens {
            return s;
        }
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(WORDS[rng.below(WORDS.len())]);
    }
}

/// Median of a sample, in seconds.
pub fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}
