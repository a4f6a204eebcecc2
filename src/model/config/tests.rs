use super::*;

const V5: &str = r#"{
  "architectures": ["MistralForSequenceClassification"], "model_type": "mistral",
  "vocab_size": 32001, "hidden_size": 32, "intermediate_size": 80, "num_hidden_layers": 3,
  "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "rms_norm_eps": 1e-05,
  "rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"}, "sliding_window": 24,
  "pad_token_id": 32000, "dtype": "bfloat16",
  "id2label": {"0": "LABEL_0", "1": "LABEL_1", "2": "LABEL_2", "3": "LABEL_3", "4": "LABEL_4",
               "5": "LABEL_5", "6": "LABEL_6", "7": "LABEL_7", "8": "LABEL_8", "9": "LABEL_9"}
}"#;

#[test]
fn v5_dialect() {
    let c = MistralConfig::from_json(V5).unwrap();
    assert_eq!(c.rope_theta, 1e6);
    assert_eq!(c.head_dim, 16);
    assert_eq!(c.num_key_value_heads, 2);
    assert_eq!(c.sliding_window, Some(24));
    assert_eq!(c.stored_dtype.as_deref(), Some("bfloat16"));
    assert_eq!(c.num_labels, 10);
    assert_eq!(c.labels[0], "helpsteer-helpfulness");
    assert_eq!(c.labels[9], "ultrafeedback-helpfulness");
}

#[test]
fn v4_dialect_matches_v5() {
    let v4 = V5
        .replace(
            r#""rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"}"#,
            r#""rope_theta": 1000000.0"#,
        )
        .replace(r#""dtype""#, r#""torch_dtype""#);
    assert!(v4.contains("torch_dtype") && !v4.contains("rope_parameters"));
    assert_eq!(
        MistralConfig::from_json(&v4).unwrap(),
        MistralConfig::from_json(V5).unwrap()
    );
}

#[test]
fn head_dim_defaults_to_hidden_over_heads_and_null_window() {
    let j = V5
        .replace(r#""head_dim": 16,"#, "")
        .replace(r#""sliding_window": 24"#, r#""sliding_window": null"#);
    let c = MistralConfig::from_json(&j).unwrap();
    assert_eq!(c.head_dim, 8);
    assert_eq!(c.sliding_window, None);
}

#[test]
fn real_label_names_are_kept() {
    let j = V5.replace("LABEL_0", "my-helpfulness");
    let c = MistralConfig::from_json(&j).unwrap();
    assert_eq!(c.labels[0], "my-helpfulness");
    assert_eq!(c.labels[1], "LABEL_1");
}

#[test]
fn generic_labels_of_other_counts_stay_generic() {
    let j = r#"{"vocab_size": 10, "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1,
                "num_attention_heads": 2, "num_labels": 3}"#;
    let c = MistralConfig::from_json(j).unwrap();
    assert_eq!(c.labels, ["LABEL_0", "LABEL_1", "LABEL_2"]);
    assert_eq!(c.rope_theta, 10_000.0);
}

#[test]
fn refusals_say_why() {
    let e = MistralConfig::from_json(&V5.replace(r#""mistral""#, r#""phi3""#)).unwrap_err();
    assert!(e.to_string().contains("phi3"), "{e}");
    let e = MistralConfig::from_json(
        &V5.replace(r#""num_key_value_heads": 2"#, r#""num_key_value_heads": 3"#),
    )
    .unwrap_err();
    assert!(e.to_string().contains("multiple"), "{e}");
    let e = MistralConfig::from_json(
        &V5.replace(r#""rope_type": "default""#, r#""rope_type": "yarn""#),
    )
    .unwrap_err();
    assert!(e.to_string().contains("yarn"), "{e}");
    let e = MistralConfig::from_json("{not json").unwrap_err();
    assert!(e.to_string().contains("config"), "{e}");
}

const LLAMA31: &str = r#"{
  "architectures": ["LlamaForSequenceClassification"], "model_type": "llama",
  "vocab_size": 128256, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
  "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 131072,
  "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
      "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
  "num_labels": 1
}"#;

#[test]
fn llama3_rope_scaling_is_read_in_both_dialects() {
    let c = MistralConfig::from_json(LLAMA31).unwrap();
    assert_eq!(c.family, Family::Llama);
    assert_eq!(c.rope_theta, 500000.0);
    let s = c.rope_scaling.unwrap();
    assert_eq!((s.factor, s.original_max_position_embeddings), (8.0, 8192));
    let v4 = LLAMA31.replace(
        r#""rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0,"#,
        r#""rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3","#,
    );
    assert_eq!(MistralConfig::from_json(&v4).unwrap(), c);
    let bad = LLAMA31.replace(r#""high_freq_factor": 4.0"#, r#""high_freq_factor": 1.0"#);
    let e = MistralConfig::from_json(&bad).unwrap_err();
    assert!(
        e.to_string().contains("low_freq_factor < high_freq_factor"),
        "{e}"
    );
}

/// transformers' `_compute_llama3_parameters` for head_dim 8, theta 500000, factor 8, 1 / 4,
/// 8192 (values printed by transformers 5 in float32; the third is in the blended band).
#[test]
fn llama3_inverse_frequencies_match_transformers() {
    let rope = Rope {
        theta: 500000.0,
        scaling: Some(Llama3Scaling {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 8192,
        }),
    };
    let got = rope.inv_freq(8);
    let want = [1.0f64, 0.037606031, 0.00052484602, 6.6478697e-6];
    for (g, w) in got.iter().zip(want) {
        assert!((*g as f64 - w).abs() <= 2e-7 * w, "{got:?} vs {want:?}");
    }
}

#[test]
fn qwen2_has_qkv_biases_and_no_window_unless_asked() {
    let j = LLAMA31.replace(
        r#""model_type": "llama""#,
        r#""model_type": "qwen2", "sliding_window": 16"#,
    );
    let c = MistralConfig::from_json(&j).unwrap();
    assert_eq!(c.family, Family::Qwen2);
    assert!(c.qkv_bias && !c.o_bias);
    assert_eq!(c.sliding_window, None);
    let on = j.replace(
        r#""sliding_window": 16"#,
        r#""sliding_window": 16, "use_sliding_window": true"#,
    );
    assert!(MistralConfig::from_json(&on).is_err());
    let llama = MistralConfig::from_json(&LLAMA31.replace(
        r#""num_labels": 1"#,
        r#""num_labels": 1, "attention_bias": true"#,
    ))
    .unwrap();
    assert!(llama.qkv_bias && llama.o_bias);
}

#[test]
fn gemma2_windows_alternate_unless_layer_types_say_otherwise() {
    let j = LLAMA31.replace(
        r#""model_type": "llama""#,
        r#""model_type": "gemma2", "hidden_activation": "gelu_pytorch_tanh", "sliding_window": 16,
           "query_pre_attn_scalar": 24, "attn_logit_softcapping": 50.0"#,
    );
    let c = MistralConfig::from_json(&j).unwrap();
    assert_eq!(c.family, Family::Gemma2);
    assert_eq!((c.layer_window(0), c.layer_window(1)), (Some(16), None));
    assert_eq!(c.attn_scale, Some(1.0 / 24f64.sqrt()));
    assert_eq!(c.attn_softcap, Some(50.0));
    let typed = j.replace(
        r#""sliding_window": 16,"#,
        r#""sliding_window": 16, "layer_types": ["full_attention", "sliding_attention"],"#,
    );
    let c = MistralConfig::from_json(&typed).unwrap();
    assert_eq!((c.layer_window(0), c.layer_window(1)), (None, Some(16)));
    let short = j.replace(
        r#""sliding_window": 16,"#,
        r#""sliding_window": 16, "layer_types": ["full_attention"],"#,
    );
    assert!(MistralConfig::from_json(&short).is_err());
    // The other families keep their one window on every layer.
    let m = MistralConfig::from_json(V5).unwrap();
    assert_eq!((m.layer_window(0), m.layer_window(2)), (Some(24), Some(24)));
}
