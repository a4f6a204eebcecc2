//! Requests to the servers: bounded in flight per server, retried with backoff, and moved to
//! the other servers when one fails for good. Runs on its own small async runtime; the
//! results are handed to the caller on the caller's thread, as they arrive.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Client, StatusCode, Url};
use tokio::task::JoinSet;

use super::wire::{self, PoolingRequest};
use super::RemoteOptions;
use crate::scoring::{Job, LoadError, ScoreError};

/// A checked server.
#[derive(Debug, Clone)]
pub struct Server {
    pub url: Url,
    /// The name it serves the model under (sent as `model`).
    pub name: String,
    pub max_model_len: Option<usize>,
}

struct ServerState {
    server: Arc<Server>,
    in_flight: usize,
    /// Set aside until then, with why.
    resting: Option<(Instant, String)>,
}

/// How long a failed server rests before it is tried again (by a later call).
const REST: Duration = Duration::from_secs(30);

/// Why a request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Failure {
    /// No connection, a timeout, a 5xx or 429: the server may come back.
    #[error("{0}")]
    Transient(String),
    /// A 4xx: the server refuses these inputs.
    #[error("{0}")]
    Refused(String),
    /// 401 or 403: the server refuses the client (its key).
    #[error("{0}")]
    Denied(String),
    /// The answer is unusable.
    #[error("{0}")]
    Broken(String),
}

pub struct Dispatch {
    runtime: tokio::runtime::Runtime,
    client: Client,
    auth: Option<HeaderValue>,
    options: RemoteOptions,
    width: usize,
    servers: Vec<ServerState>,
}

impl Dispatch {
    pub fn new(options: &RemoteOptions, width: usize) -> Result<Self, LoadError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| LoadError::Remote(format!("cannot start the client runtime: {e}")))?;
        let client = Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // The key goes to the servers named, never to wherever a redirect points.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("dpa-explorer/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| LoadError::Remote(format!("cannot make an HTTP client: {e}")))?;
        let auth = match &options.api_key {
            None => None,
            Some(key) => {
                let mut v = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                    LoadError::Remote("the API key holds characters a header cannot".into())
                })?;
                v.set_sensitive(true);
                Some(v)
            }
        };
        Ok(Self {
            runtime,
            client,
            auth,
            options: options.clone(),
            width,
            servers: Vec::new(),
        })
    }

    pub fn with_servers(mut self, servers: Vec<Server>) -> Self {
        self.servers = servers
            .into_iter()
            .map(|s| ServerState {
                server: Arc::new(s),
                in_flight: 0,
                resting: None,
            })
            .collect();
        self
    }

    pub fn parallelism(&self) -> usize {
        self.options
            .in_flight
            .saturating_mul(self.servers.len())
            .max(1)
    }

    pub fn set_batch(&mut self, inputs: usize) {
        self.options.batch = inputs.max(1);
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    pub fn set_aside(&self) -> Vec<String> {
        self.servers
            .iter()
            .filter_map(|s| {
                s.resting.as_ref().map(|(_, why)| {
                    format!(
                        "server {} stopped answering ({why}); its work went to the others",
                        s.server.url
                    )
                })
            })
            .collect()
    }

    /// GET `url`, its body bounded.
    pub async fn get(&self, url: &Url) -> Result<Vec<u8>, Failure> {
        let mut req = self.client.get(url.clone()).timeout(self.options.timeout);
        if let Some(a) = &self.auth {
            req = req.header(AUTHORIZATION, a.clone());
        }
        let resp = req.send().await.map_err(transient)?;
        read(resp, wire::answer_limit(64)).await
    }

    /// One pooling request, tried once.
    pub async fn pool(
        &self,
        server: &Server,
        request: &PoolingRequest<'_>,
        inputs: usize,
    ) -> Result<Vec<Vec<f32>>, Failure> {
        let body = serde_json::to_vec(request).map_err(|e| Failure::Broken(e.to_string()))?;
        post(
            &self.client,
            self.auth.clone(),
            &server.url,
            body,
            (inputs, self.width),
            self.options.timeout,
        )
        .await
    }

    /// Scores `jobs` on the servers; see the module's text.
    pub fn score(
        &mut self,
        jobs: &[Job<'_>],
        stop: &dyn Fn() -> bool,
        done: &mut dyn FnMut(usize, Result<Vec<f32>, ScoreError>),
    ) -> Result<(), ScoreError> {
        let now = Instant::now();
        for s in &mut self.servers {
            if s.resting.as_ref().is_some_and(|(until, _)| *until <= now) {
                s.resting = None;
            }
            s.in_flight = 0;
        }
        // Every server may be resting: try them all again rather than fail unasked.
        if self.servers.iter().all(|s| s.resting.is_some()) {
            for s in &mut self.servers {
                s.resting = None;
            }
        }
        let limit = self
            .servers
            .iter()
            .filter_map(|s| s.server.max_model_len)
            .min();
        let mut queue: VecDeque<Vec<usize>> = VecDeque::new();
        let mut chunk = Vec::new();
        for (j, job) in jobs.iter().enumerate() {
            if job.ids.is_empty() {
                done(
                    j,
                    Err(ScoreError::Input("cannot score an empty input".into())),
                );
            } else if let Some(n) = limit.filter(|&n| job.ids.len() > n) {
                done(
                    j,
                    Err(ScoreError::Input(format!(
                        "{} tokens exceed the server's limit of {n} (its --max-model-len); --max-tokens {n} cuts inputs from the left to fit",
                        job.ids.len()
                    ))),
                );
            } else {
                chunk.push(j);
                if chunk.len() == self.options.batch {
                    queue.push_back(std::mem::take(&mut chunk));
                }
            }
        }
        if !chunk.is_empty() {
            queue.push_back(chunk);
        }
        let owned: Vec<Vec<u32>> = jobs.iter().map(|j| j.ids.to_vec()).collect();
        let runtime = &self.runtime;
        let servers = &mut self.servers;
        let (client, auth, options, width) = (&self.client, &self.auth, &self.options, self.width);
        runtime.block_on(async move {
            let mut set: JoinSet<Answer> = JoinSet::new();
            loop {
                // Fill every server up to its bound, least busy first.
                while !queue.is_empty() {
                    let Some(k) = servers
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| s.resting.is_none() && s.in_flight < options.in_flight)
                        .min_by_key(|(_, s)| s.in_flight)
                        .map(|(k, _)| k)
                    else {
                        break;
                    };
                    let chunk = queue.pop_front().unwrap_or_default();
                    let s = &mut servers[k];
                    s.in_flight += 1;
                    let ids: Vec<&[u32]> = chunk.iter().map(|&j| owned[j].as_slice()).collect();
                    let body = serde_json::to_vec(&PoolingRequest {
                        model: Some(&s.server.name),
                        input: &ids,
                        use_activation: false,
                    })
                    .unwrap_or_default();
                    let (client, auth, server) = (client.clone(), auth.clone(), s.server.clone());
                    let (attempts, backoff, timeout) =
                        (options.attempts, options.backoff, options.timeout);
                    set.spawn(async move {
                        let n = chunk.len();
                        let result = with_retries(attempts, backoff, || {
                            post(
                                &client,
                                auth.clone(),
                                &server.url,
                                body.clone(),
                                (n, width),
                                timeout,
                            )
                        })
                        .await;
                        (k, chunk, result)
                    });
                }
                if set.is_empty() {
                    if queue.is_empty() {
                        return Ok(());
                    }
                    let why: Vec<String> = servers
                        .iter()
                        .filter_map(|s| {
                            s.resting
                                .as_ref()
                                .map(|(_, why)| format!("{}: {why}", s.server.url))
                        })
                        .collect();
                    return Err(ScoreError::Remote(format!(
                        "no server is left: {}",
                        why.join("; ")
                    )));
                }
                let joined = tokio::select! {
                    j = set.join_next() => j,
                    _ = tokio::time::sleep(Duration::from_millis(20)) => None,
                };
                if stop() {
                    set.abort_all();
                    return Err(ScoreError::Cancelled);
                }
                let Some(joined) = joined else { continue };
                let (k, chunk, result) = match joined {
                    Ok(r) => r,
                    // A request task cannot panic but by a bug; its work is lost with it.
                    Err(e) => return Err(ScoreError::Remote(format!("a request failed: {e}"))),
                };
                servers[k].in_flight = servers[k].in_flight.saturating_sub(1);
                match result {
                    Ok(rows) => {
                        for (j, row) in chunk.into_iter().zip(rows) {
                            done(j, Ok(row));
                        }
                    }
                    Err(Failure::Refused(why)) if chunk.len() > 1 => {
                        // Which input it refuses: ask for each alone.
                        tracing::debug!(%why, "a batch was refused; sending its inputs one by one");
                        for j in chunk.into_iter().rev() {
                            queue.push_front(vec![j]);
                        }
                    }
                    Err(Failure::Refused(why)) => {
                        let url = &servers[k].server.url;
                        for j in chunk {
                            done(
                                j,
                                Err(ScoreError::Remote(format!(
                                    "server {url} refused this input: {why}"
                                ))),
                            );
                        }
                    }
                    Err(failure) => {
                        set_aside(&mut servers[k], failure.to_string());
                        queue.push_front(chunk);
                    }
                }
            }
        })
    }
}

/// A request's answer: the server it went to, its inputs, and their rows.
type Answer = (usize, Vec<usize>, Result<Vec<Vec<f32>>, Failure>);

fn set_aside(s: &mut ServerState, why: String) {
    tracing::warn!(server = %s.server.url, %why, "server set aside");
    s.resting = Some((Instant::now() + REST, why));
}

/// Tries `f` up to `attempts` times while it fails transiently, waiting `backoff`, then twice
/// as long, between tries.
async fn with_retries<F, Fut>(
    attempts: u32,
    backoff: Duration,
    f: F,
) -> Result<Vec<Vec<f32>>, Failure>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<Vec<f32>>, Failure>>,
{
    let mut wait = backoff;
    let mut tries = 0;
    loop {
        tries += 1;
        match f().await {
            Err(Failure::Transient(why)) if tries < attempts.max(1) => {
                tracing::info!(%why, tries, "retrying a request");
                tokio::time::sleep(wait).await;
                wait = wait.saturating_mul(2);
            }
            other => return other,
        }
    }
}

async fn post(
    client: &Client,
    auth: Option<HeaderValue>,
    url: &Url,
    body: Vec<u8>,
    (inputs, width): (usize, usize),
    timeout: Duration,
) -> Result<Vec<Vec<f32>>, Failure> {
    let target = url
        .join("pooling")
        .map_err(|e| Failure::Broken(e.to_string()))?;
    let mut req = client
        .post(target)
        .timeout(timeout)
        .header(CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(a) = auth {
        req = req.header(AUTHORIZATION, a);
    }
    let resp = req.send().await.map_err(transient)?;
    let body = read(resp, wire::answer_limit(inputs)).await?;
    wire::rows(&body, inputs, width).map_err(Failure::Broken)
}

fn transient(e: reqwest::Error) -> Failure {
    Failure::Transient(if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else {
        e.to_string()
    })
}

/// The body of a successful answer, at most `limit` bytes; a failure status as a `Failure`.
async fn read(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, Failure> {
    let status = resp.status();
    if let Some(len) = resp.content_length().filter(|&n| n > limit as u64) {
        return Err(Failure::Broken(format!(
            "the answer is {len} bytes, more than the {limit} expected"
        )));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(transient)? {
        if body.len() + chunk.len() > limit {
            return Err(Failure::Broken(format!(
                "the answer is longer than the {limit} bytes expected"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    if status.is_success() {
        return Ok(body);
    }
    let message = format!("HTTP {}: {}", status.as_u16(), wire::error_message(&body));
    Err(
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            Failure::Transient(message)
        } else if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            Failure::Denied(format!("{message} (check --api-key / VLLM_API_KEY)"))
        } else if status.is_redirection() {
            Failure::Broken(format!("{message} (redirects are not followed)"))
        } else {
            Failure::Refused(message)
        },
    )
}
