//! Fuzz targets (proptest) for the parsers of a model directory's untrusted bytes: config.json,
//! a safetensors header, a shard index. Each must refuse or accept without panicking, and what
//! it accepts must hold the invariants the loader relies on. Case counts keep each target to a
//! few seconds in release.

use std::path::{Component, Path};

use dpa_explorer::model::config::MAX_LABELS;
use dpa_explorer::model::files::shard_names;
use dpa_explorer::model::weights::tensor_table;
use dpa_explorer::model::MistralConfig;
use proptest::prelude::*;
use serde_json::{json, Value};

const CONFIG: &str = r#"{
  "architectures": ["MistralForSequenceClassification"], "model_type": "mistral",
  "vocab_size": 32001, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
  "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "rms_norm_eps": 1e-05,
  "rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"}, "sliding_window": 24,
  "max_position_embeddings": 32768, "pad_token_id": 32000, "bos_token_id": 1, "num_labels": 10
}"#;

const KEYS: [&str; 20] = [
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "rms_norm_eps",
    "rope_theta",
    "rope_parameters",
    "rope_scaling",
    "sliding_window",
    "max_position_embeddings",
    "pad_token_id",
    "bos_token_id",
    "num_labels",
    "id2label",
    "model_type",
    "hidden_act",
    "auto_map",
];

/// Values a crafted config might hold: edge integers and floats, and other JSON kinds.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<u64>().prop_map(|n| json!(n)),
        any::<i64>().prop_map(|n| json!(n)),
        (0u32..64).prop_map(|b| json!(1u64 << b)),
        (0u32..64).prop_map(|b| json!((1u64 << b).wrapping_sub(1))),
        prop_oneof![Just(0u64), Just(1), Just(2), Just(3), Just(u64::MAX)].prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        prop_oneof![
            Just(0.0f64),
            Just(-0.0),
            Just(1e-300),
            Just(1e300),
            Just(-1.0),
            Just(1e-45)
        ]
        .prop_map(|f| json!(f)),
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        "[a-zA-Z0-9_]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z0-9_]{1,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn assert_sound(cfg: &MistralConfig) {
    assert_eq!(cfg.labels.len(), cfg.num_labels);
    assert!((1..=MAX_LABELS).contains(&cfg.num_labels));
    assert!(cfg.parameter_count() < u64::MAX);
    assert!(cfg.num_attention_heads.checked_mul(cfg.head_dim).is_some());
    assert!(cfg.vocab_size.checked_mul(cfg.hidden_size).is_some());
    assert!(cfg.head_dim > 0 && cfg.num_hidden_layers > 0 && cfg.intermediate_size > 0);
    assert!(cfg.rope_theta.is_finite() && cfg.rope_theta > 0.0);
    assert!(cfg.rms_norm_eps > 0.0 && (cfg.rms_norm_eps as f32) > 0.0);
    assert_ne!(cfg.sliding_window, Some(0));
    assert!(cfg
        .pad_token_id
        .is_none_or(|p| (p as usize) < cfg.vocab_size));
}

/// A plain relative path: what every accepted shard name must be.
fn is_inside(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('\\')
        && !name.chars().any(char::is_control)
        && Path::new(name)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

fn path_part() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("..".to_string()),
        Just(".".to_string()),
        Just("".to_string()),
        Just("a\\b".to_string()),
        Just("x\u{0}y".to_string()),
        Just("model-00001-of-00002.safetensors".to_string()),
        (250usize..260).prop_map(|n| "s".repeat(n)),
        "[a-zA-Z0-9._-]{1,12}",
    ]
}

fn shard_name() -> impl Strategy<Value = String> {
    (any::<bool>(), prop::collection::vec(path_part(), 1..4)).prop_map(|(absolute, parts)| {
        format!("{}{}", if absolute { "/" } else { "" }, parts.join("/"))
    })
}

/// A safetensors file: declared header length, header JSON, trailing data.
fn safetensors_file() -> impl Strategy<Value = Vec<u8>> {
    let dtype = prop_oneof![
        Just("BF16"),
        Just("F16"),
        Just("F32"),
        Just("F64"),
        Just("I64"),
        Just("BOOL"),
        Just("F4"),
        Just("x")
    ];
    let dim = prop_oneof![
        0usize..40,
        Just(usize::MAX),
        Just(1 << 31),
        Just((1 << 62) + 1)
    ];
    let offset = prop_oneof![0usize..600, Just(usize::MAX), Just(1 << 40)];
    let tensor = (
        dtype,
        prop::collection::vec(dim, 0..4),
        offset.clone(),
        offset,
    );
    let header = prop::collection::btree_map("[a-z.0-9]{1,12}", tensor, 0..4).prop_map(|m| {
        let mut obj = serde_json::Map::new();
        for (name, (dtype, shape, a, b)) in m {
            obj.insert(
                name,
                json!({"dtype": dtype, "shape": shape, "data_offsets": [a, b]}),
            );
        }
        Value::Object(obj).to_string()
    });
    (header, prop::option::of(any::<u64>()), 0usize..600).prop_map(|(header, lie, data)| {
        let len = lie.unwrap_or(header.len() as u64);
        let mut bytes = len.to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.resize(bytes.len() + data, 0);
        bytes
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn fuzz_config_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(cfg) = MistralConfig::from_json(&String::from_utf8_lossy(&bytes)) {
            assert_sound(&cfg);
        }
    }

    #[test]
    fn fuzz_config_mutated(edits in prop::collection::vec((0..KEYS.len(), value()), 1..5)) {
        let mut cfg: Value = serde_json::from_str(CONFIG).unwrap();
        for (k, v) in edits {
            cfg[KEYS[k]] = v;
        }
        match MistralConfig::from_json(&cfg.to_string()) {
            Ok(c) => assert_sound(&c),
            Err(e) => prop_assert!(e.to_string().len() < 1000, "{e}"),
        }
    }

    #[test]
    fn fuzz_safetensors_header(bytes in safetensors_file()) {
        if let Ok(table) = tensor_table(&bytes) {
            for t in table {
                let (a, b) = t.range;
                prop_assert!(a <= b && b <= bytes.len());
                let n: usize = t.shape.iter().product();
                prop_assert_eq!(b - a, n * t.dtype.size_in_bytes());
            }
        }
    }

    #[test]
    fn fuzz_safetensors_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = tensor_table(&bytes);
    }

    #[test]
    fn fuzz_shard_index(names in prop::collection::vec(shard_name(), 1..5)) {
        let map: serde_json::Map<String, Value> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("t{i}"), json!(n)))
            .collect();
        let index = json!({"metadata": {"total_size": 1}, "weight_map": map}).to_string();
        match shard_names(index.as_bytes()) {
            Ok(accepted) => {
                prop_assert!(accepted.iter().all(|n| is_inside(n)), "{accepted:?}");
                prop_assert!(names.iter().all(|n| is_inside(n)), "{names:?} accepted");
            }
            Err(e) => {
                prop_assert!(!names.iter().all(|n| is_inside(n) && n.len() < 255), "{names:?}: {e}");
                prop_assert!(e.len() < 1000, "{e}");
            }
        }
    }

    #[test]
    fn fuzz_shard_index_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(names) = shard_names(&bytes) {
            prop_assert!(names.iter().all(|n| is_inside(n)));
        }
    }
}
