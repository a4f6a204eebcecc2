//! With the `cuda` feature, compiles the fused GPU kernels (src/model/gpu.cu) to PTX with nvcc,
//! which the same feature already needs for candle's kernels. Nothing happens otherwise.
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=src/model/gpu.cu");
    println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
    println!("cargo:rerun-if-env-changed=NVCC");
    if env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("gpu.ptx");
    let nvcc = env::var("NVCC").ok().unwrap_or_else(|| {
        ["CUDA_HOME", "CUDA_PATH"]
            .iter()
            .filter_map(|v| env::var(v).ok())
            .map(|dir| PathBuf::from(dir).join("bin/nvcc"))
            .find(|p| p.is_file())
            .map_or_else(|| "nvcc".to_string(), |p| p.display().to_string())
    });
    // PTX for the oldest architecture with bf16 arithmetic (sm_80), or CUDA_COMPUTE_CAP as
    // candle's kernels take it; the driver compiles it for the card at load time.
    let cap = env::var("CUDA_COMPUTE_CAP")
        .ok()
        .and_then(|c| c.replace('.', "").parse::<u32>().ok())
        .unwrap_or(80)
        .max(80);
    let status = Command::new(&nvcc)
        .args(["--ptx", "-O3", "-std=c++17"])
        .arg(format!("--gpu-architecture=compute_{cap}"))
        .arg("-o")
        .arg(&out)
        .arg("src/model/gpu.cu")
        .status()
        .unwrap_or_else(|e| panic!("cannot run {nvcc} for the cuda feature: {e}"));
    assert!(status.success(), "{nvcc} failed on src/model/gpu.cu");
}
