use super::*;
use std::sync::Mutex;

use crate::scoring::fake::FakeBackend;

/// Scores an input as (len(prompt), len(response)); every input slowed by `slow` when given.
fn fake(slow: Option<Duration>, panic_on: Option<&str>) -> FakeBackend {
    let mut f = FakeBackend::new(&["a", "b"], |p, r| vec![p.len() as f32, r.len() as f32]);
    f.delay = slow;
    f.panic_on = panic_on.map(String::from);
    f
}

fn spawn(backend: FakeBackend) -> (Engine, mpsc::Receiver<EngineEvent>) {
    let loader: Loader = Box::new(move |_| Ok(backend.pipeline()));
    let (tx, rx) = mpsc::channel();
    let e = Engine::spawn(loader, 16, move |ev| {
        let _ = tx.send(ev);
    });
    (e, rx)
}

fn engine(
    slow: Option<Duration>,
    panic_on: Option<&str>,
) -> (Engine, mpsc::Receiver<EngineEvent>, Arc<Mutex<Vec<String>>>) {
    let f = fake(slow, panic_on);
    let calls = f.calls.clone();
    let (e, rx) = spawn(f);
    (e, rx, calls)
}

fn item(slot: u64, r: &str) -> ScoreItem {
    ScoreItem {
        slot,
        prompt: "p".into(),
        response: r.into(),
    }
}

fn until_finished(rx: &mpsc::Receiver<EngineEvent>, id: RequestId) -> Vec<EngineEvent> {
    let mut out = Vec::new();
    loop {
        let ev = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("engine answers");
        let done = matches!(&ev, EngineEvent::Finished { request, .. } if *request == id);
        out.push(ev);
        if done {
            return out;
        }
    }
}

#[test]
fn ready_then_scores_then_cache_hits() {
    let (e, rx, calls) = engine(None, None);
    assert!(matches!(rx.recv().unwrap(), EngineEvent::Ready { .. }));
    let id = e.score(vec![item(0, "xy")]);
    let evs = until_finished(&rx, id);
    let scored: Vec<_> = evs
        .iter()
        .filter_map(|ev| match ev {
            EngineEvent::Scored { result, cached, .. } => {
                Some((result.clone().unwrap().scores, *cached))
            }
            _ => None,
        })
        .collect();
    assert_eq!(scored, vec![(vec![1.0, 2.0], false)]);
    let id = e.score(vec![item(0, "xy"), item(1, "xyz")]);
    let evs = until_finished(&rx, id);
    let cached: Vec<bool> = evs
        .iter()
        .filter_map(|ev| match ev {
            EngineEvent::Scored { cached, .. } => Some(*cached),
            _ => None,
        })
        .collect();
    assert_eq!(cached, vec![true, false]);
    assert_eq!(
        *calls.lock().unwrap(),
        vec!["xy".to_string(), "xyz".to_string()]
    );
}

#[test]
fn a_newer_request_supersedes_the_one_in_flight() {
    let (e, rx, calls) = engine(Some(Duration::from_millis(300)), None);
    assert!(matches!(rx.recv().unwrap(), EngineEvent::Ready { .. }));
    let first = e.score(vec![item(0, "old")]);
    // Let the first request start computing, then replace it.
    loop {
        if let EngineEvent::Started { request, .. } = rx.recv().unwrap() {
            assert_eq!(request, first);
            break;
        }
    }
    let second = e.score(vec![item(0, "new")]);
    let evs = until_finished(&rx, second);
    assert!(evs.contains(&EngineEvent::Superseded { request: first }));
    assert!(!evs
        .iter()
        .any(|ev| matches!(ev, EngineEvent::Scored { request, .. } if *request == first)));
    assert_eq!(*calls.lock().unwrap(), vec!["new".to_string()]);
}

#[test]
fn a_panic_while_scoring_is_an_error_and_the_engine_lives_on() {
    let (e, rx, _) = engine(None, Some("bad"));
    assert!(matches!(rx.recv().unwrap(), EngineEvent::Ready { .. }));
    let id = e.score(vec![item(0, "bad")]);
    let evs = until_finished(&rx, id);
    assert!(evs.iter().any(|ev| matches!(ev,
        EngineEvent::Scored { result: Err(ScoreError::Panicked(msg)), .. } if msg.contains("boom"))));
    let id = e.score(vec![item(0, "fine")]);
    let evs = until_finished(&rx, id);
    assert!(evs
        .iter()
        .any(|ev| matches!(ev, EngineEvent::Scored { result: Ok(_), .. })));
}

#[test]
fn a_failed_load_is_reported_and_requests_get_errors() {
    let loader: Loader = Box::new(|progress| {
        progress(LoadStage::Loading {
            what: "weights".into(),
        });
        Err(LoadError::Model("no weights here".into()))
    });
    let (tx, rx) = mpsc::channel();
    let e = Engine::spawn(loader, 4, move |ev| {
        let _ = tx.send(ev);
    });
    assert!(matches!(
        rx.recv().unwrap(),
        EngineEvent::Progress(LoadStage::Loading { .. })
    ));
    assert_eq!(
        rx.recv().unwrap(),
        EngineEvent::LoadFailed {
            error: LoadError::Model("no weights here".into())
        }
    );
    let id = e.score(vec![item(0, "x")]);
    let evs = until_finished(&rx, id);
    assert!(evs.iter().any(|ev| matches!(
        ev,
        EngineEvent::Scored {
            result: Err(ScoreError::NotLoaded),
            ..
        }
    )));
}

#[test]
fn forgetting_a_slot_reaches_the_backend() {
    let f = fake(None, None);
    let forgotten = f.forgotten.clone();
    let (e, rx) = spawn(f);
    assert!(matches!(rx.recv().unwrap(), EngineEvent::Ready { .. }));
    e.forget(3);
    e.forget(5);
    // Queued behind the forgets: they are applied, not dropped as older commands.
    let id = e.score(vec![item(0, "x")]);
    until_finished(&rx, id);
    assert_eq!(*forgotten.lock().unwrap(), vec![3, 5]);
}

#[test]
fn non_finite_scores_arrive_as_errors_and_are_not_cached() {
    // A NaN and an infinity for the response "bad", finite scores otherwise.
    let (e, rx) = spawn(FakeBackend::new(&["a", "b"], |_, r| {
        if r == "bad" {
            vec![f32::NAN, f32::INFINITY]
        } else {
            vec![1.0, 2.0]
        }
    }));
    assert!(matches!(rx.recv().unwrap(), EngineEvent::Ready { .. }));
    for _ in 0..2 {
        let id = e.score(vec![item(0, "bad"), item(1, "good")]);
        let results: Vec<(String, Result<Vec<f32>, ScoreError>, bool)> = until_finished(&rx, id)
            .into_iter()
            .filter_map(|ev| match ev {
                EngineEvent::Scored {
                    item,
                    result,
                    cached,
                    ..
                } => Some((item.response, result.map(|s| s.scores), cached)),
                _ => None,
            })
            .collect();
        let bad = results.iter().find(|r| r.0 == "bad").expect("bad answered");
        let error = bad.1.clone().expect_err("a NaN is no score");
        assert!(matches!(error, ScoreError::NonFinite(_)), "{error:?}");
        let error = error.to_string();
        assert!(
            error.contains("a = NaN") && error.contains("b = inf"),
            "{error}"
        );
        assert!(!bad.2, "never served from the cache");
        let good = results
            .iter()
            .find(|r| r.0 == "good")
            .expect("good answered");
        assert_eq!(good.1, Ok(vec![1.0, 2.0]));
    }
}

fn next_trajectory(rx: &mpsc::Receiver<EngineEvent>) -> EngineEvent {
    loop {
        let ev = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("engine answers");
        if matches!(
            ev,
            EngineEvent::Trajectory { .. } | EngineEvent::Superseded { .. }
        ) {
            return ev;
        }
    }
}

#[test]
fn a_trajectory_is_answered_with_one_point_per_word() {
    let (e, rx, _) = engine(None, None);
    let id = e.trajectory(7, "pp".into(), "a bc def".into(), Every::Word);
    match next_trajectory(&rx) {
        EngineEvent::Trajectory {
            request,
            slot,
            result: Ok(points),
        } => {
            assert_eq!((request, slot), (id, 7));
            let ends: Vec<usize> = points.iter().map(|p| p.end).collect();
            assert_eq!(ends, [1, 4, 8]);
            assert_eq!(points[0].scores, [2.0, 1.0]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_newer_score_request_supersedes_a_trajectory() {
    let (e, rx, _) = engine(Some(Duration::from_millis(100)), None);
    let id = e.trajectory(
        1,
        "p".into(),
        "one two three four five six".into(),
        Every::Word,
    );
    std::thread::sleep(Duration::from_millis(150));
    let score = e.score(vec![item(1, "x")]);
    assert_eq!(
        next_trajectory(&rx),
        EngineEvent::Superseded { request: id }
    );
    let events = until_finished(&rx, score);
    assert!(events
        .iter()
        .any(|ev| matches!(ev, EngineEvent::Scored { request, .. } if *request == score)));
}

#[test]
fn a_request_replaced_while_queued_is_answered_as_superseded() {
    // The model is still loading while a trajectory and then a score are asked for: only the
    // score runs, and the trajectory is not left unanswered.
    let (go, wait) = mpsc::channel::<()>();
    let backend = fake(None, None);
    let loader: Loader = Box::new(move |_| {
        wait.recv().expect("released");
        Ok(backend.pipeline())
    });
    let (tx, rx) = mpsc::channel();
    let e = Engine::spawn(loader, 16, move |ev| {
        let _ = tx.send(ev);
    });
    let traj = e.trajectory(1, "p".into(), "one two".into(), Every::Word);
    let score = e.score(vec![item(1, "x")]);
    go.send(()).unwrap();
    assert_eq!(
        next_trajectory(&rx),
        EngineEvent::Superseded { request: traj }
    );
    let events = until_finished(&rx, score);
    assert!(events
        .iter()
        .any(|ev| matches!(ev, EngineEvent::Scored { request, .. } if *request == score)));
}

/// The fake, with the cost note a remote backend gives.
struct Noted(FakeBackend);

const NOTE: &str = "every prefix is a request of its own";

impl crate::scoring::Backend for Noted {
    fn info(&self) -> crate::model::ModelInfo {
        self.0.info()
    }

    fn warnings(&self) -> Vec<String> {
        self.0.warnings()
    }

    fn score(
        &mut self,
        jobs: &[crate::scoring::Job<'_>],
        stop: &dyn Fn() -> bool,
        done: &mut dyn FnMut(usize, Result<Vec<f32>, ScoreError>),
    ) -> Result<(), ScoreError> {
        self.0.score(jobs, stop, done)
    }

    fn trajectory_note(&self) -> Option<String> {
        Some(NOTE.into())
    }
}

#[test]
fn a_backend_s_trajectory_cost_follows_ready_and_only_when_it_has_one() {
    let noted = Noted(fake(None, None));
    let loader: Loader = Box::new(move |_| {
        let encoder = crate::scoring::fake::encoder(crate::model::DEFAULT_MAX_TOKENS);
        Ok(Pipeline::new(encoder, Box::new(noted)))
    });
    let (tx, rx) = mpsc::channel();
    let e = Engine::spawn(loader, 16, move |ev| {
        let _ = tx.send(ev);
    });
    assert!(matches!(rx.recv().unwrap(), EngineEvent::Ready { .. }));
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)),
        Ok(EngineEvent::TrajectoryNote(NOTE.into()))
    );
    drop(e);

    let (e, rx, _) = engine(None, None);
    assert!(matches!(rx.recv().unwrap(), EngineEvent::Ready { .. }));
    let id = e.score(vec![item(0, "x")]);
    let events = until_finished(&rx, id);
    assert!(
        !events
            .iter()
            .any(|ev| matches!(ev, EngineEvent::TrajectoryNote(_))),
        "{events:?}"
    );
}

#[test]
fn a_weight_check_that_is_over_is_reported_once_as_done() {
    let (tx, rx) = mpsc::channel();
    let events: Events = Arc::new(move |ev| {
        let _ = tx.send(ev);
    });
    let over = crate::model::integrity::Integrity::with_outcome(Some(Ok(())));
    report_weight_check(over, events);
    let ev = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        ev,
        EngineEvent::WeightCheck {
            checked: 0,
            total: 0,
            done: true
        }
    );
    // The reporter has stopped: its sender is gone, nothing more comes.
    assert!(matches!(
        rx.recv_timeout(Duration::from_secs(1)),
        Err(mpsc::RecvTimeoutError::Disconnected)
    ));
}
