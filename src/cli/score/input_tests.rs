//! Tests of the JSON-lines reader, with a proptest fuzz target for the line parser.

use super::*;
use proptest::prelude::*;
use std::io::Cursor;

fn ok(line: &str) -> Pair {
    parse_line(1, line.as_bytes()).unwrap().unwrap()
}

fn err(number: usize, line: &[u8]) -> String {
    parse_line(number, line).unwrap().unwrap_err()
}

#[test]
fn a_bom_on_line_one_is_accepted_and_named_elsewhere() {
    let line = b"\xEF\xBB\xBF{\"prompt\": \"p\", \"response\": \"r\"}\r\n";
    let p = parse_line(1, line).unwrap().unwrap();
    assert_eq!((p.prompt.as_str(), p.response.as_str()), ("p", "r"));
    assert!(err(2, line).contains("byte-order mark"));
}

#[test]
fn pass_through_fields_keep_their_exact_text() {
    let p = ok(
        r#"{"id": 123456789012345678901234567890, "f": 0.1000000000000000055511151231257827, "n": [1, {"a": "}]\""}], "prompt": "p\u00e9", "response": "r", "big": 1e400}"#,
    );
    let get = |k: &str| {
        p.fields
            .iter()
            .find(|(key, _)| key == k)
            .unwrap()
            .1
            .as_str()
    };
    assert_eq!(get("id"), "123456789012345678901234567890");
    assert_eq!(get("f"), "0.1000000000000000055511151231257827");
    assert_eq!(get("n"), r#"[1, {"a": "}]\""}]"#);
    assert_eq!(get("big"), "1e400");
    assert_eq!(p.prompt, "pé");
}

#[test]
fn a_repeated_key_keeps_its_place_and_its_last_value() {
    let p = ok(r#"{"prompt": "a", "response": "r", "prompt": "b"}"#);
    assert_eq!(p.prompt, "b");
    assert_eq!(p.fields.len(), 2);
    assert_eq!(p.fields[0], ("prompt".to_string(), "\"b\"".to_string()));
}

#[test]
fn bad_lines_say_what_is_wrong() {
    assert!(err(1, b"{bad").contains("not valid JSON at column 2"));
    assert!(err(1, b"[1]").contains("expected a JSON object"));
    assert!(err(1, b"{\"prompt\": \"p\"}").contains("missing \"response\""));
    assert!(err(1, b"{\"prompt\": 1, \"response\": \"r\"}").contains("must be a string"));
    assert!(err(1, b"\xff").contains("UTF-8"));
    assert!(parse_line(1, b"  \r\n").is_none());
}

#[test]
fn jsonl_lines_are_numbered_and_bad_ones_named() {
    let input = b"{\"prompt\": \"p\", \"response\": \"r\", \"id\": 7}\n\n{bad\n[1]\n{\"prompt\": \"p\"}\n\xff\xfe\n{\"prompt\": 1, \"response\": \"r\"}\r\n";
    let recs = parse_jsonl(input);
    assert_eq!(recs.len(), 6);
    match &recs[0] {
        Record::Pair { line, fields, .. } => {
            assert_eq!(*line, 1);
            assert_eq!(fields["id"], 7);
        }
        r => panic!("{r:?}"),
    }
    let bad: Vec<(usize, String)> = recs
        .iter()
        .filter_map(|r| match r {
            Record::Bad { line, error } => Some((*line, error.clone())),
            _ => None,
        })
        .collect();
    let lines: Vec<usize> = bad.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, [3, 4, 5, 6, 7]);
    assert!(bad[0].1.contains("JSON"));
    assert!(bad[2].1.contains("missing \"response\""));
    assert!(bad[3].1.contains("UTF-8"));
    assert!(bad[4].1.contains("must be a string"));
}

#[test]
fn an_overlong_line_is_skipped_without_being_held() {
    let mut text = b"{\"prompt\": \"p\", \"response\": \"".to_vec();
    text.extend(std::iter::repeat_n(b'x', 5000));
    text.extend_from_slice(b"\"}\n");
    let first_len = text.len();
    text.extend_from_slice(b"{\"prompt\": \"p\", \"response\": \"r\"}\n");
    let reader = LineReader::spawn_with(Box::new(Cursor::new(text)), 1000, 1 << 20).unwrap();
    let window = reader.next_window(10, 1 << 20).unwrap();
    assert_eq!(window.len(), 2);
    assert_eq!(window[0].number, 1);
    let e = window[0].parsed.as_ref().unwrap_err();
    assert!(
        e.contains(&format!("has {first_len} bytes")) && e.contains("over 1000"),
        "{e}"
    );
    assert_eq!(window[1].parsed.as_ref().unwrap().response, "r");
    assert!(reader.next_window(10, 1 << 20).unwrap().is_empty());
}

#[test]
fn the_reader_stays_within_its_budget_until_lines_are_done_with() {
    let line = "{\"prompt\": \"p\", \"response\": \"r\"}\n";
    let text = line.repeat(10_000);
    // Room for a few lines only: the reader must wait for the scorer.
    let reader = LineReader::spawn_with(Box::new(Cursor::new(text)), 1000, 1000).unwrap();
    let mut seen = 0;
    loop {
        std::thread::sleep(Duration::from_millis(1));
        let held = *reader.budget.held.lock().unwrap();
        // At most the budget plus the one line read while there was room.
        assert!(held <= 1000 + 2 * line.len() + LINE_OVERHEAD, "{held}");
        let window = reader.next_window(usize::MAX, usize::MAX).unwrap();
        if window.is_empty() {
            break;
        }
        seen += window.len();
        reader.done_with(&window);
    }
    assert_eq!(seen, 10_000);
}

#[test]
fn windows_are_bounded_in_lines() {
    let text = "{\"prompt\": \"p\", \"response\": \"r\"}\n".repeat(100);
    let reader = LineReader::spawn(Box::new(Cursor::new(text))).unwrap();
    let mut sizes = Vec::new();
    loop {
        let w = reader.next_window(16, usize::MAX).unwrap();
        if w.is_empty() {
            break;
        }
        sizes.push(w.len());
        reader.done_with(&w);
    }
    assert!(sizes.iter().all(|n| *n <= 16), "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), 100);
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".*".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::vec(("[a-z\"\\\\]{0,4}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn fuzz_arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200), n in 1usize..4) {
        let _ = parse_line(n, &bytes);
    }

    #[test]
    fn fuzz_json_like_bytes_never_panic(text in r#"[{}\[\]":,\\ a-z0-9.eE+-]{0,80}"#) {
        let _ = parse_line(1, text.as_bytes());
    }

    #[test]
    fn fuzz_valid_lines_round_trip_their_fields(
        fields in prop::collection::vec(("[a-z\"\\\\é]{0,6}", json_value()), 0..6),
        prompt in ".*",
        response in ".*",
        big in "[1-9][0-9]{20,40}",
    ) {
        let mut object = serde_json::Map::new();
        for (k, v) in fields {
            object.insert(k, v);
        }
        object.insert("prompt".into(), Value::from(prompt.clone()));
        object.insert("response".into(), Value::from(response.clone()));
        let mut line = Value::Object(object.clone()).to_string();
        // A number no f64 holds exactly, spliced in as text.
        line.insert_str(1, &format!("\"big_id\": {big}, "));
        let pair = parse_line(1, line.as_bytes()).unwrap().unwrap();
        prop_assert_eq!(&pair.prompt, &prompt);
        prop_assert_eq!(&pair.response, &response);
        prop_assert_eq!(&pair.fields[0], &("big_id".to_string(), big));
        let expected: Vec<(String, String)> =
            object.iter().map(|(k, v)| (k.clone(), v.to_string())).collect();
        prop_assert_eq!(&pair.fields[1..], expected.as_slice());
    }
}
