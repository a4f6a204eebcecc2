//! Command-line arguments and the headless subcommands.

pub mod exit;
pub mod score;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::hub::{self, DownloadProgress, HubOptions, ModelSource, DEFAULT_MODEL};
use crate::model::{DTypeChoice, DeviceChoice, LoadOptions, ModelFiles, DEFAULT_MAX_TOKENS};
use crate::model::{ModelError, Setting};
use crate::preference::{parse_axes, parse_weights, Direction};
use crate::scoring::remote::RemoteOptions;
use crate::scoring::LoadError;
use reqwest::Url;

#[derive(Debug, Parser)]
#[command(
    name = "dpa-explorer",
    version,
    about = "Explore the DPA multi-objective reward model (arXiv 2402.18571) from a terminal",
    long_about = "Explore the DPA multi-objective reward model (arXiv 2402.18571) from a terminal.\n\n\
                  With no subcommand, opens the explorer: type a prompt and candidate responses, \
                  see their ten attribute scores, turn the preference dial and watch the weighted \
                  reward and the ranking change."
)]
pub struct Cli {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub direction: DirectionArgs,
    #[command(flatten)]
    pub ui: UiArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Score prompt/response pairs without the UI, as JSON lines.
    Score(score::ScoreArgs),
}

/// Which model, on what, how.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Hub repository id or local model directory.
    #[arg(long, global = true, default_value = DEFAULT_MODEL, value_name = "ID|DIR")]
    pub model: String,
    /// Hub revision (branch, tag or commit).
    #[arg(long, global = true, value_name = "REV")]
    pub revision: Option<String>,
    /// Run a tiny random-weight demo model shipped with dpa-explorer (offline): DPA's ten
    /// attributes, or with `--demo armo` ArmoRM's 19 with its gating. Put it after a
    /// subcommand (`score --demo`), or give its value (`--demo dpa score`).
    #[arg(
        long,
        global = true,
        conflicts_with = "model",
        num_args = 0..=1,
        default_missing_value = "dpa",
        value_name = "MODEL"
    )]
    pub demo: Option<crate::assets::Demo>,
    /// Compute device: auto, cpu, cuda, cuda:N or metal.
    #[arg(long, global = true, default_value = "auto", value_name = "DEVICE")]
    pub device: DeviceChoice,
    /// Weights/compute: f32, bf16, f16, or the quantised q12, q8_0, q4_k and q4_0 (made once,
    /// then kept under the cache directory); auto: bf16 on a GPU, on the CPU the most precise
    /// of those that keep the ranking (f32, q12 where bf16 has no instructions of its own,
    /// bf16, q8_0) that fits in memory.
    #[arg(long, global = true, default_value = "auto", value_name = "DTYPE")]
    pub dtype: DTypeChoice,
    /// Longest input in tokens; longer inputs are truncated from the left, as in training.
    #[arg(long, global = true, default_value_t = DEFAULT_MAX_TOKENS, value_name = "N")]
    pub max_tokens: usize,
    /// Score on a vLLM server serving the model (repeatable; DPA_SERVER takes a comma-separated
    /// list). No weights are loaded here: only the model's tokenizer and config.
    #[arg(
        long = "server",
        global = true,
        value_name = "URL",
        env = "DPA_SERVER",
        value_delimiter = ',',
        value_parser = parse_server
    )]
    pub servers: Vec<Url>,
    /// Sent to the servers as a Bearer token (to them only).
    #[arg(
        long,
        global = true,
        value_name = "KEY",
        env = "VLLM_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
    /// Requests in flight per server (with --server).
    #[arg(long, global = true, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub in_flight: u16,
}

fn parse_server(s: &str) -> Result<Url, String> {
    crate::scoring::remote::parse_server(s)
}

/// The preference direction.
#[derive(Debug, Clone, Args)]
pub struct DirectionArgs {
    /// Direction angle θ in degrees: v = (cos θ, sin θ) over (helpfulness, verbosity).
    #[arg(
        long,
        global = true,
        allow_hyphen_values = true,
        value_name = "DEG",
        conflicts_with = "weights"
    )]
    pub angle: Option<f64>,
    /// Direction as weights over attributes, e.g. `correctness=1,verbosity=-0.5` (normalised).
    #[arg(long, global = true, value_name = "NAME=W,...")]
    pub weights: Option<String>,
    /// The plane θ turns in (and the explorer's charts draw), as two attributes `X,Y`, e.g.
    /// `correctness,verbosity`; default helpfulness × verbosity.
    #[arg(long, global = true, value_name = "X,Y")]
    pub axes: Option<String>,
}

impl DirectionArgs {
    pub fn direction(&self) -> anyhow::Result<Direction> {
        Ok(match (&self.weights, self.angle) {
            (Some(w), _) => Direction::Weights {
                weights: parse_weights(w)?,
            },
            (None, degrees) => Direction::Angle {
                degrees: degrees.unwrap_or(0.0),
                axes: self.axes()?,
            },
        })
    }

    /// The plane's axes by name, when given.
    pub fn axes(&self) -> anyhow::Result<Option<(String, String)>> {
        Ok(self.axes.as_deref().map(parse_axes).transpose()?)
    }
}

/// Options of the explorer.
#[derive(Debug, Clone, Args)]
pub struct UiArgs {
    /// Open this session file (created on save if it does not exist).
    #[arg(long, value_name = "FILE")]
    pub session: Option<PathBuf>,
    /// Write the log here instead of the cache directory.
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,
}

impl ModelArgs {
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            device: self.device,
            dtype: self.dtype,
            max_tokens: self.max_tokens,
        }
    }

    /// How to reach the servers, when `--server` names any.
    pub fn remote(&self) -> Option<RemoteOptions> {
        (!self.servers.is_empty()).then(|| RemoteOptions {
            servers: self.servers.clone(),
            api_key: self.api_key.clone().filter(|k| !k.is_empty()),
            in_flight: usize::from(self.in_flight),
            ..RemoteOptions::default()
        })
    }

    /// What `--model`/`--demo` name.
    pub fn source(&self) -> anyhow::Result<ModelSource> {
        if let Some(demo) = self.demo {
            return Ok(ModelSource::Local(crate::assets::demo_dir(
                &crate::assets::cache_root(),
                demo,
            )?));
        }
        Ok(ModelSource::parse(&self.model, self.revision.as_deref())?)
    }

    /// Whether this names the random-weight demo model.
    pub fn is_demo(&self) -> bool {
        self.demo.is_some()
    }

    /// The model's files on disk, downloading them if needed.
    pub fn files(&self, progress: &dyn Fn(DownloadProgress)) -> anyhow::Result<ModelFiles> {
        let source = self.source()?;
        Ok(hub::resolve(&source, &HubOptions::from_env(), progress)?)
    }
}

/// Sends tracing output to a file (never to the terminal the UI draws on).
pub fn init_logging(
    path: Option<&std::path::Path>,
) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let path = path
        .map(|p| p.to_path_buf())
        .unwrap_or_else(|| crate::assets::cache_root().join("dpa-explorer.log"));
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .ok()?;
    let (writer, guard) = tracing_appender::non_blocking(file);
    let filter = tracing_subscriber::EnvFilter::try_from_env("DPA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init()
        .ok()?;
    Some(guard)
}

/// What to do when the model cannot be loaded, most useful first: shown first in the
/// explorer's panel and after a failed `score`.
pub fn no_model_hint(model: &ModelArgs) -> Vec<String> {
    let hub = HubOptions::from_env();
    let mut lines = vec![
        "dpa-explorer --demo       try it offline (tiny random-weight model)".to_string(),
        "dpa-explorer --model DIR  a local copy (config.json, tokenizer.json, *.safetensors)"
            .to_string(),
        format!("cache: {}", hub.cache_dir.display()),
    ];
    if hub.offline {
        lines.push("HF_HUB_OFFLINE is set: only the cache is used; unset it to download".into());
    } else {
        lines.push(format!(
            "hub {}: HF_ENDPOINT=URL for a mirror, HF_HUB_OFFLINE=1 for the cache only",
            hub.endpoint
        ));
    }
    if model.model == DEFAULT_MODEL && model.demo.is_none() {
        lines.push(format!("{DEFAULT_MODEL} is about 14 GB to download"));
    }
    lines
}

/// The flag a model setting comes from, as the user types it.
pub fn flag(setting: Setting) -> &'static str {
    match setting {
        Setting::MaxTokens => "--max-tokens",
        Setting::DType => "--dtype",
    }
}

/// A load failure with the flag it is about named (the model layer does not know them).
pub fn name_flag(e: LoadError) -> LoadError {
    match e {
        LoadError::Setting { setting, message } => {
            LoadError::Model(format!("{} {message}", flag(setting)))
        }
        other => other,
    }
}

/// As [`name_flag`], for a model error (kept as it is otherwise, for the hint).
pub fn name_model_flag(e: ModelError) -> anyhow::Error {
    match e {
        ModelError::Setting { setting, message } => {
            anyhow::anyhow!("{}: {message}", flag(setting))
        }
        other => anyhow::Error::new(other),
    }
}

/// Whether `error` comes from finding or loading the model (then the hint helps).
pub fn is_model_error(error: &anyhow::Error) -> bool {
    error.chain().any(|c| {
        c.downcast_ref::<hub::HubError>().is_some()
            || c.downcast_ref::<crate::model::ModelError>().is_some()
    })
}
