//! The remote backend: the model runs in vLLM servers (`--server URL`, repeatable), and this
//! client keeps them busy. The pipeline tokenises locally (the exact template, BOS and left
//! truncation) and the ids go to `POST /pooling` with `"use_activation": false`; vLLM's own
//! truncation drops BOS or keeps the wrong end, so it is never used.
//!
//! On connect every server is asked what it serves (`GET /v1/models`) and probed with two
//! inputs: a server that serves another model, returns another number of outputs or applies
//! an activation (a softmax makes the scores sum to 1) is refused by name. While scoring,
//! requests of a few inputs each go to the servers with a bounded number in flight per server;
//! connection errors and 5xx answers are retried with backoff, a server that keeps failing is
//! set aside and its work goes to the others, and a request fails only when no server is left.

mod dispatch;
pub mod wire;

use std::time::{Duration, Instant};

use reqwest::Url;

use super::{Backend, Job, LoadError, Pipeline, ScoreError};
use crate::model::{InputEncoder, ModelInfo};
use dispatch::{Dispatch, Server};
use wire::{ModelList, PoolingRequest};

/// How the client talks to the servers.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    pub servers: Vec<Url>,
    /// Sent as a Bearer token to these servers only (never across a redirect).
    pub api_key: Option<String>,
    /// Inputs per request.
    pub batch: usize,
    /// Requests in flight per server.
    pub in_flight: usize,
    /// How long one request may take before it counts as a failure.
    pub timeout: Duration,
    /// Tries of a request on one server before that server is set aside.
    pub attempts: u32,
    /// First wait between tries (doubling).
    pub backoff: Duration,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            api_key: None,
            batch: 16,
            in_flight: 16,
            timeout: Duration::from_secs(300),
            attempts: 3,
            backoff: Duration::from_millis(200),
        }
    }
}

/// Reads a `--server` value: an http(s) URL with nothing after the host but a path prefix.
pub fn parse_server(s: &str) -> Result<Url, String> {
    let url = Url::parse(s.trim()).map_err(|e| format!("`{s}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{s}`: a server is an http:// or https:// URL"));
    }
    if url.host_str().is_none() || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "`{s}`: give the server's base URL, e.g. http://127.0.0.1:8000"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "`{s}`: put credentials in --api-key (VLLM_API_KEY), not in the URL"
        ));
    }
    // A path prefix (a proxy's) is a directory: `pooling` and `v1/models` go under it.
    let mut url = url;
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// The pipeline over servers that serve `model` (a hub id or directory, as given to `--model`),
/// whose outputs are `info.labels`. Checks every server first (see the module's text).
pub fn pipeline(
    encoder: InputEncoder,
    options: RemoteOptions,
    model: &str,
    info: ModelInfo,
) -> Result<Pipeline, LoadError> {
    let probe = [
        encoder.encode("What is 2 + 2?", "4.")?.ids,
        encoder
            .encode("Name a colour.", "Blue, like a clear sky.")?
            .ids,
    ];
    let backend = RemoteBackend::connect(options, model, info, &probe)?;
    Ok(Pipeline::new(encoder, Box::new(backend)))
}

/// Scores through vLLM servers.
pub struct RemoteBackend {
    dispatch: Dispatch,
    info: ModelInfo,
    warnings: Vec<String>,
}

impl RemoteBackend {
    /// Asks every server what it serves and probes it with `probe` (token ids of two inputs).
    pub fn connect(
        options: RemoteOptions,
        model: &str,
        mut info: ModelInfo,
        probe: &[Vec<u32>],
    ) -> Result<Self, LoadError> {
        if options.servers.is_empty() {
            return Err(LoadError::Remote("no server given".into()));
        }
        let dispatch = Dispatch::new(&options, info.labels.len())?;
        let mut servers = Vec::new();
        let mut warnings = Vec::new();
        let mut unreachable = Vec::new();
        for url in &options.servers {
            match dispatch.block_on(check(&dispatch, url, model, probe)) {
                Ok(server) => servers.push(server),
                Err(Check::Unreachable(why)) => unreachable.push(format!("{url}: {why}")),
                Err(Check::Refused(why)) => {
                    return Err(LoadError::Remote(format!("server {url} {why}")))
                }
            }
        }
        if servers.is_empty() {
            return Err(LoadError::Remote(format!(
                "no server answered: {}",
                unreachable.join("; ")
            )));
        }
        for u in &unreachable {
            warnings.push(format!("server {u} (left out)"));
        }
        let limit = servers
            .iter()
            .filter_map(|s| s.max_model_len)
            .min()
            .unwrap_or(usize::MAX);
        if info.max_tokens > limit {
            warnings.push(format!(
                "the server takes at most {limit} tokens (its --max-model-len) and inputs are cut at {}: longer inputs fail; --max-tokens {limit} cuts them to fit",
                info.max_tokens
            ));
        }
        info.device = format!(
            "remote {}",
            servers
                .iter()
                .map(|s| s.url.as_str().trim_end_matches('/'))
                .collect::<Vec<_>>()
                .join(", ")
        );
        info.dtype = "server".into();
        if limit != usize::MAX {
            info.context = limit;
        }
        let dispatch = dispatch.with_servers(servers);
        Ok(Self {
            dispatch,
            info,
            warnings,
        })
    }

    /// Servers set aside during the last calls, with why.
    pub fn set_aside(&self) -> Vec<String> {
        self.dispatch.set_aside()
    }
}

enum Check {
    /// Not reachable now: left out with a warning.
    Unreachable(String),
    /// Reachable but wrong: the whole start is refused.
    Refused(String),
}

/// What `url` serves, checked against `model` and probed.
async fn check(
    dispatch: &Dispatch,
    url: &Url,
    model: &str,
    probe: &[Vec<u32>],
) -> Result<Server, Check> {
    let models_url = url
        .join("v1/models")
        .map_err(|e| Check::Refused(format!("has no usable URL: {e}")))?;
    let body = dispatch.get(&models_url).await.map_err(|e| match e {
        dispatch::Failure::Transient(why) => Check::Unreachable(why),
        other => Check::Refused(format!("answers GET /v1/models with {other}")),
    })?;
    let list: ModelList = serde_json::from_slice(&body)
        .map_err(|e| Check::Refused(format!("does not answer GET /v1/models as vLLM does: {e}")))?;
    let Some(served) = list.data.iter().find(|m| wire::serves(m, model)) else {
        let names: Vec<String> = list.data.iter().map(|m| format!("`{}`", m.id)).collect();
        return Err(Check::Refused(format!(
            "serves {}, not `{model}`",
            if names.is_empty() {
                "no model".to_string()
            } else {
                names.join(", ")
            }
        )));
    };
    let server = Server {
        url: url.clone(),
        name: served.id.clone(),
        max_model_len: served.max_model_len.and_then(|n| usize::try_from(n).ok()),
    };
    let ids: Vec<&[u32]> = probe.iter().map(Vec::as_slice).collect();
    let request = PoolingRequest {
        model: Some(&server.name),
        input: &ids,
        use_activation: false,
    };
    let started = Instant::now();
    let rows = dispatch
        .pool(&server, &request, probe.len())
        .await
        .map_err(|e| Check::Refused(format!("fails a probe request: {e}")))?;
    tracing::info!(server = %url, model = %served.id, elapsed = ?started.elapsed(), "server checked");
    if rows.iter().flatten().any(|v| !v.is_finite()) {
        return Err(Check::Refused("returns non-finite scores".into()));
    }
    if wire::looks_like_softmax(&rows) {
        return Err(Check::Refused(
            "applies an activation: its outputs are probabilities that sum to 1, not raw scores (serve the model with \"problem_type\": \"regression\", or a vLLM that honours \"use_activation\": false)".into(),
        ));
    }
    Ok(server)
}

impl Backend for RemoteBackend {
    fn info(&self) -> ModelInfo {
        self.info.clone()
    }

    fn warnings(&self) -> Vec<String> {
        let mut w = self.warnings.clone();
        w.extend(self.set_aside());
        w
    }

    fn score(
        &mut self,
        jobs: &[Job<'_>],
        stop: &dyn Fn() -> bool,
        done: &mut dyn FnMut(usize, Result<Vec<f32>, ScoreError>),
    ) -> Result<(), ScoreError> {
        self.dispatch.score(jobs, stop, done)
    }

    fn trajectory_note(&self) -> Option<String> {
        Some("one request per prefix to the server: about one full pass per point".into())
    }

    fn set_batch(&mut self, inputs: usize) {
        self.dispatch.set_batch(inputs);
    }

    fn parallelism(&self) -> usize {
        self.dispatch.parallelism()
    }
}
