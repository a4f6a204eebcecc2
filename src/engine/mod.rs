//! The scoring engine: owns the model on its own OS thread, takes score requests, sends back
//! events. The newest request wins: an older one still queued is dropped and one in flight is
//! abandoned between layers. Results are cached by input text.
//!
//! The UI talks only to [`Engine`]; what actually scores is a [`Pipeline`] over a backend, so
//! tests can drive the engine with a stand-in backend.

mod cache;
mod load;
pub mod priority;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use cache::ScoreCache;
pub use load::{model_loader, remote_loader, remote_pipeline};

use crate::model::ModelInfo;
use crate::scoring::{Every, Input, LoadError, Pipeline, Point, ScoreError, Scored};

/// Identifies a request; later requests have larger ids.
pub type RequestId = u64;

/// One prompt/response pair to score. `slot` names the candidate it belongs to, so that a
/// backend may reuse work from that candidate's previous input.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScoreItem {
    pub slot: u64,
    pub prompt: String,
    pub response: String,
}

impl ScoreItem {
    /// The pipeline's input for this item, its slot keeping the candidate's cache.
    pub fn input(&self) -> Input<'_> {
        Input {
            prompt: &self.prompt,
            response: &self.response,
            slot: Some(self.slot),
        }
    }
}

/// Where loading stands, for progress displays.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadStage {
    /// Downloading `file` (`index` of `files`), `bytes` of `total` so far.
    Downloading {
        file: String,
        index: usize,
        files: usize,
        bytes: u64,
        total: u64,
    },
    /// Reading weights into memory.
    Loading { what: String },
    /// `layer` of `layers` decoder layers have their weights in, read or made as `phase` says.
    Layers {
        phase: crate::model::LoadPhase,
        layer: usize,
        layers: usize,
    },
}

/// What the engine reports.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    Progress(LoadStage),
    Ready {
        info: ModelInfo,
        warnings: Vec<String>,
    },
    LoadFailed {
        error: LoadError,
    },
    /// What a trajectory costs with the loaded backend, when the user should know (e.g. one
    /// request per prefix to a server); sent right after `Ready`, only by such a backend.
    TrajectoryNote(String),
    /// The kept weights a local model uses in place are being checked (`checked` of `total`
    /// bytes); no score comes before the check is `done`. Sent after `Ready`, a few times a
    /// second, only while such a check runs.
    WeightCheck {
        checked: u64,
        total: u64,
        done: bool,
    },
    /// A request began computing (after any cache hits were answered).
    Started {
        request: RequestId,
        items: usize,
    },
    /// One item of a request is done.
    Scored {
        request: RequestId,
        item: ScoreItem,
        result: Result<Scored, ScoreError>,
        cached: bool,
        elapsed: Duration,
    },
    /// Every item of the request has been answered.
    Finished {
        request: RequestId,
        elapsed: Duration,
    },
    /// The prefix scores of one response (answer to [`Engine::trajectory`]).
    Trajectory {
        request: RequestId,
        slot: u64,
        result: Result<Vec<Point>, ScoreError>,
    },
    /// The request was superseded by a newer one before it finished.
    Superseded {
        request: RequestId,
    },
}

/// Builds the pipeline on the engine thread, reporting progress as it goes.
pub type Loader = Box<dyn FnOnce(&dyn Fn(LoadStage)) -> Result<Pipeline, LoadError> + Send>;

/// How the engine thread computes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineOptions {
    /// Scores kept by input text.
    pub cache_capacity: usize,
    /// Compute threads; 0 means one per core.
    pub threads: usize,
    /// How many nice levels below the rest of the process the compute threads run (0 leaves
    /// them alone). With every core busy computing, the UI thread then gets a core as soon as
    /// it wakes instead of waiting for a time slice to end (see BENCHMARKS.md).
    pub nice: i32,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            cache_capacity: 256,
            threads: 0,
            nice: DEFAULT_NICE,
        }
    }
}

/// The compute threads' default priority drop, measured to keep frames on time while a pass
/// runs on every core.
pub const DEFAULT_NICE: i32 = 10;

enum Command {
    Score(RequestId, Vec<ScoreItem>),
    Trajectory {
        request: RequestId,
        slot: u64,
        prompt: String,
        response: String,
        every: Every,
    },
    Forget(u64),
    Shutdown,
}

impl Command {
    /// The request a command answers, if it is one.
    fn request(&self) -> Option<RequestId> {
        match self {
            Command::Score(id, _) => Some(*id),
            Command::Trajectory { request, .. } => Some(*request),
            Command::Forget(_) | Command::Shutdown => None,
        }
    }
}

/// Handle to the engine thread. Dropping it stops the thread.
pub struct Engine {
    tx: mpsc::Sender<Command>,
    latest: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Engine {
    /// Starts the engine thread: it runs `loader`, then answers requests; every event goes to
    /// `events` (called on the engine thread, and for `WeightCheck` on its reporter's, one
    /// call at a time).
    pub fn spawn(
        loader: Loader,
        cache_capacity: usize,
        events: impl Fn(EngineEvent) + Send + 'static,
    ) -> Self {
        let options = EngineOptions {
            cache_capacity,
            ..EngineOptions::default()
        };
        Self::spawn_with(loader, options, events)
    }

    /// As [`Engine::spawn`], with every option.
    pub fn spawn_with(
        loader: Loader,
        options: EngineOptions,
        events: impl Fn(EngineEvent) + Send + 'static,
    ) -> Self {
        // Shared with the thread that reports the weight check while the engine computes.
        let events = std::sync::Mutex::new(events);
        let events: Events =
            Arc::new(move |e| (events.lock().unwrap_or_else(|p| p.into_inner()))(e));
        let (tx, rx) = mpsc::channel();
        let latest = Arc::new(AtomicU64::new(0));
        let latest_in = latest.clone();
        let thread = std::thread::Builder::new()
            .name("dpa-engine".into())
            .spawn(move || {
                let capacity = options.cache_capacity;
                // candle's kernels and gemm run on the rayon pool they are called from: run
                // the whole engine inside a pool of lowered-priority threads.
                match priority::compute_pool(options.threads, options.nice) {
                    Ok(pool) => pool.install(move || run(loader, rx, latest_in, capacity, events)),
                    Err(error) => {
                        tracing::warn!(%error, "no compute pool; scoring at normal priority");
                        run(loader, rx, latest_in, capacity, events)
                    }
                }
            })
            .ok();
        Self { tx, latest, thread }
    }

    /// Asks for `items` to be scored; supersedes every earlier request.
    pub fn score(&self, items: Vec<ScoreItem>) -> RequestId {
        let id = self.latest.fetch_add(1, Ordering::SeqCst) + 1;
        // A send fails only when the engine thread is gone; the caller sees no events then.
        let _ = self.tx.send(Command::Score(id, items));
        id
    }

    /// Asks for the prefix scores of `response` (the candidate of `slot`), cut at every
    /// `every` boundary; answered by one [`EngineEvent::Trajectory`]. Like a score request,
    /// it supersedes every earlier request and is superseded by any later one.
    pub fn trajectory(
        &self,
        slot: u64,
        prompt: String,
        response: String,
        every: Every,
    ) -> RequestId {
        let request = self.latest.fetch_add(1, Ordering::SeqCst) + 1;
        let _ = self.tx.send(Command::Trajectory {
            request,
            slot,
            prompt,
            response,
            every,
        });
        request
    }

    /// Frees what the engine keeps for a candidate that was deleted.
    pub fn forget(&self, slot: u64) {
        let _ = self.tx.send(Command::Forget(slot));
    }

    /// The id of the newest request made so far.
    pub fn latest(&self) -> RequestId {
        self.latest.load(Ordering::SeqCst)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Make any pass in flight stop at its next layer, then let the thread finish.
        self.latest.fetch_add(1, Ordering::SeqCst);
        let _ = self.tx.send(Command::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Where the engine's events go, from the engine thread and the weight check's reporter.
type Events = Arc<dyn Fn(EngineEvent) + Send + Sync>;

/// Reports the background check of the kept weights from a thread of its own (the engine
/// thread may be inside a pass that waits for it), until the check ends.
fn report_weight_check(check: crate::model::integrity::Integrity, events: Events) {
    let report = move || loop {
        let done = check.wait_for(Duration::from_millis(250)).is_some();
        let (checked, total) = check.progress();
        events(EngineEvent::WeightCheck {
            checked,
            total,
            done,
        });
        if done {
            return;
        }
    };
    // Without a thread the check still runs; only its progress goes unseen.
    let _ = std::thread::Builder::new()
        .name("weight-check-report".into())
        .spawn(report);
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

fn run(
    loader: Loader,
    rx: mpsc::Receiver<Command>,
    latest: Arc<AtomicU64>,
    cache_capacity: usize,
    shared: Events,
) {
    let events: &dyn Fn(EngineEvent) = &*shared;
    let progress = |s: LoadStage| events(EngineEvent::Progress(s));
    // A panic while loading or scoring arrives as a failure, never as a dead thread.
    let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| loader(&progress)))
        .unwrap_or_else(|p| Err(LoadError::Panicked(panic_message(&*p))));
    let mut backend = match loaded {
        Ok(b) => {
            events(EngineEvent::Ready {
                info: b.info(),
                warnings: b.warnings(),
            });
            if let Some(note) = b.backend().trajectory_note() {
                events(EngineEvent::TrajectoryNote(note));
            }
            if let Some(check) = b.weight_check() {
                report_weight_check(check, shared.clone());
            }
            Some(b)
        }
        Err(error) => {
            tracing::error!(%error, "model failed to load");
            events(EngineEvent::LoadFailed { error });
            None
        }
    };
    let mut cache = ScoreCache::new(cache_capacity);
    while let Ok(cmd) = rx.recv() {
        // Only the newest queued request matters; every queued `Forget` is applied.
        let mut next = None;
        for c in std::iter::once(cmd).chain(std::iter::from_fn(|| rx.try_recv().ok())) {
            match c {
                Command::Forget(slot) => {
                    if let Some(b) = backend.as_mut() {
                        b.backend_mut().forget(slot);
                    }
                }
                Command::Shutdown => return,
                request => {
                    // A request replaced before it started is answered as superseded, so
                    // that no one waits on it.
                    if let Some(id) = next.replace(request).as_ref().and_then(Command::request) {
                        events(EngineEvent::Superseded { request: id });
                    }
                }
            }
        }
        let (id, items) = match next {
            Some(Command::Score(id, items)) => (id, items),
            Some(Command::Trajectory {
                request,
                slot,
                prompt,
                response,
                every,
            }) => {
                trajectory(
                    backend.as_mut(),
                    &latest,
                    (request, slot),
                    (&prompt, &response, every),
                    events,
                );
                continue;
            }
            _ => continue,
        };
        if latest.load(Ordering::SeqCst) != id {
            events(EngineEvent::Superseded { request: id });
            continue;
        }
        let started = Instant::now();
        let Some(b) = backend.as_mut() else {
            for item in items {
                events(EngineEvent::Scored {
                    request: id,
                    item,
                    result: Err(ScoreError::NotLoaded),
                    cached: false,
                    elapsed: Duration::ZERO,
                });
            }
            events(EngineEvent::Finished {
                request: id,
                elapsed: started.elapsed(),
            });
            continue;
        };
        let mut todo = Vec::new();
        for item in items {
            match cache.get(&item.prompt, &item.response) {
                Some(scored) => events(EngineEvent::Scored {
                    request: id,
                    item,
                    result: Ok(scored),
                    cached: true,
                    elapsed: Duration::ZERO,
                }),
                None => todo.push(item),
            }
        }
        if !todo.is_empty() {
            events(EngineEvent::Started {
                request: id,
                items: todo.len(),
            });
        }
        let stop = || latest.load(Ordering::SeqCst) != id;
        let mut answered = vec![false; todo.len()];
        let mut t0 = Instant::now();
        let inputs: Vec<Result<Input, ScoreError>> =
            todo.iter().map(|item| Ok(item.input())).collect();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            b.score(&inputs, &stop, &mut |i, result| {
                answered[i] = true;
                if let Ok(s) = &result {
                    cache.put(&todo[i].prompt, &todo[i].response, s.clone());
                }
                events(EngineEvent::Scored {
                    request: id,
                    item: todo[i].clone(),
                    result,
                    cached: false,
                    elapsed: t0.elapsed(),
                });
                t0 = Instant::now();
            })
        }));
        tracing::debug!(cache_bytes = b.backend().cache_bytes(), "request done");
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(ScoreError::Cancelled)) => {
                events(EngineEvent::Superseded { request: id });
                continue;
            }
            Ok(Err(e)) => Some(e),
            Err(p) => Some(ScoreError::Panicked(panic_message(&*p))),
        };
        if let Some(error) = failure {
            tracing::error!(%error, "scoring failed");
            for (item, _) in todo.iter().zip(&answered).filter(|(_, a)| !**a) {
                events(EngineEvent::Scored {
                    request: id,
                    item: item.clone(),
                    result: Err(error.clone()),
                    cached: false,
                    elapsed: Duration::ZERO,
                });
            }
        }
        events(EngineEvent::Finished {
            request: id,
            elapsed: started.elapsed(),
        });
    }
}

/// Answers one trajectory request, unless a newer request came first or comes part way.
fn trajectory(
    backend: Option<&mut Pipeline>,
    latest: &AtomicU64,
    (request, slot): (RequestId, u64),
    (prompt, response, every): (&str, &str, Every),
    events: &dyn Fn(EngineEvent),
) {
    if latest.load(Ordering::SeqCst) != request {
        events(EngineEvent::Superseded { request });
        return;
    }
    let Some(b) = backend else {
        events(EngineEvent::Trajectory {
            request,
            slot,
            result: Err(ScoreError::NotLoaded),
        });
        return;
    };
    let stop = || latest.load(Ordering::SeqCst) != request;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        b.trajectory(prompt, response, every, &stop)
    }));
    let result = match outcome {
        Ok(Err(ScoreError::Cancelled)) => {
            events(EngineEvent::Superseded { request });
            return;
        }
        Ok(result) => result,
        Err(p) => Err(ScoreError::Panicked(panic_message(&*p))),
    };
    events(EngineEvent::Trajectory {
        request,
        slot,
        result,
    });
}

#[cfg(test)]
mod tests;
