//! The kernel choices a first start times are kept and used by later starts (the real binary,
//! on the demo model): every start of a bf16 run scores alike, whatever a timing on a noisy
//! machine would have said, and a damaged file is timed again and replaced.

use std::path::Path;
use std::process::{Command, Stdio};

/// Scores of one pair from `score --demo` in `dtype`, with the cache under `home`.
fn scores(home: &Path, dtype: &str) -> Vec<f64> {
    let out = Command::new(env!("CARGO_BIN_EXE_dpa-explorer"))
        .env_remove("DPA_LOG")
        .env("HF_HOME", home.join("hf"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_DATA_HOME", home.join("data"))
        .args(["score", "--demo", "--device", "cpu", "--dtype", dtype])
        .args(["--prompt", "Name a prime.", "--response", "Seven is prime."])
        .stdin(Stdio::null())
        .output()
        .expect("run dpa-explorer");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    let scores: Vec<f64> = line["scores"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(scores.len(), 10, "{stdout}");
    scores
}

fn kept_file(home: &Path) -> std::path::PathBuf {
    home.join("cache/dpa-explorer/quantized/kernel-choices.json")
}

fn kept(home: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(kept_file(home)).unwrap()).unwrap()
}

/// Whether bf16's kernel is chosen by timing here: only where both of its AVX-512 kernels run.
fn bf16_is_timed() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx512bf16");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

#[test]
fn later_starts_use_the_kernel_choices_the_first_one_timed() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let first = scores(home, "bf16");
    if bf16_is_timed() {
        let file = kept(home);
        let widened = file["bf16_widened"].as_bool().expect("bf16's choice kept");
        assert!(
            file["machine"].as_str().unwrap().contains("dpa-explorer"),
            "{file}"
        );
        assert!(
            file.get("q12_over_bf16").is_none(),
            "a bf16 run uses no other choice: {file}"
        );
        assert_eq!(scores(home, "bf16"), first, "a later start scores alike");

        // The other kernel, as kept: it is used, not timed again, and it rounds differently,
        // so the scores show which ran.
        let flipped = std::fs::read_to_string(kept_file(home)).unwrap().replace(
            &format!("\"bf16_widened\": {widened}"),
            &format!("\"bf16_widened\": {}", !widened),
        );
        std::fs::write(kept_file(home), flipped).unwrap();
        let other = scores(home, "bf16");
        assert_eq!(
            kept(home)["bf16_widened"],
            !widened,
            "the kept choice stays"
        );
        assert_ne!(other, first, "the kept kernel ran");
        assert_eq!(scores(home, "bf16"), other);

        // A damaged file is ignored: timed again, and replaced with a whole one.
        std::fs::write(kept_file(home), b"{\"machine\": \"x\", \"bf16_wid").unwrap();
        scores(home, "bf16");
        assert!(kept(home)["bf16_widened"].is_boolean());
    } else {
        assert!(
            !kept_file(home).exists(),
            "one bf16 kernel here: nothing timed"
        );
    }

    // `auto` answers `q12` against bf16 once too, and keeps that beside bf16's kernel.
    let before = std::fs::read(kept_file(home))
        .ok()
        .map(|_| kept(home)["bf16_widened"].clone());
    scores(home, "auto");
    let file = kept(home);
    assert!(file["q12_over_bf16"].is_boolean(), "{file}");
    if let Some(before) = before {
        assert_eq!(file["bf16_widened"], before);
    }
    // Kept, it is used again: the file is left as it was.
    let bytes = std::fs::read(kept_file(home)).unwrap();
    scores(home, "auto");
    assert_eq!(std::fs::read(kept_file(home)).unwrap(), bytes);
}
