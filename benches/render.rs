//! One full frame of the explorer at 200×60 into ratatui's TestBackend: layout, every widget,
//! and the terminal's diff against the previous frame.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use dpa_explorer::engine::{EngineEvent, RequestId, ScoreItem};
use dpa_explorer::model::{ModelInfo, DPA_LABELS};
use dpa_explorer::preference::Direction;
use dpa_explorer::scoring::Scored;
use dpa_explorer::tui::app::{Action, App, AppConfig, Event, Paths, Scorer, View};
use dpa_explorer::tui::view::view;

struct NoScorer;

impl Scorer for NoScorer {
    fn score(&mut self, _items: Vec<ScoreItem>) -> RequestId {
        1
    }
}

/// A prompt, four scored candidates and the dial at θ = 15°.
fn scene() -> App {
    let config = AppConfig {
        model_name: "RLHFlow/RewardModel-Mistral-7B-for-DPA-v1".into(),
        demo: false,
        direction: Direction::angle(15.0),
        axes: None,
        device: "cpu".into(),
        dtype: "f32".into(),
        paths: Paths::default(),
    };
    let mut app = App::new(config, Box::new(NoScorer));
    let now = Instant::now();
    let labels: Vec<String> = DPA_LABELS.iter().map(|s| s.to_string()).collect();
    app.handle(
        Event::Engine(EngineEvent::Ready {
            info: ModelInfo {
                labels,
                gating: false,
                device: "cpu".into(),
                dtype: "f32".into(),
                stored_dtype: "bf16".into(),
                parameters: 7_110_000_000,
                layers: 32,
                max_tokens: 4096,
                context: 32768,
            },
            warnings: vec![],
        }),
        now,
    );
    let prompt = "What are some synonyms for the word \"beautiful\"?";
    let responses: Vec<String> = [
        "Nicely, Beautifully, Handsome, Stunning, Wonderful, Gorgeous, Pretty, Stunning, Elegant",
        "Some synonyms for \"beautiful\" are: attractive, gorgeous, lovely, stunning, pretty, \
         exquisite, elegant and graceful. Each has its own shade of meaning.",
        "Pretty.",
        "Lovely, gorgeous, stunning.",
    ]
    .map(String::from)
    .to_vec();
    app.set_texts(prompt, &responses);
    let scores = [
        [
            68.99, 69.63, 76.23, 33.49, 35.85, 63.83, 55.59, 68.72, 59.55, 46.47,
        ],
        [
            72.10, 70.02, 74.81, 45.30, 61.22, 66.40, 60.18, 70.33, 61.02, 55.90,
        ],
        [
            40.50, 52.11, 70.90, 12.05, 8.40, 35.20, 30.77, 60.12, 55.81, 20.64,
        ],
        [
            60.33, 64.90, 73.12, 25.61, 22.47, 55.03, 50.40, 66.00, 58.70, 40.31,
        ],
    ];
    for (i, s) in scores.iter().enumerate() {
        let item = ScoreItem {
            slot: app.candidates[i].slot,
            prompt: prompt.into(),
            response: responses[i].clone(),
        };
        app.handle(
            Event::Engine(EngineEvent::Scored {
                request: 1,
                item,
                result: Ok(Scored {
                    gating: None,
                    tokens: 100 + i,
                    truncated: false,
                    scores: s.to_vec(),
                    warnings: vec![],
                }),
                cached: false,
                elapsed: Duration::from_millis(850),
            }),
            now,
        );
    }
    app.size = (200, 60);
    app
}

fn render(c: &mut Criterion) {
    for v in [View::Scatter, View::Sweep] {
        let mut app = scene();
        app.apply(Action::SetView(v), Instant::now());
        let mut terminal = Terminal::new(TestBackend::new(200, 60)).expect("test terminal");
        c.bench_function(&format!("frame 200x60 ({v:?})"), |b| {
            b.iter(|| {
                terminal.draw(|f| view(black_box(&app), f)).expect("draw");
            })
        });
    }
}

criterion_group!(benches, render);
criterion_main!(benches);
