//! What goes over the wire to a vLLM server, and the checks on what comes back. Every answer
//! is untrusted: its size is bounded before it is read, and each field is checked.

use serde::{Deserialize, Serialize};

/// `POST /pooling` with token ids; the scores are the raw head outputs.
#[derive(Debug, Serialize)]
pub struct PoolingRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<&'a str>,
    pub input: &'a [&'a [u32]],
    /// A classifier's softmax (or sigmoid) would turn ten scores into probabilities.
    pub use_activation: bool,
}

#[derive(Debug, Deserialize)]
struct PoolingResponse {
    data: Vec<PoolingItem>,
}

#[derive(Debug, Deserialize)]
struct PoolingItem {
    index: usize,
    data: Vec<f32>,
}

/// `GET /v1/models`.
#[derive(Debug, Deserialize)]
pub struct ModelList {
    pub data: Vec<ServedModel>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServedModel {
    pub id: String,
    #[serde(default)]
    pub root: Option<String>,
    #[serde(default)]
    pub max_model_len: Option<u64>,
}

/// The largest answer read: ten floats in JSON take ~250 bytes per input.
pub fn answer_limit(inputs: usize) -> usize {
    (64 << 10) + inputs.saturating_mul(8 << 10)
}

/// The rows of a pooling answer, in input order: exactly one per input, each `width` long.
pub fn rows(body: &[u8], inputs: usize, width: usize) -> Result<Vec<Vec<f32>>, String> {
    let answer: PoolingResponse = serde_json::from_slice(body)
        .map_err(|e| format!("the answer is not a pooling response: {e}"))?;
    if answer.data.len() != inputs {
        return Err(format!(
            "the answer has {} results for {inputs} inputs",
            answer.data.len()
        ));
    }
    let mut out: Vec<Option<Vec<f32>>> = vec![None; inputs];
    for item in answer.data {
        let slot = out
            .get_mut(item.index)
            .ok_or_else(|| format!("the answer names input {} of {inputs}", item.index))?;
        if slot.is_some() {
            return Err(format!("the answer gives input {} twice", item.index));
        }
        if item.data.len() != width {
            return Err(format!(
                "the server returns {} outputs per input; the model has {width} attributes",
                item.data.len()
            ));
        }
        *slot = Some(item.data);
    }
    Ok(out.into_iter().map(Option::unwrap_or_default).collect())
}

/// The message of a vLLM error answer (`{"error": {"message": …}}`), or the text itself,
/// shortened.
pub fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Outer {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        message: String,
    }
    let text = match serde_json::from_slice::<Outer>(body) {
        Ok(o) => o.error.message,
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let text = text.trim();
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// Whether rows look like probabilities: every value in [0, 1], each row summing to 1. A
/// softmax over ten raw scores gives exactly that; raw regression outputs practically never.
pub fn looks_like_softmax(rows: &[Vec<f32>]) -> bool {
    !rows.is_empty()
        && rows.iter().all(|r| {
            r.len() > 1
                && r.iter().all(|v| (0.0..=1.0).contains(v))
                && (r.iter().map(|&v| v as f64).sum::<f64>() - 1.0).abs() < 1e-3
        })
}

/// Whether a served model is `expected` (a hub id or a directory): the same name, or the same
/// last path component (a server started from a download of the repository).
pub fn serves(model: &ServedModel, expected: &str) -> bool {
    let last = |s: &str| {
        s.trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let want = last(expected);
    [Some(&model.id), model.root.as_ref()]
        .into_iter()
        .flatten()
        .any(|name| name == expected || (!want.is_empty() && last(name) == want))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_back_in_input_order_and_checked() {
        let body = br#"{"data":[{"index":1,"object":"pooling","data":[3,4]},{"index":0,"object":"pooling","data":[1,2]}],"usage":{}}"#;
        assert_eq!(rows(body, 2, 2).unwrap(), [vec![1.0, 2.0], vec![3.0, 4.0]]);
        assert!(rows(body, 3, 2).unwrap_err().contains("2 results for 3"));
        assert!(rows(body, 2, 10).unwrap_err().contains("returns 2 outputs"));
        let twice = br#"{"data":[{"index":0,"data":[1]},{"index":0,"data":[1]}]}"#;
        assert!(rows(twice, 2, 1).unwrap_err().contains("twice"));
        let beyond = br#"{"data":[{"index":5,"data":[1]}]}"#;
        assert!(rows(beyond, 1, 1).unwrap_err().contains("input 5"));
        assert!(rows(b"<html>", 1, 1).unwrap_err().contains("not a pooling"));
        // JSON has no NaN: a server cannot smuggle one in as a number.
        assert!(rows(br#"{"data":[{"index":0,"data":[NaN]}]}"#, 1, 1).is_err());
    }

    #[test]
    fn softmax_is_told_from_raw_scores() {
        assert!(looks_like_softmax(&[vec![0.1, 0.2, 0.7]]));
        assert!(!looks_like_softmax(&[vec![0.1, 0.2, 0.6]]));
        assert!(!looks_like_softmax(&[vec![-0.5, 1.5]]));
        assert!(!looks_like_softmax(&[vec![1.0]]));
    }

    #[test]
    fn a_served_model_is_matched_by_name_or_directory() {
        let m = |id: &str, root: Option<&str>| ServedModel {
            id: id.into(),
            root: root.map(String::from),
            max_model_len: None,
        };
        let dpa = "RLHFlow/RewardModel-Mistral-7B-for-DPA-v1";
        assert!(serves(&m(dpa, None), dpa));
        assert!(serves(
            &m("x", Some("/models/RewardModel-Mistral-7B-for-DPA-v1/")),
            dpa
        ));
        assert!(!serves(&m("/m/ArmoRM-Llama3-8B-v0.1", None), dpa));
        assert!(serves(&m("/a/b/fixture", None), "/c/fixture"));
    }

    #[test]
    fn error_messages_are_read_and_kept_short() {
        let body = br#"{"error":{"message":"Token id 9 is out of vocabulary","type":"BadRequestError","code":400}}"#;
        assert_eq!(error_message(body), "Token id 9 is out of vocabulary");
        assert_eq!(error_message(&[b'x'; 1000]).chars().count(), 301);
    }
}

#[cfg(test)]
mod fuzz {
    //! Fuzz targets (proptest) for what a server sends: any bytes, and pooling answers with
    //! their fields mutated, are refused or accepted without a panic, and what is accepted has
    //! one row per input of the right width.

    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    fn answer(indices: &[usize], widths: &[usize]) -> Vec<u8> {
        let data: Vec<Value> = indices
            .iter()
            .zip(widths)
            .map(|(&i, &w)| json!({"index": i, "object": "pooling", "data": vec![0.5; w]}))
            .collect();
        json!({"data": data}).to_string().into_bytes()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_bytes_are_refused_or_read(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(rows) = rows(&bytes, 2, 3) {
                prop_assert_eq!(rows.len(), 2);
                prop_assert!(rows.iter().all(|r| r.len() == 3));
            }
            let _ = error_message(&bytes);
        }

        #[test]
        fn mutated_answers_are_accepted_only_when_whole(
            indices in proptest::collection::vec(0usize..6, 0..6),
            widths in proptest::collection::vec(0usize..5, 6),
            inputs in 0usize..6,
        ) {
            let body = answer(&indices, &widths);
            match rows(&body, inputs, 3) {
                Ok(rows) => {
                    prop_assert_eq!(rows.len(), inputs);
                    prop_assert!(rows.iter().all(|r| r.len() == 3));
                    let mut seen = indices.clone();
                    seen.sort_unstable();
                    seen.dedup();
                    prop_assert_eq!(seen.len(), inputs);
                }
                Err(e) => prop_assert!(!e.is_empty()),
            }
        }
    }
}
