//! What key/value reuse saves, and whether the UI keeps its frames while the engine computes,
//! on a random model with the real Mistral-7B widths and `DPA_BENCH_LAYERS` layers (default 2).
//!
//! `cargo bench --bench reuse [-- append|shared|file|ui]...` prints markdown tables.
//! `DPA_BENCH_SMOKE=1` runs every part briefly on the tiny test fixture (checks, no numbers);
//! `DPA_BENCH_REPS`, `DPA_BENCH_UI_SECS` and `DPA_BENCH_UI_ROUNDS` shorten or lengthen the runs.

mod support;

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dpa_explorer::cli::score::{score_records, Record};
use dpa_explorer::engine::{Engine, EngineEvent, EngineOptions, Loader, ScoreItem};
use dpa_explorer::model::{DTypeChoice, RewardModel};
use dpa_explorer::scoring::{Input, LocalBackend, Pipeline, ScoreError};
use support::*;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let want = |part: &str| args.is_empty() || args.iter().any(|a| a == part);
    let dir = model_dir();
    let reps = std::env::var("DPA_BENCH_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if smoke() { 1 } else { 5 });
    println!(
        "model: {} ({} layers), {} cores, f32 compute\n",
        dir.display(),
        if smoke() { 3 } else { layers() },
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if want("append") {
        append(&dir, reps);
    }
    if want("shared") {
        shared(&dir, reps.min(3));
    }
    if want("file") {
        file(&dir, reps.min(3));
    }
    if want("ui") {
        ui(&dir);
    }
}

fn score_one(p: &mut Pipeline, items: &[ScoreItem]) -> (f64, Vec<Vec<f32>>) {
    let inputs: Vec<Result<Input, ScoreError>> = items.iter().map(|it| Ok(it.input())).collect();
    let mut rows = vec![Vec::new(); items.len()];
    let t = Instant::now();
    p.score(&inputs, &|| false, &mut |i, r| {
        rows[i] = r.expect("scored").scores;
    })
    .expect("scores");
    (t.elapsed().as_secs_f64(), rows)
}

/// The local backend of a pipeline made by `Pipeline::local`.
fn local(p: &Pipeline) -> &LocalBackend {
    p.backend_as().expect("a local backend")
}

/// Inputs in one right-padded pass of the model, nothing shared or kept.
fn padded(model: &RewardModel, pairs: &[(&str, &str)]) -> Vec<Vec<f32>> {
    let enc: Vec<_> = pairs
        .iter()
        .map(|(p, r)| model.encode(p, r).unwrap())
        .collect();
    let seqs: Vec<&[u32]> = enc.iter().map(|e| e.ids.as_slice()).collect();
    let out = model
        .decoder()
        .forward(None, &seqs, false, &|| false)
        .unwrap();
    out.logits.to_vec2::<f32>().unwrap()
}

fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert!(
        a.iter().chain(b).flatten().all(|x| x.is_finite()),
        "scores must be finite"
    );
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Appending one word to a ~300-token input: incremental rescoring vs a full pass.
fn append(dir: &std::path::Path, reps: usize) {
    let model = load(dir, DTypeChoice::F32);
    let mut rng = Rng(11);
    let prompt = words(&mut rng, model.encoder(), 120);
    let mut response = words(&mut rng, model.encoder(), 130);
    let mut inc = Pipeline::local(model);
    let item = |r: &str| ScoreItem {
        slot: 0,
        prompt: prompt.clone(),
        response: r.to_string(),
    };
    let tokens = inc.encoder().encode(&prompt, &response).unwrap().ids.len();
    score_one(&mut inc, &[item(&response)]);
    let (mut t_inc, mut t_full, mut fed, mut worst) = (vec![], vec![], vec![], 0f32);
    let mut last = Vec::new();
    for k in 0..reps {
        response.push(' ');
        response.push_str(["indeed", "clearly", "again", "now", "too"][k % 5]);
        let items = [item(&response)];
        let (ti, inc_rows) = score_one(&mut inc, &items);
        fed.push(local(&inc).last_stats().computed);
        // The full pass: the same input from scratch, as the reference implementation does.
        let model = local(&inc).model();
        let t = Instant::now();
        let enc = model.encode(&prompt, &response).unwrap();
        let out = model
            .decoder()
            .forward(None, &[&enc.ids], false, &|| false)
            .unwrap();
        let full_rows = out.logits.to_vec2::<f32>().unwrap();
        t_full.push(t.elapsed().as_secs_f64());
        t_inc.push(ti);
        worst = worst.max(max_diff(&inc_rows, &full_rows));
        last = inc_rows[0][..3].to_vec();
    }
    let (mi, mf) = (median(&mut t_inc), median(&mut t_full));
    println!("### Append one word to a {tokens}-token input (median of {reps})\n");
    println!("| pass | tokens fed | time | ratio to full |");
    println!("|---|---|---|---|");
    println!("| full recompute | {tokens} | {:.1} ms | 1.00 |", mf * 1e3);
    println!(
        "| incremental | {} | {:.1} ms | {:.3} |",
        fed[fed.len() / 2],
        mi * 1e3,
        mi / mf
    );
    println!("\nmax |incremental - full| = {worst:.2e}; scores of the last input: {last:?}");
    println!(
        "cached keys and values for this slot: {:.1} MB ({} tokens)\n",
        local(&inc).store().bytes() as f64 / 1e6,
        local(&inc).store().slot_ids(0).map_or(0, |ids| ids.len())
    );
}

/// Eight candidates of one prompt: eight independent passes, one padded batch, shared prefix.
fn shared(dir: &std::path::Path, reps: usize) {
    let model = load(dir, DTypeChoice::F32);
    let mut rng = Rng(23);
    let prompt = words(&mut rng, model.encoder(), 200);
    let items: Vec<ScoreItem> = (0..8)
        .map(|c| ScoreItem {
            slot: c,
            prompt: prompt.clone(),
            response: words(&mut rng, model.encoder(), 50),
        })
        .collect();
    let lens: Vec<usize> = items
        .iter()
        .map(|it| model.encode(&it.prompt, &it.response).unwrap().ids.len())
        .collect();
    let model = Arc::new(model);
    let mut plain = Pipeline::local_uncached(model.clone());
    let mut inc = Pipeline::local(model.clone());
    let (mut t_ind, mut t_batch, mut t_shared) = (vec![], vec![], vec![]);
    let (mut worst, mut fed) = (0f32, 0);
    for _ in 0..reps {
        // Independent: each candidate its own full pass.
        let t = Instant::now();
        let mut ind_rows = Vec::new();
        for it in &items {
            ind_rows.push(
                plain
                    .score_pairs(&[(&it.prompt, &it.response)])
                    .remove(0)
                    .unwrap(),
            );
        }
        t_ind.push(t.elapsed().as_secs_f64());
        let ind_rows: Vec<Vec<f32>> = ind_rows.into_iter().map(|s| s.scores).collect();
        // One padded batch, no sharing.
        let t = Instant::now();
        let pairs: Vec<(&str, &str)> = items
            .iter()
            .map(|it| (it.prompt.as_str(), it.response.as_str()))
            .collect();
        padded(&model, &pairs);
        t_batch.push(t.elapsed().as_secs_f64());
        // Shared prefix, from an empty cache.
        inc.backend_as_mut::<LocalBackend>().unwrap().clear();
        let (ts, rows) = score_one(&mut inc, &items);
        t_shared.push(ts);
        let stats = local(&inc).last_stats();
        fed = stats.computed + stats.padding;
        worst = worst.max(max_diff(&rows, &ind_rows));
    }
    let (mi, mb, ms) = (
        median(&mut t_ind),
        median(&mut t_batch),
        median(&mut t_shared),
    );
    let total: usize = lens.iter().sum();
    println!(
        "### Eight candidates: 200-token prompt, 50-token responses, inputs of {}–{} tokens \
         with the template (median of {reps})\n",
        lens.iter().min().unwrap(),
        lens.iter().max().unwrap()
    );
    println!("| how | tokens fed | time | speed-up vs independent |");
    println!("|---|---|---|---|");
    println!(
        "| 8 independent passes | {total} | {:.0} ms | 1.00× |",
        mi * 1e3
    );
    println!(
        "| 1 padded batch, no sharing | {} | {:.0} ms | {:.2}× |",
        lens.iter().max().unwrap() * 8,
        mb * 1e3,
        mi / mb
    );
    println!(
        "| shared prefix + 1 batch of suffixes | {fed} | {:.0} ms | {:.2}× |",
        ms * 1e3,
        mi / ms
    );
    println!("\nmax |shared - independent| = {worst:.2e}\n");
}

/// `score --input`: two prompts with four responses each, interleaved in the file.
fn file(dir: &std::path::Path, reps: usize) {
    let model = load(dir, DTypeChoice::F32);
    let mut rng = Rng(37);
    let prompts = [
        words(&mut rng, model.encoder(), 200),
        words(&mut rng, model.encoder(), 150),
    ];
    let records: Vec<Record> = (0..8)
        .map(|i| Record::Pair {
            line: i + 1,
            fields: serde_json::Map::new(),
            prompt: prompts[i % 2].clone(),
            response: words(&mut rng, model.encoder(), 40 + 5 * i),
        })
        .collect();
    let model = Arc::new(model);
    let (mut t_plain, mut t_grouped, mut worst) = (vec![], vec![], 0f32);
    for _ in 0..reps {
        // From an empty cache each time, as one run of `score` starts.
        let mut pipeline = Pipeline::local(model.clone());
        pipeline.set_batch(8);
        // What `score` did before: batches of 8 in input order, each input in full.
        let t = Instant::now();
        let pairs: Vec<(&str, &str)> = records
            .iter()
            .map(|r| match r {
                Record::Pair {
                    prompt, response, ..
                } => (prompt.as_str(), response.as_str()),
                Record::Bad { .. } => unreachable!(),
            })
            .collect();
        let plain = padded(&model, &pairs);
        t_plain.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let grouped = score_records(&mut pipeline, &records);
        t_grouped.push(t.elapsed().as_secs_f64());
        for (p, g) in plain.iter().zip(&grouped) {
            let g = g.as_ref().unwrap();
            worst = worst.max(max_diff(
                std::slice::from_ref(p),
                std::slice::from_ref(&g.scores),
            ));
        }
    }
    let (mp, mg) = (median(&mut t_plain), median(&mut t_grouped));
    println!("### `score --input`: 2 prompts × 4 responses, interleaved (median of {reps})\n");
    println!("| how | time | speed-up |");
    println!("|---|---|---|");
    println!(
        "| one padded batch of 8, no sharing | {:.0} ms | 1.00× |",
        mp * 1e3
    );
    println!(
        "| grouped by prompt, prefixes shared | {:.0} ms | {:.2}× |",
        mg * 1e3,
        mp / mg
    );
    println!("\nmax |grouped - plain| = {worst:.2e}\n");
}

/// One frame of a UI like the explorer's: a score table, a text pane and a status line.
fn draw(term: &mut ratatui::Terminal<ratatui::backend::TestBackend>, frame: u64) {
    use ratatui::layout::{Constraint, Layout};
    use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};
    term.draw(|f| {
        let [top, text, status] = Layout::vertical([
            Constraint::Length(12),
            Constraint::Min(5),
            Constraint::Length(1),
        ])
        .areas(f.area());
        let rows: Vec<Row> = (0..8)
            .map(|r| {
                Row::new((0..10).map(|c| {
                    let v = (((r * 10 + c) as u64 * 37 + frame) % 1000) as f64 / 10.0;
                    Cell::from(format!("{v:5.1}"))
                }))
            })
            .collect();
        let widths = [Constraint::Length(7); 10];
        f.render_widget(
            Table::new(rows, widths).block(Block::bordered().title("scores")),
            top,
        );
        let body = "The candidate response is being edited while the model scores it. ".repeat(12);
        f.render_widget(
            Paragraph::new(body)
                .wrap(Wrap { trim: true })
                .block(Block::bordered().title("response")),
            text,
        );
        f.render_widget(Paragraph::new(format!("frame {frame}")), status);
    })
    .expect("draw");
}

/// Frame delays in ms, summarised.
struct FrameStats {
    p50: f64,
    p99: f64,
    worst: f64,
    late_frames: usize,
    frames: usize,
}

impl FrameStats {
    fn of(mut delays: Vec<f64>) -> Self {
        let late_frames = delays.iter().filter(|&&d| d > 16.0).count();
        let n = delays.len().max(1);
        delays.sort_by(f64::total_cmp);
        delays.resize(n, 0.0);
        FrameStats {
            p50: delays[n / 2],
            p99: delays[(n * 99 / 100).min(n - 1)],
            worst: delays[n - 1],
            late_frames,
            frames: n,
        }
    }
}

/// A 60 Hz UI loop for `secs`: wake at each 16 ms deadline, draw a frame; the delay of a
/// frame is from its deadline to the end of its drawing. Returns every frame's delay in ms.
fn ui_loop(secs: f64) -> Vec<f64> {
    let mut term =
        ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 40)).expect("terminal");
    let period = Duration::from_millis(16);
    let start = Instant::now();
    let mut deadline = start + period;
    let mut delays = Vec::new();
    let mut frame = 0;
    while start.elapsed().as_secs_f64() < secs {
        let now = Instant::now();
        if deadline > now {
            std::thread::sleep(deadline - now);
        }
        draw(&mut term, frame);
        delays.push((Instant::now() - deadline).as_secs_f64() * 1e3);
        frame += 1;
        deadline += period;
        // A frame that ran past the next deadline skips it, as a real event loop would.
        while deadline < Instant::now() {
            deadline += period;
        }
    }
    delays
}

/// Frame delays while an engine with `options` scores full passes back to back; returns the
/// delays and the mean time of a pass.
fn ui_under_load(
    model: &Arc<RewardModel>,
    options: EngineOptions,
    prompt: &str,
    base: &str,
    secs: f64,
) -> (Vec<f64>, Vec<f64>) {
    let (tx, rx) = mpsc::channel();
    // The model is shared by the engines of the UI runs, so that it loads once; nothing is
    // kept between passes, so every pass is a full one.
    let shared = model.clone();
    let loader: Loader = Box::new(move |_| Ok(Pipeline::local_uncached(shared)));
    let engine = Engine::spawn_with(loader, options, move |ev| {
        let _ = tx.send(ev);
    });
    assert!(matches!(rx.recv().unwrap(), EngineEvent::Ready { .. }));
    // Keep the engine busy: a new request (a new text, so no cache hit) whenever one ends.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let feeder = {
        let stop = stop.clone();
        let (prompt, base) = (prompt.to_string(), base.to_string());
        std::thread::spawn(move || {
            let request = |n: u64| {
                vec![ScoreItem {
                    slot: 0,
                    prompt: prompt.clone(),
                    response: format!("{base} {n}"),
                }]
            };
            let mut n = 0u64;
            let mut passes = Vec::new();
            let mut id = engine.score(request(n));
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                if let Ok(EngineEvent::Finished {
                    request: r,
                    elapsed,
                }) = rx.recv_timeout(Duration::from_millis(50))
                {
                    if r == id {
                        passes.push(elapsed.as_secs_f64());
                        n += 1;
                        id = engine.score(request(n));
                    }
                }
            }
            passes
        })
    };
    // Let the first pass get going before measuring.
    std::thread::sleep(Duration::from_millis(300));
    let delays = ui_loop(secs);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    (delays, feeder.join().unwrap())
}

/// Frame delays of a UI thread while an engine scores full passes back to back, for each way
/// of running the compute threads. The modes take turns over several rounds, so that load from
/// outside the benchmark falls on all of them alike; the idle rows show that load alone.
fn ui(dir: &std::path::Path) {
    let env = |k: &str| std::env::var(k).ok().and_then(|s| s.parse::<f64>().ok());
    let secs = env("DPA_BENCH_UI_SECS").unwrap_or(if smoke() { 0.5 } else { 10.0 });
    let rounds = env("DPA_BENCH_UI_ROUNDS").unwrap_or(if smoke() { 1.0 } else { 3.0 }) as usize;
    let backend = Arc::new(load(dir, DTypeChoice::F32));
    let mut rng = Rng(51);
    let (prompt, base) = (
        words(&mut rng, backend.encoder(), 120),
        words(&mut rng, backend.encoder(), 170),
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let fewer = cores.saturating_sub(1).max(1);
    let modes: Vec<(String, Option<EngineOptions>)> = vec![
        ("idle (no scoring)".into(), None),
        ("all cores, normal priority".into(), Some(opts(0, 0))),
        ("all cores, nice +5".into(), Some(opts(0, 5))),
        ("all cores, nice +10 (default)".into(), Some(opts(0, 10))),
        ("all cores, nice +19".into(), Some(opts(0, 19))),
        (
            format!("{fewer} thread(s), normal priority"),
            Some(opts(fewer, 0)),
        ),
    ];
    let mut delays: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    let mut passes: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    for round in 0..rounds {
        eprintln!("ui round {} of {rounds}", round + 1);
        for (m, (_, options)) in modes.iter().enumerate() {
            match options {
                None => delays[m].extend(ui_loop(secs)),
                Some(o) => {
                    let (d, p) = ui_under_load(&backend, o.clone(), &prompt, &base, secs);
                    delays[m].extend(d);
                    passes[m].extend(p);
                }
            }
        }
    }
    println!("### UI frames (60 Hz, ratatui 120×40 into a TestBackend) while the engine scores\n");
    println!(
        "Back-to-back full passes of a ~300-token input; {rounds} rounds of {secs} s per row, \
         rows taking turns.\n"
    );
    println!("| compute threads | frame delay p50 | p99 | worst | frames > 16 ms | s per pass |");
    println!("|---|---|---|---|---|---|");
    for (m, (name, _)) in modes.iter().enumerate() {
        let s = FrameStats::of(std::mem::take(&mut delays[m]));
        let per_pass = if passes[m].is_empty() {
            "–".to_string()
        } else {
            format!(
                "{:.2}",
                passes[m].iter().sum::<f64>() / passes[m].len() as f64
            )
        };
        println!(
            "| {name} | {:.2} ms | {:.2} ms | {:.2} ms | {} of {} | {per_pass} |",
            s.p50, s.p99, s.worst, s.late_frames, s.frames
        );
    }
    println!();
}

fn opts(threads: usize, nice: i32) -> EngineOptions {
    EngineOptions {
        cache_capacity: 0,
        threads,
        nice,
    }
}
