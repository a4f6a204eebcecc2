//! The remote backend against stand-in vLLM servers on 127.0.0.1 (fast, always run): what a
//! server answers is checked, failures are retried or moved to another server, a refused
//! batch is split to find its bad input, the key goes only where it belongs, and cancelling
//! is prompt. `tests/vllm.rs` runs the same client against real vLLM.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fixture;
use dpa_explorer::engine::remote_pipeline;
use dpa_explorer::hub::{HubOptions, ModelSource};
use dpa_explorer::scoring::remote::{parse_server, RemoteOptions};
use dpa_explorer::scoring::{Input, Pipeline, ScoreError};
use serde_json::{json, Value};

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    auth: Option<String>,
    body: Value,
}

type Handler = dyn Fn(&Seen, usize) -> (u16, String) + Send + Sync;

/// A stand-in server: answers each request with `handler(request, n)` (n counts pooling
/// requests from 0); stops with the test.
struct StandIn {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl StandIn {
    fn start(handler: impl Fn(&Seen, usize) -> (u16, String) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let pooled = Arc::new(AtomicUsize::new(0));
        let s = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (s, h, p) = (s.clone(), handler.clone(), pooled.clone());
                std::thread::spawn(move || serve(stream, &s, &*h, &p));
            }
        });
        Self { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, seen: &Mutex<Vec<Seen>>, handler: &Handler, pooled: &AtomicUsize) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let (mut length, mut auth) = (0usize, None);
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap();
            match k.to_ascii_lowercase().as_str() {
                "content-length" => length = v.trim().parse().unwrap(),
                "authorization" => auth = Some(v.trim().to_string()),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let request = Seen {
            method,
            path,
            auth,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        };
        seen.lock().unwrap().push(request.clone());
        let n = if request.path == "/pooling" {
            pooled.fetch_add(1, Ordering::SeqCst)
        } else {
            0
        };
        let (status, text) = handler(&request, n);
        if status == 0 {
            return; // Hang up without an answer, as a dying server does.
        }
        let answer = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{}\r\n{text}",
            text.len(),
            if status == 307 {
                format!("location: {text}\r\n")
            } else {
                String::new()
            }
        );
        if stream.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn model_dir() -> std::path::PathBuf {
    fixture("tiny-mha")
}

/// Scores a stand-in gives: ten raw values from the input's ids.
fn row(ids: &[u64]) -> Vec<f64> {
    let sum: u64 = ids.iter().sum();
    (0..10)
        .map(|k| ids.len() as f64 - 40.0 + k as f64 * 1.5 + (sum % 97) as f64 / 10.0)
        .collect()
}

fn models(name: &str) -> String {
    json!({"object": "list", "data": [{"id": name, "root": name, "max_model_len": 512}]})
        .to_string()
}

/// A well-behaved vLLM: serves `tiny-mha`, raw scores from the ids.
fn vllm(seen: &Seen, _: usize) -> (u16, String) {
    match seen.path.as_str() {
        "/v1/models" => (200, models(&model_dir().display().to_string())),
        "/pooling" => (200, pooling(seen, row)),
        _ => (404, "{}".into()),
    }
}

fn pooling(seen: &Seen, f: impl Fn(&[u64]) -> Vec<f64>) -> String {
    let data: Vec<Value> = seen.body["input"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, ids)| {
            let ids: Vec<u64> = ids
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            json!({"index": i, "object": "pooling", "data": f(&ids)})
        })
        .collect();
    json!({"data": data, "usage": {}}).to_string()
}

fn options(servers: &[&StandIn]) -> RemoteOptions {
    RemoteOptions {
        servers: servers
            .iter()
            .map(|s| parse_server(&s.url).unwrap())
            .collect(),
        batch: 2,
        in_flight: 2,
        timeout: Duration::from_secs(10),
        backoff: Duration::from_millis(10),
        ..RemoteOptions::default()
    }
}

fn connect(options: RemoteOptions) -> Result<Pipeline, String> {
    remote_pipeline(
        &ModelSource::Local(model_dir()),
        &HubOptions::from_env(),
        512,
        options,
        &|_| {},
    )
    .map_err(|e| e.to_string())
}

fn pairs(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("Prompt {}", i % 3), format!("Response number {i}.")))
        .collect()
}

/// Scores `pairs` and checks each against the stand-in's formula for its ids.
fn score_and_check(p: &mut Pipeline, pairs: &[(String, String)]) -> Vec<Result<(), ScoreError>> {
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let results = p.score_pairs(&refs);
    results
        .into_iter()
        .zip(&refs)
        .map(|(r, (prompt, response))| {
            let s = r?;
            let ids: Vec<u64> = p
                .encoder()
                .encode(prompt, response)
                .unwrap()
                .ids
                .iter()
                .map(|&i| i as u64)
                .collect();
            let want: Vec<f32> = row(&ids).into_iter().map(|v| v as f32).collect();
            assert_eq!(s.scores, want, "{response}");
            Ok(())
        })
        .collect()
}

#[test]
fn token_ids_go_out_without_activation_and_scores_come_back_in_order() {
    let server = StandIn::start(vllm);
    let mut p = connect(options(&[&server])).unwrap();
    assert!(
        p.info().device.starts_with("remote http://127.0.0.1"),
        "{:?}",
        p.info()
    );
    let results = score_and_check(&mut p, &pairs(7));
    assert!(results.iter().all(Result::is_ok));
    let pooled: Vec<Seen> = server
        .seen()
        .into_iter()
        .filter(|s| s.path == "/pooling")
        .collect();
    // Two probe inputs, then 7 inputs in requests of at most 2.
    assert_eq!(pooled.len(), 1 + 4);
    for s in &pooled {
        assert_eq!(s.method, "POST");
        assert_eq!(s.body["use_activation"], false);
        let first = &s.body["input"][0];
        assert_eq!(first[0], 1, "BOS first: {first}");
    }
}

#[test]
fn a_server_that_applies_a_softmax_is_refused() {
    let server = StandIn::start(|seen, _| match seen.path.as_str() {
        "/pooling" => (
            200,
            pooling(seen, |ids| {
                let raw = row(ids);
                let z: f64 = raw.iter().map(|v| v.exp()).sum();
                raw.iter().map(|v| v.exp() / z).collect()
            }),
        ),
        _ => vllm(seen, 0),
    });
    let e = connect(options(&[&server])).unwrap_err();
    assert!(e.contains("applies an activation"), "{e}");
    assert!(e.contains(&server.url), "{e}");
}

#[test]
fn a_server_with_another_number_of_outputs_or_model_is_refused() {
    let three = StandIn::start(|seen, _| match seen.path.as_str() {
        "/pooling" => (200, pooling(seen, |ids| row(ids)[..3].to_vec())),
        _ => vllm(seen, 0),
    });
    let e = connect(options(&[&three])).unwrap_err();
    assert!(
        e.contains("returns 3 outputs per input; the model has 10"),
        "{e}"
    );
    let other = StandIn::start(|seen, _| match seen.path.as_str() {
        "/v1/models" => (200, models("RLHFlow/ArmoRM-Llama3-8B-v0.1")),
        _ => vllm(seen, 0),
    });
    let e = connect(options(&[&other])).unwrap_err();
    assert!(
        e.contains("serves `RLHFlow/ArmoRM-Llama3-8B-v0.1`, not"),
        "{e}"
    );
}

#[test]
fn server_errors_are_retried_and_a_failing_server_leaves_its_work_to_the_others() {
    // Fails its first pooling request after the probe with a 503, then works.
    let flaky = StandIn::start(|seen, n| match (seen.path.as_str(), n) {
        ("/pooling", 1) => (503, r#"{"error":{"message":"busy"}}"#.into()),
        _ => vllm(seen, n),
    });
    let mut p = connect(options(&[&flaky])).unwrap();
    assert!(score_and_check(&mut p, &pairs(4)).iter().all(Result::is_ok));
    assert_eq!(
        flaky.seen().iter().filter(|s| s.path == "/pooling").count(),
        1 + 3
    );
    // Hangs up on every pooling request after the probe: set aside, the other does the work.
    let dying = StandIn::start(|seen, n| match (seen.path.as_str(), n) {
        ("/pooling", 1..) => (0, String::new()),
        _ => vllm(seen, n),
    });
    let good = StandIn::start(vllm);
    let mut p = connect(options(&[&dying, &good])).unwrap();
    let results = score_and_check(&mut p, &pairs(12));
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let warnings = p.warnings().join("\n");
    assert!(
        warnings.contains(&dying.url) && warnings.contains("stopped answering"),
        "{warnings}"
    );
    // With no server left, the inputs fail with the reason.
    let dying = StandIn::start(|seen, n| match (seen.path.as_str(), n) {
        ("/pooling", 1..) => (0, String::new()),
        _ => vllm(seen, n),
    });
    let mut p = connect(options(&[&dying])).unwrap();
    let results = score_and_check(&mut p, &pairs(2));
    match &results[0] {
        Err(ScoreError::Remote(m)) => assert!(m.contains("no server is left"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_refused_batch_is_split_to_find_the_input_the_server_refuses() {
    let server = StandIn::start(|seen, n| match seen.path.as_str() {
        "/pooling"
            if seen.body["input"]
                .as_array()
                .unwrap()
                .iter()
                .any(|ids| ids.as_array().unwrap().len() > 120) =>
        {
            (
                400,
                r#"{"error":{"message":"too long for this test"}}"#.into(),
            )
        }
        _ => vllm(seen, n),
    });
    let mut p = connect(options(&[&server])).unwrap();
    let mut batch = pairs(3);
    batch.insert(1, ("Prompt".into(), "word ".repeat(100)));
    let results = score_and_check(&mut p, &batch);
    assert!(results[0].is_ok() && results[2].is_ok() && results[3].is_ok());
    match &results[1] {
        Err(ScoreError::Remote(m)) => assert!(m.contains("too long for this test"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_key_goes_to_the_server_only_never_across_a_redirect() {
    let elsewhere = StandIn::start(vllm);
    let target = format!("{}/pooling", elsewhere.url);
    let server = StandIn::start(move |seen, n| match (seen.path.as_str(), n) {
        ("/pooling", 1..) => (307, target.clone()),
        _ => vllm(seen, n),
    });
    let mut o = options(&[&server]);
    o.api_key = Some("sekrit".into());
    let mut p = connect(o).unwrap();
    assert!(server
        .seen()
        .iter()
        .all(|s| s.auth.as_deref() == Some("Bearer sekrit")));
    let results = score_and_check(&mut p, &pairs(1));
    assert!(results[0].is_err());
    assert!(elsewhere.seen().is_empty(), "{:?}", elsewhere.seen());
    // Without a key, none is sent.
    let plain = StandIn::start(vllm);
    connect(options(&[&plain])).unwrap();
    assert!(plain.seen().iter().all(|s| s.auth.is_none()));
}

#[test]
fn an_unreachable_server_is_left_out_and_named() {
    let good = StandIn::start(vllm);
    let mut o = options(&[&good]);
    // A port nothing listens on.
    let free = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    o.servers
        .insert(0, parse_server(&format!("http://{free}")).unwrap());
    let p = connect(o.clone()).unwrap();
    assert!(
        p.warnings().join("\n").contains(&format!("{free}")),
        "{:?}",
        p.warnings()
    );
    o.servers.remove(1);
    let e = connect(o).unwrap_err();
    assert!(e.contains("no server answered"), "{e}");
}

#[test]
fn cancelling_ends_a_slow_request_at_once() {
    let slow = StandIn::start(|seen, n| {
        if seen.path == "/pooling" && n > 0 {
            std::thread::sleep(Duration::from_secs(5));
        }
        vllm(seen, n)
    });
    let mut p = connect(options(&[&slow])).unwrap();
    let t = Instant::now();
    let inputs = [Ok(Input {
        prompt: "p",
        response: "r",
        slot: None,
    })];
    let stop = || t.elapsed() > Duration::from_millis(200);
    let outcome = p.score(&inputs, &stop, &mut |_, _| {});
    assert_eq!(outcome, Err(ScoreError::Cancelled));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[test]
fn an_oversized_answer_is_not_read() {
    let huge = StandIn::start(|seen, n| match (seen.path.as_str(), n) {
        ("/pooling", 1..) => (
            200,
            format!("{{\"data\": [], \"pad\": \"{}\"}}", "x".repeat(4 << 20)),
        ),
        _ => vllm(seen, n),
    });
    let mut p = connect(options(&[&huge])).unwrap();
    let results = score_and_check(&mut p, &pairs(1));
    let e = results[0].as_ref().unwrap_err().to_string();
    assert!(
        e.contains("no server is left") && e.contains("bytes"),
        "{e}"
    );
}

#[test]
fn the_explorer_scores_through_a_server_as_through_a_local_model() {
    let server = StandIn::start(vllm);
    let home = tempfile::tempdir().unwrap();
    let model = model_dir();
    let args: Vec<&std::ffi::OsStr> = vec![
        "--model".as_ref(),
        model.as_os_str(),
        "--server".as_ref(),
        server.url.as_ref(),
    ];
    let app = common::pty::Pty::start(home.path(), &args, 40, 140);
    let shown = format!("remote {}", server.url);
    app.wait_for("the remote model to be ready", |t| {
        t.contains(" ready ") && t.contains(&shown) && t.contains("server")
    });
    app.send(b"Why is the sea salty?\t");
    app.send(b"Rivers carry salt.");
    let text = app.wait_for("fresh scores", |t| t.contains("Scores · A fresh"));
    let pooled = server
        .seen()
        .into_iter()
        .filter(|s| s.path == "/pooling")
        .count();
    assert!(
        pooled >= 2,
        "the probe and at least one score request: {pooled}"
    );
    // The stand-in's helpfulness for these ids, to two decimals, is on the screen.
    let encoder = dpa_explorer::scoring::fake::encoder(4096);
    let ids: Vec<u64> = encoder
        .encode("Why is the sea salty?", "Rivers carry salt.")
        .unwrap()
        .ids
        .iter()
        .map(|&i| i as u64)
        .collect();
    let helpfulness = row(&ids)[0];
    assert!(
        text.contains(&format!("{helpfulness:.2}")),
        "{helpfulness:.2} not in:\n{text}"
    );
    app.quit();
}

#[test]
fn server_urls_are_checked() {
    for bad in [
        "ftp://x",
        "127.0.0.1:8000",
        "http://u:p@h:1",
        "http://h/?q=1",
        "not a url",
    ] {
        assert!(parse_server(bad).is_err(), "{bad}");
    }
    assert!(parse_server("http://127.0.0.1:8000").is_ok());
    assert!(parse_server("https://gpu.example/v/").is_ok());
}
