//! The remote backend against real vLLM servers on 127.0.0.1 (`scripts/vllm/test.sh` starts
//! them and runs these with `--ignored`): parity with transformers and with the local model on
//! every fixture case, batches, truncated inputs, a server that serves another model, a server
//! whose default is a softmax, and a server killed in the middle of a run.
//!
//! `DPA_VLLM_SERVERS` lists the servers (comma-separated); all serve `vllm-gqa-window`, the
//! second with a softmax as its default activation. `DPA_VLLM_KILL` is the process group of
//! the second, which the last test kills.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use dpa_explorer::engine::remote_pipeline;
use dpa_explorer::hub::{HubOptions, ModelSource};
use dpa_explorer::scoring::remote::{parse_server, RemoteOptions};
use dpa_explorer::scoring::{Pipeline, ScoreError, Scored};
use serde_json::Value;

/// Parity with transformers f32 and with the local model.
const TOL: f32 = 1e-3;

fn servers() -> Vec<String> {
    std::env::var("DPA_VLLM_SERVERS")
        .expect("DPA_VLLM_SERVERS (run scripts/vllm/test.sh)")
        .split(',')
        .map(String::from)
        .collect()
}

fn dir() -> std::path::PathBuf {
    fixture("vllm-gqa-window")
}

fn remote(servers: &[String], max_tokens: usize) -> Result<Pipeline, String> {
    let options = RemoteOptions {
        servers: servers.iter().map(|s| parse_server(s).unwrap()).collect(),
        batch: 4,
        ..RemoteOptions::default()
    };
    remote_pipeline(
        &ModelSource::Local(dir()),
        &HubOptions::from_env(),
        max_tokens,
        options,
        &|_| {},
    )
    .map_err(|e| e.to_string())
}

fn all(p: &mut Pipeline, pairs: &[(&str, &str)]) -> Vec<Scored> {
    p.score_pairs(pairs)
        .into_iter()
        .map(|r| r.expect("scored"))
        .collect()
}

#[test]
#[ignore = "needs vLLM servers: scripts/vllm/test.sh"]
fn every_case_matches_transformers_and_the_local_model_on_each_server() {
    let reference = reference(&dir());
    let local = load(&dir(), 4096);
    let pairs: Vec<(&str, &str)> = reference
        .cases
        .iter()
        .map(|c| (c.prompt.as_str(), c.response.as_str()))
        .collect();
    let mine = local.score(&pairs).unwrap();
    for server in servers() {
        let mut p = remote(std::slice::from_ref(&server), 512).unwrap();
        assert!(p.info().device.contains(&server), "{:?}", p.info());
        // One at a time, then all in one call (batches of 4, several in flight).
        for (case, mine) in reference.cases.iter().zip(&mine) {
            let got = all(&mut p, &[(&case.prompt, &case.response)]).remove(0);
            assert_eq!(got.tokens, case.input_ids.len());
            let d = max_abs_diff(&got.scores, &case.logits_f32);
            assert!(d <= TOL, "{server}: {d} from transformers");
            assert!(max_abs_diff(&got.scores, &mine.scores) <= TOL);
        }
        let batched = all(&mut p, &pairs);
        for (got, case) in batched.iter().zip(&reference.cases) {
            let d = max_abs_diff(&got.scores, &case.logits_f32);
            assert!(d <= TOL, "{server} batched: {d} from transformers");
        }
    }
}

#[test]
#[ignore = "needs vLLM servers: scripts/vllm/test.sh"]
fn truncated_inputs_keep_bos_and_the_end_as_in_training() {
    let reference = reference(&dir());
    let n = reference.truncation_max_tokens;
    let mut p = remote(&servers(), n).unwrap();
    let local = load(&dir(), n);
    for case in &reference.truncated_cases {
        let got = all(&mut p, &[(&case.prompt, &case.response)]).remove(0);
        assert!(got.truncated);
        assert_eq!(got.tokens, n);
        assert_eq!(
            p.encoder()
                .encode(&case.prompt, &case.response)
                .unwrap()
                .ids,
            case.input_ids
        );
        let d = max_abs_diff(&got.scores, &case.logits_f32);
        assert!(d <= TOL, "truncated: {d} from transformers");
        let mine = local.score(&[(&case.prompt, &case.response)]).unwrap();
        assert!(max_abs_diff(&got.scores, &mine[0].scores) <= TOL);
    }
}

#[test]
#[ignore = "needs vLLM servers: scripts/vllm/test.sh"]
fn inputs_longer_than_the_server_takes_fail_alone_naming_the_limit() {
    let mut p = remote(&servers(), 4096).unwrap();
    let long = "word ".repeat(700);
    let got = p.score_pairs(&[("Say it.", &long), ("Say it.", "Short.")]);
    match &got[0] {
        Err(ScoreError::Input(m)) => assert!(m.contains("--max-tokens 512"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(got[1].is_ok());
}

#[test]
#[ignore = "needs vLLM servers: scripts/vllm/test.sh"]
fn a_server_serving_another_model_is_refused_by_name() {
    let options = RemoteOptions {
        servers: vec![parse_server(&servers()[0]).unwrap()],
        ..RemoteOptions::default()
    };
    let other = fixture("tiny-gqa-window");
    let e = remote_pipeline(
        &ModelSource::Local(other.clone()),
        &HubOptions::from_env(),
        512,
        options,
        &|_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("vllm-gqa-window"), "{e}");
    assert!(e.contains(&format!("not `{}`", other.display())), "{e}");
}

fn binary(home: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dpa-explorer"));
    c.env("HOME", home)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("DPA_SERVER")
        .env_remove("VLLM_API_KEY");
    c
}

/// The last test: it kills the second server.
#[test]
#[ignore = "needs vLLM servers: scripts/vllm/test.sh"]
fn zz_a_server_killed_mid_run_leaves_its_work_to_the_other() {
    let servers = servers();
    let kill: i32 = std::env::var("DPA_VLLM_KILL")
        .expect("DPA_VLLM_KILL")
        .parse()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    let mut f = std::fs::File::create(&input).unwrap();
    let lines = 15_000;
    for i in 0..lines {
        let line = serde_json::json!({
            "id": i,
            "prompt": format!("Question {} about the sea?", i % 7),
            "response": format!("Answer {i}: {}", "waves and salt ".repeat(1 + i % 9)),
        });
        writeln!(f, "{line}").unwrap();
    }
    drop(f);
    let output = tmp.path().join("out.jsonl");
    let mut child = binary(tmp.path())
        .args(["score", "--model"])
        .arg(dir())
        .args(["--max-tokens", "512", "--batch-size", "8", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .args(servers.iter().flat_map(|s| ["--server", s.as_str()]))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once scoring is under way, kill the second server outright.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run is still going"
    );
    let status = Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{kill}")])
        .status()
        .unwrap();
    assert!(status.success(), "killing server group {kill}");
    let stderr = child.stderr.take().unwrap();
    let mut err_text = String::new();
    for line in BufReader::new(stderr).lines() {
        err_text.push_str(&line.unwrap());
        err_text.push('\n');
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{err_text}");
    let out = std::fs::read_to_string(&output).unwrap();
    let results: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), lines);
    // In input order, each equal to the local model's score.
    let local = load(&dir(), 512);
    let mut local = Pipeline::local(Arc::clone(&local));
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["id"], i, "{r}");
        assert!(r.get("error").is_none(), "{r}");
    }
    for i in (0..lines).step_by(97) {
        let r = &results[i];
        let mine = local
            .score_pairs(&[(
                r["prompt"].as_str().unwrap(),
                r["response"].as_str().unwrap(),
            )])
            .remove(0)
            .unwrap();
        let got: Vec<f32> = mine
            .scores
            .iter()
            .zip(r["scores"].as_object().unwrap().values())
            .map(|(_, v)| v.as_f64().unwrap() as f32)
            .collect();
        assert!(max_abs_diff(&got, &mine.scores) <= TOL, "line {i}");
    }
    assert!(
        err_text.contains("stopped answering") || out.contains("stopped answering"),
        "the set-aside server is named: {err_text}"
    );
}
