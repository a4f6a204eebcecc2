//! A stand-in backend for tests and benchmarks: scores computed from the text, with optional
//! delays, panics and a record of what it was asked. It reads the text back from the ids with
//! a real tokenizer, so it goes through the same pipeline as a model.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::model::input::{TEMPLATE_HEAD, TEMPLATE_MIDDLE, TEMPLATE_TAIL};
use crate::model::{InputEncoder, ModelInfo, DEFAULT_MAX_TOKENS};

use super::{Backend, Job, Pipeline, ScoreError};

/// Scores from (prompt, response).
pub type ScoreFn = Box<dyn Fn(&str, &str) -> Vec<f32> + Send>;

/// The stand-in; build it with [`FakeBackend::new`], set its public fields, then
/// [`FakeBackend::pipeline`].
pub struct FakeBackend {
    pub info: ModelInfo,
    pub scores: ScoreFn,
    /// Time per input, checking `stop` as it waits.
    pub delay: Option<Duration>,
    /// Panics when asked to score this response.
    pub panic_on: Option<String>,
    /// The responses scored, in order.
    pub calls: Arc<Mutex<Vec<String>>>,
    /// The slots forgotten, in order.
    pub forgotten: Arc<Mutex<Vec<u64>>>,
    pub warnings: Vec<String>,
    encoder: InputEncoder,
}

/// The tokenizer of the test fixtures (Mistral's), reading up to `max_tokens`.
pub fn encoder(max_tokens: usize) -> InputEncoder {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-mha/tokenizer.json");
    InputEncoder::from_file(&path, Some(1), max_tokens).expect("the fixture tokenizer loads")
}

impl FakeBackend {
    pub fn new(labels: &[&str], scores: impl Fn(&str, &str) -> Vec<f32> + Send + 'static) -> Self {
        let encoder = encoder(DEFAULT_MAX_TOKENS);
        Self {
            info: ModelInfo {
                labels: labels.iter().map(|l| l.to_string()).collect(),
                gating: false,
                device: "cpu".into(),
                dtype: "f32".into(),
                stored_dtype: "bf16".into(),
                parameters: 1,
                layers: 1,
                max_tokens: DEFAULT_MAX_TOKENS,
                context: 32_768,
            },
            scores: Box::new(scores),
            delay: None,
            panic_on: None,
            calls: Arc::default(),
            forgotten: Arc::default(),
            warnings: Vec::new(),
            encoder,
        }
    }

    /// The pipeline over this backend, with the same tokenizer.
    pub fn pipeline(self) -> Pipeline {
        let encoder = self.encoder.clone();
        Pipeline::new(encoder, Box::new(self))
    }

    /// The prompt and response an input was made from.
    fn texts(&self, ids: &[u32]) -> (String, String) {
        let text = self.encoder.decode(ids).unwrap_or_default();
        let body = text.strip_prefix(TEMPLATE_HEAD).unwrap_or(&text);
        let body = body.strip_suffix(TEMPLATE_TAIL).unwrap_or(body);
        match body.split_once(TEMPLATE_MIDDLE) {
            Some((p, r)) => (p.to_string(), r.to_string()),
            None => (String::new(), body.to_string()),
        }
    }
}

impl Backend for FakeBackend {
    fn info(&self) -> ModelInfo {
        self.info.clone()
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    fn score(
        &mut self,
        jobs: &[Job<'_>],
        stop: &dyn Fn() -> bool,
        done: &mut dyn FnMut(usize, Result<Vec<f32>, ScoreError>),
    ) -> Result<(), ScoreError> {
        for (j, job) in jobs.iter().enumerate() {
            if let Some(d) = self.delay {
                let end = Instant::now() + d;
                while Instant::now() < end {
                    if stop() {
                        return Err(ScoreError::Cancelled);
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            if stop() {
                return Err(ScoreError::Cancelled);
            }
            let (prompt, response) = self.texts(job.ids);
            if self.panic_on.as_deref() == Some(response.as_str()) {
                panic!("boom");
            }
            let row = (self.scores)(&prompt, &response);
            self.calls.lock().unwrap().push(response);
            done(j, Ok(row));
        }
        Ok(())
    }

    fn forget(&mut self, slot: u64) {
        self.forgotten.lock().unwrap().push(slot);
    }
}
