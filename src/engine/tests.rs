use super::*;
use std::sync::Mutex;

fn info() -> ModelInfo {
    ModelInfo {
        labels: vec!["a".into(), "b".into()],
        device: "cpu".into(),
        dtype: "f32".into(),
        stored_dtype: "bf16".into(),
        parameters: 1,
        layers: 1,
        max_tokens: 16,
        context: 16,
    }
}

/// Scores an item as (len(prompt), len(response)); waits on `gate` per item when given.
struct Fake {
    calls: Arc<Mutex<Vec<String>>>,
    slow: Option<Duration>,
    panic_on: Option<String>,
}

impl Backend for Fake {
    fn info(&self) -> ModelInfo {
        info()
    }
    fn warnings(&self) -> Vec<String> {
        vec![]
    }
    fn score(
        &mut self,
        items: &[ScoreItem],
        stop: &dyn Fn() -> bool,
        done: &mut dyn FnMut(usize, Result<Scored, String>),
    ) -> Result<(), ModelError> {
        for (i, it) in items.iter().enumerate() {
            if let Some(d) = self.slow {
                let end = Instant::now() + d;
                while Instant::now() < end {
                    if stop() {
                        return Err(ModelError::Cancelled);
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            if self.panic_on.as_deref() == Some(it.response.as_str()) {
                panic!("boom");
            }
            self.calls.lock().unwrap().push(it.response.clone());
            done(
                i,
                Ok(Scored {
                    tokens: 3,
                    truncated: false,
                    scores: vec![it.prompt.len() as f32, it.response.len() as f32],
                    warnings: vec![],
                }),
            );
        }
        Ok(())
    }

    /// One point per word: (len(prompt), end).
    fn trajectory(
        &mut self,
        prompt: &str,
        response: &str,
        every: Every,
        stop: &dyn Fn() -> bool,
    ) -> Result<Vec<Point>, ModelError> {
        let ends = crate::model::trajectory::boundaries(response, every, |_| Ok(vec![]))?;
        let mut out = Vec::new();
        for end in ends {
            if let Some(d) = self.slow {
                std::thread::sleep(d);
            }
            if stop() {
                return Err(ModelError::Cancelled);
            }
            out.push(Point {
                end,
                scores: vec![prompt.len() as f32, end as f32],
                tokens: end,
                truncated: false,
            });
        }
        Ok(out)
    }
}

fn engine(
    slow: Option<Duration>,
    panic_on: Option<&str>,
) -> (Engine, mpsc::Receiver<EngineEvent>, Arc<Mutex<Vec<String>>>) {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let c = calls.clone();
    let panic_on = panic_on.map(String::from);
    let loader: Loader = Box::new(move |_| {
        Ok(Box::new(Fake {
            calls: c,
            slow,
            panic_on,
        }) as Box<dyn Backend>)
    });
    let (tx, rx) = mpsc::channel();
    let e = Engine::spawn(loader, 16, move |ev| {
        let _ = tx.send(ev);
    });
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
        EngineEvent::Scored { result: Err(msg), .. } if msg.contains("boom"))));
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
        Err("no weights here".into())
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
            error: "no weights here".into()
        }
    );
    let id = e.score(vec![item(0, "x")]);
    let evs = until_finished(&rx, id);
    assert!(evs.iter().any(
        |ev| matches!(ev, EngineEvent::Scored { result: Err(m), .. } if m.contains("not loaded"))
    ));
}

#[test]
fn forgetting_a_slot_reaches_the_backend() {
    struct Rec(Arc<Mutex<Vec<u64>>>);
    impl Backend for Rec {
        fn info(&self) -> ModelInfo {
            info()
        }
        fn warnings(&self) -> Vec<String> {
            vec![]
        }
        fn score(
            &mut self,
            items: &[ScoreItem],
            _stop: &dyn Fn() -> bool,
            done: &mut dyn FnMut(usize, Result<Scored, String>),
        ) -> Result<(), ModelError> {
            for i in 0..items.len() {
                done(i, Err("unused".into()));
            }
            Ok(())
        }
        fn forget(&mut self, slot: u64) {
            self.0.lock().unwrap().push(slot);
        }
    }
    let forgotten = Arc::new(Mutex::new(Vec::new()));
    let f = forgotten.clone();
    let loader: Loader = Box::new(move |_| Ok(Box::new(Rec(f)) as Box<dyn Backend>));
    let (tx, rx) = mpsc::channel();
    let e = Engine::spawn(loader, 4, move |ev| {
        let _ = tx.send(ev);
    });
    assert!(matches!(rx.recv().unwrap(), EngineEvent::Ready { .. }));
    e.forget(3);
    e.forget(5);
    // Queued behind the forgets: they are applied, not dropped as older commands.
    let id = e.score(vec![item(0, "x")]);
    until_finished(&rx, id);
    assert_eq!(*forgotten.lock().unwrap(), vec![3, 5]);
}

/// Gives a NaN and an infinity for the response "bad", finite scores otherwise.
struct NonFinite;

impl Backend for NonFinite {
    fn info(&self) -> ModelInfo {
        info()
    }
    fn warnings(&self) -> Vec<String> {
        vec![]
    }
    fn score(
        &mut self,
        items: &[ScoreItem],
        _stop: &dyn Fn() -> bool,
        done: &mut dyn FnMut(usize, Result<Scored, String>),
    ) -> Result<(), ModelError> {
        for (i, it) in items.iter().enumerate() {
            let scores = if it.response == "bad" {
                vec![f32::NAN, f32::INFINITY]
            } else {
                vec![1.0, 2.0]
            };
            done(
                i,
                Ok(Scored {
                    tokens: 3,
                    truncated: false,
                    scores,
                    warnings: vec![],
                }),
            );
        }
        Ok(())
    }
}

#[test]
fn non_finite_scores_arrive_as_errors_and_are_not_cached() {
    let loader: Loader = Box::new(|_| Ok(Box::new(NonFinite) as Box<dyn Backend>));
    let (tx, rx) = mpsc::channel();
    let e = Engine::spawn(loader, 16, move |ev| {
        let _ = tx.send(ev);
    });
    assert!(matches!(rx.recv().unwrap(), EngineEvent::Ready { .. }));
    for _ in 0..2 {
        let id = e.score(vec![item(0, "bad"), item(1, "good")]);
        let results: Vec<(String, Result<Vec<f32>, String>, bool)> = until_finished(&rx, id)
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

/// A backend without trajectories says so.
struct Plain;

impl Backend for Plain {
    fn info(&self) -> ModelInfo {
        info()
    }
    fn warnings(&self) -> Vec<String> {
        vec![]
    }
    fn score(
        &mut self,
        _: &[ScoreItem],
        _: &dyn Fn() -> bool,
        _: &mut dyn FnMut(usize, Result<Scored, String>),
    ) -> Result<(), ModelError> {
        Ok(())
    }
}

#[test]
fn a_backend_without_trajectories_answers_with_an_error() {
    let loader: Loader = Box::new(|_| Ok(Box::new(Plain) as Box<dyn Backend>));
    let (tx, rx) = mpsc::channel();
    let e = Engine::spawn(loader, 4, move |ev| {
        let _ = tx.send(ev);
    });
    e.trajectory(1, "p".into(), "a b".into(), Every::Word);
    match next_trajectory(&rx) {
        EngineEvent::Trajectory { result: Err(m), .. } => {
            assert!(m.contains("no trajectories"), "{m}")
        }
        other => panic!("{other:?}"),
    }
}
