//! The loaders: what the engine thread (or `score`) runs to get a pipeline, the local model's
//! or the servers'.

use crate::hub::{self, HubOptions, ModelSource};
use crate::model::{LoadOptions, MistralConfig, ModelInfo, RewardModel, Setting};
use crate::scoring::remote::{self, RemoteOptions};
use crate::scoring::{LoadError, Pipeline};

use super::{LoadStage, Loader};

fn download_progress(progress: &dyn Fn(LoadStage)) -> impl Fn(hub::DownloadProgress) + '_ {
    move |p| {
        progress(LoadStage::Downloading {
            file: p.file,
            index: p.index,
            files: p.files,
            bytes: p.bytes,
            total: p.total,
        })
    }
}

/// The loader for a real model: fetch its files (downloading if needed), then load it,
/// keeping quantised weights in `quant_cache`.
pub fn model_loader(
    source: ModelSource,
    hub_options: HubOptions,
    options: LoadOptions,
    quant_cache: Option<std::path::PathBuf>,
) -> Loader {
    Box::new(move |progress| {
        let resolved = hub::fetch(&source, &hub_options, &download_progress(progress))
            .map_err(|e| LoadError::Model(e.to_string()))?;
        let files = resolved.files;
        progress(LoadStage::Loading {
            what: format!(
                "weights from {}",
                files.config.parent().unwrap_or(&files.config).display()
            ),
        });
        let model =
            RewardModel::load_with_progress(&files, &options, quant_cache.as_deref(), &|p| {
                progress(LoadStage::Layers {
                    phase: p.phase,
                    layer: p.layer,
                    layers: p.layers,
                })
            })?;
        // Say so when the hub was unreachable and the cached copy is what the user gets.
        Ok(Pipeline::local(model).with_note(resolved.note))
    })
}

/// The loader for servers that serve the model: fetch its tokenizer and config only, then
/// check the servers.
pub fn remote_loader(
    source: ModelSource,
    hub_options: HubOptions,
    max_tokens: usize,
    remote: RemoteOptions,
) -> Loader {
    Box::new(move |progress| remote_pipeline(&source, &hub_options, max_tokens, remote, progress))
}

/// The pipeline over servers that serve `source`'s model: its tokenizer and config come from
/// `source` (the hub or a directory; no weights are read), the scores from the servers.
pub fn remote_pipeline(
    source: &ModelSource,
    hub_options: &HubOptions,
    max_tokens: usize,
    remote: RemoteOptions,
    progress: &dyn Fn(LoadStage),
) -> Result<Pipeline, LoadError> {
    let files = hub::fetch_tokenizer(source, hub_options, &download_progress(progress))
        .map_err(|e| LoadError::Model(e.to_string()))?;
    let cfg = MistralConfig::from_file(&files.config)?;
    if max_tokens > cfg.max_position_embeddings {
        return Err(LoadError::Setting {
            setting: Setting::MaxTokens,
            message: format!(
                "{max_tokens} tokens exceed the model's context of {} tokens",
                cfg.max_position_embeddings
            ),
        });
    }
    if let crate::model::config::HeadConfig::Gating(_) = cfg.head {
        // vLLM's pooling runs one head on one token; ArmoRM's gating reads the prompt's end too.
        return Err(LoadError::Remote(
            "this model's gating head (ArmoRM) is not something a vLLM server computes; score it locally"
                .into(),
        ));
    }
    let encoder = crate::model::encoder(&cfg, &files.tokenizer, &files.templates, max_tokens)?;
    let servers: Vec<String> = remote.servers.iter().map(|u| u.to_string()).collect();
    progress(LoadStage::Loading {
        what: format!("connecting to {}", servers.join(", ")),
    });
    let info = ModelInfo {
        labels: cfg.labels.clone(),
        gating: false,
        device: String::new(),
        dtype: String::new(),
        stored_dtype: "server".into(),
        parameters: cfg.parameter_count(),
        layers: cfg.num_hidden_layers,
        max_tokens,
        context: cfg.max_position_embeddings,
    };
    let name = match source {
        ModelSource::Local(dir) => dir.display().to_string(),
        ModelSource::Hub { repo, .. } => repo.clone(),
    };
    Ok(remote::pipeline(encoder, remote, &name, info)?.with_note(files.note))
}
