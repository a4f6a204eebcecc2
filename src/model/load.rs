//! Loading a reward model: config, tokenizer and checkpoint checked, the mode resolved, each
//! layer's projections made or taken from the cache file, and what the user should be told.

use std::path::{Path, PathBuf};

use candle_core::DType;

use super::modes::{available_memory, check_fits, total_memory};
use super::weights::Checkpoint;
use super::{
    device_name, dtype_name, heap, integrity, is_known_tensor, layer_of, linear, machine, mistral,
    mode_name, quant, DTypeChoice, LoadOptions, LoadPhase, LoadProgress, Mistral, MistralConfig,
    ModelError, ModelFiles, ModelInfo, RewardModel, Setting, WeightFormat,
};

/// When a load checks the weights it uses in place from the cache file.
#[derive(Clone, Copy)]
pub(super) enum Check {
    /// Before the load returns.
    First,
    /// In the background, after it returns.
    Deferred,
}

/// A load's inputs, the mode resolved (so that a load made again is the same mode).
#[derive(Clone)]
pub(super) struct Source {
    pub(super) files: ModelFiles,
    pub(super) opts: LoadOptions,
    pub(super) quant_cache: Option<PathBuf>,
}

impl RewardModel {
    pub(super) fn load_checking(
        files: &ModelFiles,
        opts: &LoadOptions,
        quant_cache: Option<&Path>,
        progress: &dyn Fn(LoadProgress),
        check: Check,
    ) -> Result<Self, ModelError> {
        let cfg = MistralConfig::from_file(&files.config)?;
        if opts.max_tokens > cfg.max_position_embeddings {
            return Err(ModelError::Setting {
                setting: Setting::MaxTokens,
                message: format!(
                    "{} tokens exceed the model's context of {} tokens",
                    opts.max_tokens, cfg.max_position_embeddings
                ),
            });
        }
        let encoder = files.encoder(&cfg, opts.max_tokens)?;
        if encoder.max_id() as usize >= cfg.vocab_size {
            return Err(ModelError::Tokenizer {
                path: files.tokenizer.clone(),
                message: format!(
                    "the tokenizer has ids up to {} but the model's vocabulary has {} entries \
                     (does the tokenizer belong to this checkpoint?)",
                    encoder.max_id(),
                    cfg.vocab_size
                ),
            });
        }
        let device = opts.device.resolve()?;
        // Choices timed at an earlier start are taken before anything is timed.
        let kept_in = quant_cache.filter(|_| device.is_cpu());
        if let Some(dir) = kept_in {
            machine::use_kept(dir);
        }
        let mut memory_warning = None;
        let choice = match opts.dtype {
            DTypeChoice::Auto if device.is_cpu() => {
                let available = available_memory();
                let choice = DTypeChoice::for_memory(cfg.parameter_count(), available);
                tracing::info!(
                    "dtype auto: {} for {} parameters ({} bytes available)",
                    choice.name(),
                    cfg.parameter_count(),
                    available.map_or("unknown".into(), |b| b.to_string())
                );
                memory_warning = choice.auto_memory_warning(cfg.parameter_count(), available);
                choice
            }
            other => other,
        };
        let plan = choice.plan(&device);
        let dtype = plan.activations;
        let mut ckpt = Checkpoint::open(&files.weights)?;
        mistral::check_layers(cfg.num_hidden_layers, &ckpt.layer_indices())?;
        if device.is_cpu() {
            check_fits(
                cfg.parameter_count(),
                plan,
                cfg.num_hidden_layers,
                &mode_name(choice, plan),
                total_memory(),
            )?;
        }
        let stored = ckpt.stored_dtype().unwrap_or(DType::F32);
        let cache =
            match plan.weights {
                WeightFormat::Quantized(q) => Some(std::cell::RefCell::new(
                    quant::QuantCache::open(quant_cache, &files.weights, q, device.is_cpu()),
                )),
                // The packed bf16 form: a warm start maps it instead of packing 14 GB again.
                WeightFormat::PackedBf16 => Some(std::cell::RefCell::new(quant::QuantCache::open(
                    quant_cache,
                    &files.weights,
                    candle_core::quantized::GgmlDType::BF16,
                    true,
                ))),
                WeightFormat::PackedQ12 => Some(std::cell::RefCell::new(quant::QuantCache::open(
                    quant_cache,
                    &files.weights,
                    quant::Q12_CACHE_TYPE,
                    true,
                ))),
                _ => None,
            };
        if let (Some(c), Check::Deferred) = (&cache, check) {
            c.borrow_mut().defer_checks();
        }
        let phase = match &cache {
            Some(c) if c.borrow().is_warm() => LoadPhase::ReadingCache,
            Some(_)
                if matches!(
                    plan.weights,
                    WeightFormat::Quantized(_) | WeightFormat::PackedQ12
                ) =>
            {
                LoadPhase::Quantising
            }
            _ => LoadPhase::Reading,
        };
        let layers = cfg.num_hidden_layers;
        progress(LoadProgress {
            phase,
            layer: 0,
            layers,
        });
        let loaded = Mistral::load(&cfg, &mut ckpt, dtype, &device, &|c, names, outs, inf| {
            let mut cache = cache.as_ref().map(|c| c.borrow_mut());
            let first = names.first();
            let layer = first.and_then(|n| layer_of(n));
            let made = linear::load(
                c,
                names,
                outs,
                inf,
                plan.layer_weights(layer, layers),
                &device,
                cache.as_deref_mut(),
            )?;
            // A layer's last projection is its MLP's down projection.
            if let Some(i) =
                layer.filter(|_| first.is_some_and(|n| n.ends_with(".mlp.down_proj.weight")))
            {
                progress(LoadProgress {
                    phase,
                    layer: i + 1,
                    layers,
                });
            }
            Ok(made)
        });
        let model = match loaded {
            Ok(m) => m,
            // Name what the checkpoint has instead: it may hold the tensor under another name.
            Err(ModelError::MissingTensor { name, expected, .. }) => {
                let unknown = ckpt
                    .untaken()
                    .into_iter()
                    .filter(|n| !is_known_tensor(n))
                    .collect();
                return Err(ModelError::MissingTensor {
                    name,
                    expected,
                    unknown,
                });
            }
            Err(e) => return Err(e),
        };
        let mut warnings = Vec::new();
        let mut integrity = integrity::Integrity::checked();
        if let Some(cache) = cache.map(|c| c.into_inner()) {
            if let Some(problem) = cache.problem() {
                tracing::warn!("quantised weights re-made: {problem}");
            }
            let damaged = cache.damaged_in_use();
            let pending = cache.unchecked();
            // A cache that cannot be written costs only time at the next start.
            if let Err(e) = cache.finish() {
                tracing::warn!("cannot keep the quantised weights: {e}");
            }
            if damaged {
                // A weight in use was damaged (found when the file had to be made anew): load
                // again, checking first, which makes it anew from the checkpoint.
                drop(model);
                return Self::load_checking(files, opts, quant_cache, progress, Check::First);
            }
            if let Some(pending) = pending {
                integrity = integrity::Integrity::spawn(pending);
            }
        }
        if let Some(w) = choice.accuracy_warning(&device) {
            warnings.push(w);
        }
        warnings.extend(memory_warning);
        let unknown = ckpt.untaken();
        if !unknown.is_empty() {
            warnings.push(format!(
                "the checkpoint has {} tensor(s) this port does not use, possibly the authors' own change: {}",
                unknown.len(),
                unknown.join(", ")
            ));
        }
        if device.is_cpu() {
            heap::keep_pass_buffers();
        }
        let info = ModelInfo {
            labels: cfg.labels.clone(),
            gating: model.has_gating(),
            device: device_name(&device),
            dtype: mode_name(choice, plan),
            stored_dtype: dtype_name(stored).into(),
            parameters: cfg.parameter_count(),
            layers: cfg.num_hidden_layers,
            max_tokens: opts.max_tokens,
            context: cfg.max_position_embeddings,
        };
        // Every choice this load needed has been made by now (the mode's name names bf16's
        // kernel).
        if let Some(dir) = kept_in {
            let used = machine::Used {
                bf16: plan.weights == WeightFormat::PackedBf16,
                q12: opts.dtype == DTypeChoice::Auto,
            };
            machine::keep_made(dir, used);
        }
        Ok(Self {
            model,
            encoder,
            info,
            warnings,
            integrity,
            source: Source {
                files: files.clone(),
                opts: LoadOptions {
                    dtype: choice,
                    ..opts.clone()
                },
                quant_cache: quant_cache.map(Path::to_path_buf),
            },
        })
    }
}
