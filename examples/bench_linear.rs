//! Times the decoder's projections alone, at Mistral-7B's widths, in each CPU weight mode, and
//! prints one JSON object: the median time of each projection shape and the achieved GFLOP/s
//! over a layer's four products. `scripts/bench_vs_pytorch.py` runs it beside a plain GEMM
//! (PyTorch/oneDNN) of the same shapes, to report our kernels as a share of the GEMM rate.
//!
//! ```text
//! bench_linear --modes f32,bf16,q8_0,q4_0 --tokens 128,512 --runs 3
//! bench_linear --modes f32,f32_candle      # the f32 kernel beside candle's GEMM
//! bench_linear --modes q8_0,q8_0_candle    # ours beside candle's quantised product
//! ```
//!
//! The shapes are the products one layer runs, as this crate stores them (q/k/v and gate/up
//! fused): `[tokens, 4096] × [4096, 6144]`, `× [4096, 4096]`, `× [4096, 28672]` and
//! `[tokens, 14336] × [14336, 4096]`. Inputs are f32, as the model passes them.

use std::sync::Arc;
use std::time::Instant;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use clap::Parser;
use dpa_explorer::model::kernels::bf16::{f32_to_bf16, PackedBf16};
use dpa_explorer::model::kernels::f32::PackedF32;
use dpa_explorer::model::kernels::int8::{PackedQ, QFormat};
use dpa_explorer::model::kernels::q4k::PackedQ4K;
use dpa_explorer::model::kernels::Isa;
use dpa_explorer::model::linear::Linear;

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, value_delimiter = ',', default_value = "f32,bf16,q8_0,q4_0")]
    modes: Vec<String>,
    #[arg(long, value_delimiter = ',', default_value = "128,512")]
    tokens: Vec<usize>,
    /// Timed products per shape (after one warm-up).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Hidden and intermediate widths (Mistral-7B's by default).
    #[arg(long, default_value_t = 4096)]
    hidden: usize,
    #[arg(long, default_value_t = 14336)]
    intermediate: usize,
    #[arg(long, default_value_t = 1024)]
    kv: usize,
}

/// Deterministic values of magnitude ~0.02 (as an initialised model's), cheap to draw.
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.07
        })
        .collect()
}

fn linear(mode: &str, w: Vec<f32>, n: usize, k: usize) -> anyhow::Result<Linear> {
    let dev = Device::Cpu;
    Ok(match mode {
        // The f32 mode's own kernel where the CPU has one, as the model runs it.
        "f32" if PackedF32::best_isa() != Isa::Scalar => {
            Linear::PackedF32(Arc::new(PackedF32::from_rows(&w, n, k)))
        }
        // candle's GEMM, which the f32 mode used before its own kernel.
        "f32" | "f32_candle" => Linear::Dense {
            weight: Tensor::from_vec(w, (n, k), &dev)?,
        },
        "bf16" => {
            let bits: Vec<u16> = w.iter().map(|&v| f32_to_bf16(v)).collect();
            Linear::PackedBf16(Arc::new(PackedBf16::from_rows(&bits, n, k)))
        }
        "q8_0" | "q4_0" => {
            let (fmt, g) = if mode == "q8_0" {
                (QFormat::Q8, GgmlDType::Q8_0)
            } else {
                (QFormat::Q4, GgmlDType::Q4_0)
            };
            let t = QTensor::quantize(&Tensor::from_vec(w, (n, k), &dev)?, g)?;
            let mut p = PackedQ::zeroed(fmt, n, k);
            p.fill_ggml_rows(0, n, &t.data()?);
            Linear::PackedQ(Arc::new(p))
        }
        // candle's quantised product (8-bit activations), which runs where this crate has no
        // vector kernel.
        "q8_0_candle" | "q4_0_candle" => {
            let g = if mode == "q8_0_candle" {
                GgmlDType::Q8_0
            } else {
                GgmlDType::Q4_0
            };
            let t = QTensor::quantize(&Tensor::from_vec(w, (n, k), &dev)?, g)?;
            Linear::Quantized {
                weight: candle_core::quantized::QMatMul::from_arc(Arc::new(t))?,
                out: n,
            }
        }
        "q12" => {
            let mut p = PackedQ::zeroed(QFormat::Q12, n, k);
            p.fill_ggml_rows(0, n, &dpa_explorer::model::kernels::int8::quantize_q12(&w));
            Linear::PackedQ(Arc::new(p))
        }
        "q4_k" => {
            anyhow::ensure!(
                k.is_multiple_of(256),
                "q4_k needs whole 256-value super-blocks"
            );
            // Rows are contiguous and whole super-blocks: one pass quantises them all.
            let bytes = dpa_explorer::model::kquant::quantize_q4k(&w);
            let mut p = PackedQ4K::zeroed(n, k);
            p.fill_ggml_rows(0, n, &bytes);
            Linear::PackedQ4K(Arc::new(p))
        }
        other => anyhow::bail!("unknown mode {other}"),
    })
}

/// The instruction set a mode's own kernel runs on here ("" for candle's products).
fn kernel(mode: &str) -> &'static str {
    match mode {
        "f32" => PackedF32::best_isa().name(),
        "bf16" => PackedBf16::best_isa().name(),
        "q8_0" | "q4_0" | "q12" => PackedQ::best_isa().name(),
        "q4_k" => PackedQ4K::best_isa().name(),
        _ => "",
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (h, i) = (args.hidden, args.intermediate);
    let q = h;
    // (name, out, in)
    let shapes = [
        ("qkv", q + 2 * args.kv, h),
        ("o", h, q),
        ("gate_up", 2 * i, h),
        ("down", h, i),
    ];
    let mut modes = Vec::new();
    for mode in &args.modes {
        let mut rows = Vec::new();
        for (si, &(name, n, k)) in shapes.iter().enumerate() {
            let lin = linear(mode, values(n * k, si as u64 + 1), n, k)?;
            for &m in &args.tokens {
                let x = Tensor::from_vec(values(m * k, 99 + m as u64), (m, k), &Device::Cpu)?;
                lin.forward(&x)?;
                let mut times = Vec::with_capacity(args.runs);
                for _ in 0..args.runs.max(1) {
                    let t = Instant::now();
                    let y = lin.forward(&x)?;
                    times.push(t.elapsed().as_secs_f64());
                    drop(y);
                }
                times.sort_by(f64::total_cmp);
                rows.push(serde_json::json!({
                    "shape": name, "tokens": m, "n": n, "k": k,
                    "flop": 2.0 * (m * n * k) as f64,
                    "median_s": times[times.len() / 2], "times_s": times,
                }));
            }
        }
        modes.push(serde_json::json!({ "mode": mode, "kernel": kernel(mode), "shapes": rows }));
    }
    let out = serde_json::json!({
        "engine": "dpa-explorer",
        "threads": rayon::current_num_threads(),
        "modes": modes,
    });
    println!("{out}");
    Ok(())
}
