//! The reward model: configuration, checkpoint loading, the Mistral decoder with its score
//! head, and the scoring input. Synchronous; no UI and no async runtime here.

mod activation;
pub mod config;
mod error;
pub mod files;
#[cfg(feature = "flash-attn")]
pub mod flash;
pub mod gpu;
pub mod heads;
pub mod heap;
pub mod input;
pub mod integrity;
pub mod kernels;
pub mod known;
pub mod kquant;
mod kv_cache;
pub mod linear;
mod load;
mod machine;
pub mod mistral;
mod modes;
pub mod quant;
pub mod reuse;
pub mod softmax;
mod split_rope;
pub mod template;
pub mod trajectory;
pub mod weights;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};

pub use config::{Family, MistralConfig, DPA_LABELS};
pub use error::{ModelError, Setting};

pub use input::{render, Encoded, InputEncoder, DEFAULT_MAX_TOKENS};
pub use linear::WeightFormat;
pub use mistral::{KvCache, Mistral};
pub use modes::{
    available_memory, check_fits, total_memory, ComputePlan, DTypeChoice, DeviceChoice,
};
pub use reuse::{KvStore, ReuseOptions, ReuseStats};
pub use template::TemplateFiles;
pub use weights::{Checkpoint, WeightFiles};

/// The files of one model on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFiles {
    pub config: PathBuf,
    pub tokenizer: PathBuf,
    pub templates: TemplateFiles,
    pub weights: WeightFiles,
}

impl ModelFiles {
    /// The files of a local model directory, each checked for presence.
    pub fn from_dir(dir: &Path) -> Result<Self, ModelError> {
        if !dir.is_dir() {
            return Err(ModelError::MissingFile {
                path: dir.to_path_buf(),
                what: "model directory".into(),
            });
        }
        let need = |name: &str, what: &str| files::require_file(&dir.join(name), what);
        Ok(Self {
            config: need(files::CONFIG, "config.json")?,
            tokenizer: need(files::TOKENIZER, "tokenizer.json (the fast tokenizer file)")?,
            templates: TemplateFiles::in_dir(dir),
            weights: WeightFiles::find(dir)?,
        })
    }

    pub fn encoder(
        &self,
        cfg: &MistralConfig,
        max_tokens: usize,
    ) -> Result<InputEncoder, ModelError> {
        encoder(cfg, &self.tokenizer, &self.templates, max_tokens)
    }
}

/// The scoring input of the model these files hold: its tokenizer and template. DPA
/// (a Mistral classifier with DPA's ten attributes) keeps its model card's template, as does
/// a Mistral classifier that declares no chat template; every other model is scored
/// through its own chat template, and one without is refused.
pub fn encoder(
    cfg: &MistralConfig,
    tokenizer: &Path,
    templates: &TemplateFiles,
    max_tokens: usize,
) -> Result<InputEncoder, ModelError> {
    let card = cfg.family == Family::Mistral
        && known::lookup(&cfg.labels).is_some_and(|k| k.card_template);
    let chat = if card {
        None
    } else {
        template::load(
            templates.tokenizer_config.as_deref(),
            templates.chat_template.as_deref(),
        )?
    };
    let template = match chat {
        Some(t) => template::Template::Chat(Box::new(t)),
        None if cfg.family == Family::Mistral => template::Template::Card,
        None => {
            return Err(ModelError::Tokenizer {
                path: tokenizer.to_path_buf(),
                message: format!(
                    "the model declares no chat template (no chat_template in {} and no {}), \
                         and only DPA's card template is known without one",
                    template::TOKENIZER_CONFIG_FILE,
                    template::CHAT_TEMPLATE_FILE
                ),
            })
        }
    };
    InputEncoder::with_template(tokenizer, cfg.bos_token_id, max_tokens, template)
}

/// How to load a model.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub device: DeviceChoice,
    pub dtype: DTypeChoice,
    pub max_tokens: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            device: DeviceChoice::Auto,
            dtype: DTypeChoice::Auto,
            max_tokens: DEFAULT_MAX_TOKENS,
        }
    }
}

/// How far a load has come: `layer` of `layers` decoder layers have their weights in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadProgress {
    pub phase: LoadPhase,
    pub layer: usize,
    pub layers: usize,
}

/// What a load is doing with the weights, which decides how long it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadPhase {
    /// Reading the checkpoint's tensors as they are (f32, bf16, f16).
    Reading,
    /// Quantising the checkpoint (a first start in a quantised mode; kept for the next).
    Quantising,
    /// Reading quantised weights kept by an earlier start.
    ReadingCache,
}

/// The decoder layer a checkpoint tensor belongs to.
fn layer_of(name: &str) -> Option<usize> {
    let rest = name.strip_prefix("model.layers.")?;
    rest.split_once('.')?.0.parse().ok()
}

/// A short description of a loaded model, for status lines and outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub labels: Vec<String>,
    /// Rows carry a gating model's weights, coefficients and score after the labels' scores
    /// (see `scoring::Gating`).
    pub gating: bool,
    pub device: String,
    pub dtype: String,
    pub stored_dtype: String,
    pub parameters: u64,
    pub layers: usize,
    pub max_tokens: usize,
    pub context: usize,
}

/// A loaded reward model: tokenizer, decoder and head.
pub struct RewardModel {
    model: Mistral,
    encoder: InputEncoder,
    info: ModelInfo,
    /// Things about the checkpoint the user should see next to every result.
    warnings: Vec<String>,
    /// The check of the weights used in place from the cache file, under way or over.
    integrity: integrity::Integrity,
    /// What the load was given, to make it again when that check fails.
    source: load::Source,
}

impl RewardModel {
    /// Loads a model; quantised weights are made at load and not kept (the application
    /// passes where to keep them to [`RewardModel::load_with_cache`]).
    pub fn load(files: &ModelFiles, opts: &LoadOptions) -> Result<Self, ModelError> {
        Self::load_with_cache(files, opts, None)
    }

    /// [`RewardModel::load`] keeping quantised weights in `quant_cache` (`None`: quantise at
    /// every load, keep nothing).
    pub fn load_with_cache(
        files: &ModelFiles,
        opts: &LoadOptions,
        quant_cache: Option<&Path>,
    ) -> Result<Self, ModelError> {
        Self::load_with_progress(files, opts, quant_cache, &|_| {})
    }

    /// [`RewardModel::load_with_cache`], telling `progress` as each layer's weights are in.
    ///
    /// Weights kept in the cache file are used in place and checked in the background
    /// ([`RewardModel::integrity`]), so that a start costs what mapping the file costs.
    pub fn load_with_progress(
        files: &ModelFiles,
        opts: &LoadOptions,
        quant_cache: Option<&Path>,
        progress: &dyn Fn(LoadProgress),
    ) -> Result<Self, ModelError> {
        Self::load_checking(files, opts, quant_cache, progress, load::Check::Deferred)
    }

    /// This model loaded again with the cache file's bytes checked before use, which makes
    /// any that fail anew and rewrites the file: what replaces a model whose
    /// [`RewardModel::integrity`] check failed.
    pub fn reload_checked(&self) -> Result<Self, ModelError> {
        let load::Source {
            files,
            opts,
            quant_cache,
        } = &self.source;
        let mut model = Self::load_checking(
            files,
            opts,
            quant_cache.as_deref(),
            &|_| {},
            load::Check::First,
        )?;
        // The same checkpoint in the same mode: what the first load told the user still holds.
        model.warnings.clone_from(&self.warnings);
        Ok(model)
    }

    /// Whether the weights this model uses in place from the cache file are the ones written.
    /// The check runs in the background after a warm load; a score must not be shown before it
    /// passes, and a model whose check fails is replaced by [`RewardModel::reload_checked`].
    pub fn integrity(&self) -> &integrity::Integrity {
        &self.integrity
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    pub fn encoder(&self) -> &InputEncoder {
        &self.encoder
    }

    /// The decoder, whose weights may still be under [`RewardModel::integrity`]'s check.
    pub fn decoder(&self) -> &Mistral {
        &self.model
    }

    pub fn encode(&self, prompt: &str, response: &str) -> Result<Encoded, ModelError> {
        self.encoder.encode(prompt, response)
    }
}

/// Whether a tensor name is one a Mistral, Llama or Qwen2 sequence classifier or ArmoRM has.
pub fn is_known_tensor(name: &str) -> bool {
    const LAYER: [&str; 15] = [
        "input_layernorm.weight",
        "post_attention_layernorm.weight",
        "pre_feedforward_layernorm.weight",
        "post_feedforward_layernorm.weight",
        "self_attn.q_proj.weight",
        "self_attn.k_proj.weight",
        "self_attn.v_proj.weight",
        "self_attn.o_proj.weight",
        "self_attn.q_proj.bias",
        "self_attn.k_proj.bias",
        "self_attn.v_proj.bias",
        "self_attn.o_proj.bias",
        "mlp.gate_proj.weight",
        "mlp.up_proj.weight",
        "mlp.down_proj.weight",
    ];
    let head = name == "regression_layer.weight"
        || name == "reward_transform_matrix"
        || name == "gating.logit_scale"
        || name
            .strip_prefix("gating.layers.")
            .and_then(|rest| rest.split_once('.'))
            .is_some_and(|(i, w)| i.parse::<usize>().is_ok() && matches!(w, "weight" | "bias"));
    head || matches!(
        name,
        "model.embed_tokens.weight" | "model.norm.weight" | "score.weight" | "score.bias"
    ) || name
        .strip_prefix("model.layers.")
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(i, rest)| i.parse::<usize>().is_ok() && LAYER.contains(&rest))
}

pub fn device_name(d: &Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(_) => "cuda".into(),
        Device::Metal(_) => "metal".into(),
    }
}

/// The compute mode as shown to the user, e.g. `f32`, `bf16 (AVX512-BF16)`, `q8_0`.
pub fn mode_name(choice: DTypeChoice, plan: ComputePlan) -> String {
    match plan.weights {
        WeightFormat::Dense(d) => dtype_name(d).to_string(),
        WeightFormat::PackedF32 => "f32".to_string(),
        WeightFormat::PackedBf16 => {
            format!("bf16 ({})", kernels::bf16::PackedBf16::best_isa().name())
        }
        WeightFormat::Quantized(_) | WeightFormat::PackedQ12 => choice.name().to_string(),
    }
}

pub fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "f32",
        DType::BF16 => "bf16",
        DType::F16 => "f16",
        DType::F64 => "f64",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_picks_the_most_precise_mode_that_fits() {
        let seven_b = 7_241_732_096u64;
        let gib = 1u64 << 30;
        assert_eq!(DTypeChoice::for_memory(seven_b, None), DTypeChoice::F32);
        assert_eq!(
            DTypeChoice::for_memory(seven_b, Some(64 * gib)),
            DTypeChoice::F32
        );
        // Where bf16 has no instruction of its own, q12 is faster and more precise, at 3 % more
        // memory (16.0 GiB against 15.5 with the margin).
        let sixteen = if modes::q12_beats_bf16() {
            DTypeChoice::Q12
        } else {
            DTypeChoice::BF16
        };
        assert_eq!(DTypeChoice::for_memory(seven_b, Some(24 * gib)), sixteen);
        assert_eq!(
            DTypeChoice::for_memory(seven_b, Some(gib * 31 / 2 + gib / 4)),
            DTypeChoice::BF16
        );
        // q8_0 keeps the ranking where this crate's kernels run it (16-bit activations: τ ≥
        // 0.966 on every trained body), so it is what fits in 12 GiB, and the smallest mode
        // offered when nothing fits; elsewhere candle's kernel (8-bit activations, τ 0.855) is
        // never picked unasked, and bf16 is the smallest. The 4-bit modes never are.
        let eight = if kernels::int8::own_kernel_available() {
            DTypeChoice::Q8_0
        } else {
            DTypeChoice::BF16
        };
        assert_eq!(DTypeChoice::for_memory(seven_b, Some(12 * gib)), eight);
        assert_eq!(DTypeChoice::for_memory(seven_b, Some(6 * gib)), eight);
        assert_eq!(
            DTypeChoice::for_memory(1_000_000, Some(gib)),
            DTypeChoice::F32
        );
    }

    #[test]
    fn auto_says_when_its_choice_does_not_fit_and_what_would() {
        let seven_b = 7_241_732_096u64;
        let gib = 1u64 << 30;
        let bf16 = DTypeChoice::BF16;
        assert_eq!(bf16.auto_memory_warning(seven_b, Some(24 * gib)), None);
        assert_eq!(bf16.auto_memory_warning(seven_b, None), None);
        let w = bf16.auto_memory_warning(seven_b, Some(12 * gib)).unwrap();
        assert!(w.contains("chose bf16"), "{w}");
        assert!(w.contains("15.5 GiB and 12.0 GiB"), "{w}");
        // A smaller mode that fits is named, with its measured accuracy where that misses the
        // bar.
        assert!(w.contains("--dtype q8_0 needs about 8.7 GiB"), "{w}");
        assert_eq!(
            w.contains("may not keep"),
            !DTypeChoice::Q8_0.meets_rank_bar(),
            "{w}"
        );
        let w = DTypeChoice::Q8_0
            .auto_memory_warning(seven_b, Some(6 * gib))
            .unwrap();
        assert!(w.contains("chose q8_0"), "{w}");
        assert!(w.contains("8.7 GiB and 6.0 GiB"), "{w}");
        assert!(
            w.ends_with(
                "--dtype q4_k needs about 4.5 GiB but may not keep the ranking (τ as low as 0.394)"
            ),
            "{w}"
        );
        let w = bf16.auto_memory_warning(seven_b, Some(gib)).unwrap();
        assert!(w.ends_with("no smaller mode fits either"), "{w}");
    }
}
