//! Where a model runs and how it computes: the device choice, the CPU modes (`--dtype`) with
//! the rank correlation each measured on trained weights and the bar it must meet, what each
//! mode means on a device (`ComputePlan`), and whether a model fits in this machine's memory.

use std::str::FromStr;
use std::sync::OnceLock;

use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device};

use super::kernels;
use super::linear::WeightFormat;
use super::ModelError;

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
    Metal,
}

impl FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            "metal" => Ok(Self::Metal),
            _ => match s.strip_prefix("cuda:").map(str::parse) {
                Some(Ok(n)) => Ok(Self::Cuda(n)),
                _ => Err(format!(
                    "unknown device {s:?}: use auto, cpu, cuda, cuda:N or metal"
                )),
            },
        }
    }
}

impl DeviceChoice {
    pub fn resolve(self) -> Result<Device, ModelError> {
        let err = |e: candle_core::Error, what: &str| ModelError::Device(format!("{what}: {e}"));
        match self {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Cuda(n) => {
                if !candle_core::utils::cuda_is_available() {
                    return Err(ModelError::Device(
                        "this build has no CUDA support: rebuild with `--features cuda`".into(),
                    ));
                }
                Device::new_cuda(n).map_err(|e| err(e, &format!("cannot open cuda:{n}")))
            }
            DeviceChoice::Metal => {
                if !candle_core::utils::metal_is_available() {
                    return Err(ModelError::Device(
                        "this build has no Metal support: rebuild with `--features metal`".into(),
                    ));
                }
                Device::new_metal(0).map_err(|e| err(e, "cannot open the Metal device"))
            }
            DeviceChoice::Auto => {
                if candle_core::utils::cuda_is_available() {
                    if let Ok(d) = Device::new_cuda(0) {
                        return Ok(d);
                    }
                }
                if candle_core::utils::metal_is_available() {
                    if let Ok(d) = Device::new_metal(0) {
                        return Ok(d);
                    }
                }
                Ok(Device::Cpu)
            }
        }
    }
}

/// How the model computes: the dtype of its weights (and, on a GPU, of its activations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DTypeChoice {
    /// On a GPU bf16. On the CPU the most precise mode that keeps the ranking (see
    /// [`DTypeChoice::measured_rank`]) and fits in the memory available: f32, else `q12` where
    /// it is faster than bf16 on this CPU ([`q12_beats_bf16`]), else bf16, else `q8_0` where
    /// this crate's 8-bit kernels run; see [`DTypeChoice::for_memory`].
    #[default]
    Auto,
    F32,
    /// bf16 weights. On the CPU the activations stay f32 and the projections run on this
    /// crate's bf16 kernels; on a GPU everything is bf16.
    BF16,
    F16,
    /// 12-bit blocks of 32 in 16-bit words, f32 activations (16-bit inside the products): about
    /// 2.06 bytes per weight, more precise than bf16, and on CPUs without bf16 instructions
    /// faster, its integer products taking twice the multiply-adds per instruction of the f32
    /// FMA a bf16 weight needs there; faster too on CPUs whose bf16 instruction is slow.
    Q12,
    /// 8-bit blocks of 32 (GGML `Q8_0`), f32 activations, and on this crate's CPU kernels the
    /// first and last decoder layers in `Q12` ([`ComputePlan::edge_weights`]): about 1.12 bytes
    /// per weight for the 7B (1.06 in `Q8_0`).
    Q8_0,
    /// 4-bit blocks of 32 (GGML `Q4_0`), f32 activations: about 0.56 bytes per weight.
    Q4_0,
    /// 4-bit super-blocks of 256 with 6-bit sub-block scales and minimums (GGML `Q4_K`), on
    /// this crate's kernel with 16-bit activations: about 0.58 bytes per weight.
    Q4K,
}

impl FromStr for DTypeChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "f32" | "float32" => Ok(Self::F32),
            "bf16" | "bfloat16" => Ok(Self::BF16),
            "f16" | "float16" => Ok(Self::F16),
            "q12" => Ok(Self::Q12),
            "q8_0" | "q8" => Ok(Self::Q8_0),
            "q4_0" => Ok(Self::Q4_0),
            // The 4-bit mode that keeps the ranking best.
            "q4_k" | "q4k" | "q4" => Ok(Self::Q4K),
            _ => Err(format!(
                "unknown dtype {s:?}: use auto, f32, bf16, f16, q12, q8_0, q4_k or q4_0"
            )),
        }
    }
}

/// What a [`DTypeChoice`] means on one device: the dtype activations flow in between the
/// projections, and how the projections' weights are held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComputePlan {
    pub activations: DType,
    pub weights: WeightFormat,
    /// How the first and last decoder layers hold theirs: on trained weights those two layers'
    /// rounding moved the ranking most, so `q8_0` keeps them in `q12` (2 of the 7B's 32 layers,
    /// 0.44 GB more) where this crate's integer kernels run.
    pub edge_weights: WeightFormat,
}

impl ComputePlan {
    /// How the projections of decoder layer `layer` (of `layers`; `None`: not a layer's) are
    /// held. A model of fewer than [`EDGE_MIN_LAYERS`] layers has no edges apart from its
    /// middle: the edges would be half its weights or more, and the mode no longer itself.
    pub fn layer_weights(&self, layer: Option<usize>, layers: usize) -> WeightFormat {
        match layer {
            Some(i) if layers >= EDGE_MIN_LAYERS && (i == 0 || i + 1 == layers) => {
                self.edge_weights
            }
            _ => self.weights,
        }
    }

    /// Bytes per weight on average over `layers` decoder layers of equal size.
    pub fn bytes_per_weight(&self, layers: usize) -> f64 {
        let edges = if layers >= EDGE_MIN_LAYERS { 2.0 } else { 0.0 };
        let layers = layers.max(1) as f64;
        (bytes_per_weight(self.edge_weights) * edges
            + bytes_per_weight(self.weights) * (layers - edges))
            / layers
    }
}

/// The fewest decoder layers a model has for its first and last to be held apart.
pub const EDGE_MIN_LAYERS: usize = 4;

fn bytes_per_weight(format: WeightFormat) -> f64 {
    match format {
        WeightFormat::Dense(d) => d.size_in_bytes() as f64,
        WeightFormat::PackedBf16 => 2.0,
        WeightFormat::PackedF32 => 4.0,
        WeightFormat::PackedQ12 => Q12_BYTES,
        WeightFormat::Quantized(q) => q.type_size() as f64 / q.block_size() as f64,
    }
}

impl DTypeChoice {
    /// The dtype activations flow in on `device`.
    pub fn resolve(self, device: &Device) -> DType {
        self.plan(device).activations
    }

    pub fn plan(self, device: &Device) -> ComputePlan {
        let dense = |d: DType| ComputePlan {
            activations: d,
            weights: WeightFormat::Dense(d),
            edge_weights: WeightFormat::Dense(d),
        };
        let f32_with = |weights| ComputePlan {
            activations: DType::F32,
            weights,
            edge_weights: weights,
        };
        match self {
            DTypeChoice::F32 | DTypeChoice::Auto
                if device.is_cpu()
                    && kernels::f32::PackedF32::best_isa() != kernels::Isa::Scalar =>
            {
                f32_with(WeightFormat::PackedF32)
            }
            DTypeChoice::F32 => dense(DType::F32),
            DTypeChoice::F16 => dense(DType::F16),
            DTypeChoice::BF16
                if device.is_cpu()
                    && kernels::bf16::PackedBf16::best_isa() != kernels::Isa::Scalar =>
            {
                f32_with(WeightFormat::PackedBf16)
            }
            DTypeChoice::BF16 => dense(DType::BF16),
            // A CPU mode (its kernels are this crate's CPU ones): a GPU runs bf16.
            DTypeChoice::Q12 if device.is_cpu() => f32_with(WeightFormat::PackedQ12),
            DTypeChoice::Q12 => dense(DType::BF16),
            DTypeChoice::Q8_0 if device.is_cpu() && kernels::int8::own_kernel_available() => {
                ComputePlan {
                    edge_weights: WeightFormat::PackedQ12,
                    ..f32_with(WeightFormat::Quantized(GgmlDType::Q8_0))
                }
            }
            DTypeChoice::Q8_0 => f32_with(WeightFormat::Quantized(GgmlDType::Q8_0)),
            DTypeChoice::Q4_0 => f32_with(WeightFormat::Quantized(GgmlDType::Q4_0)),
            DTypeChoice::Q4K => f32_with(WeightFormat::Quantized(GgmlDType::Q4K)),
            DTypeChoice::Auto if device.is_cpu() => dense(DType::F32),
            DTypeChoice::Auto => dense(DType::BF16),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DTypeChoice::Auto => "auto",
            DTypeChoice::F32 => "f32",
            DTypeChoice::BF16 => "bf16",
            DTypeChoice::F16 => "f16",
            DTypeChoice::Q12 => "q12",
            DTypeChoice::Q8_0 => "q8_0",
            DTypeChoice::Q4_0 => "q4_0",
            DTypeChoice::Q4K => "q4_k",
        }
    }
}

impl DTypeChoice {
    /// Every mode the CPU offers, most precise first.
    pub const CPU_MODES: [DTypeChoice; 7] = [
        DTypeChoice::F32,
        DTypeChoice::Q12,
        DTypeChoice::BF16,
        DTypeChoice::F16,
        DTypeChoice::Q8_0,
        DTypeChoice::Q4K,
        DTypeChoice::Q4_0,
    ];

    /// The Kendall rank correlation (per attribute, across inputs) against f32 scores that a
    /// mode must keep on trained weights to be offered: 0.95 for 16- and 8-bit modes, 0.90 for
    /// 4-bit ones (`tests/accuracy_trained.rs` holds every mode to it).
    pub fn rank_bar(self) -> Option<f64> {
        match self {
            DTypeChoice::Auto => None,
            DTypeChoice::Q4_0 | DTypeChoice::Q4K => Some(0.90),
            _ => Some(0.95),
        }
    }

    /// The smallest over attributes of Kendall's τ against transformers f32 that this mode
    /// measured on trained weights, the lowest over the bodies measured (BENCHMARKS.md, "On
    /// trained weights"): 360 pairs on SmolLM2-135M as shipped (on a `Q4_1` grid), the same with
    /// that grid undone by noise, and llama2.c's `stories15M` (trained in f32, never quantised).
    pub fn measured_rank(self) -> Option<f64> {
        match self {
            DTypeChoice::Auto => None,
            DTypeChoice::F32 => Some(1.0),
            // The AVX512-BF16 dot product, which rounds activations to bf16 too, on stories15M
            // (0.986–0.988 on the other bodies); widening to f32 FMA, as the AVX2 kernel does,
            // keeps them f32: 0.983–0.990.
            DTypeChoice::BF16 => Some(0.974),
            // 0.994–0.995.
            DTypeChoice::F16 => Some(0.994),
            DTypeChoice::Q12 => Some(Q12_MEASURED),
            // 16-bit activations in this crate's kernels (AVX512-VNNI, AVX2: the same integer
            // sums), the first and last layers in q12: 0.966 as shipped, 0.968 with the grid
            // undone, 0.981 on stories15M (each one's 90 % interval, the pairs drawn again, above
            // 0.96); transformers' own bf16 keeps 0.952–0.969. Over 72 pairs the grid-undone body
            // read 0.948, inside the spread of so few pairs (0.920–0.956). Candle's kernel, used
            // elsewhere, quantises activations to 8 bits as GGML does: 0.855 (24 pairs, as
            // shipped).
            DTypeChoice::Q8_0 if kernels::int8::own_kernel_available() => Some(0.966),
            DTypeChoice::Q8_0 => Some(CANDLE_Q8_0),
            // With the grid undone (0.638 as shipped, 0.423 on stories15M).
            DTypeChoice::Q4_0 => Some(0.401),
            // stories15M (0.538 with the grid undone; as shipped, whose grid flatters 4-bit
            // formats, 0.888).
            DTypeChoice::Q4K => Some(0.394),
        }
    }

    /// Whether this mode keeps the ranking well enough to be chosen without being asked for.
    pub fn meets_rank_bar(self) -> bool {
        matches!((self.measured_rank(), self.rank_bar()), (Some(m), Some(b)) if m >= b)
    }

    /// [`DTypeChoice::measured_rank`] where the model runs on a GPU. There the quantised modes
    /// run on candle's kernels, which quantise activations to 8 bits (GGML's `q8_1` blocks of
    /// 32), as its CPU kernel does: what cost `q8_0` the ranking. 4-bit weights lose it on any
    /// device (τ 0.38 with their inputs exact). The other modes compute in bf16 there, which was
    /// not measured on a GPU (transformers' own bf16 keeps 0.952–0.969): no figure, no warning.
    fn measured_rank_on_gpu(self) -> Option<f64> {
        match self {
            DTypeChoice::Q8_0 => Some(CANDLE_Q8_0),
            DTypeChoice::Q4_0 | DTypeChoice::Q4K => self.measured_rank(),
            _ => None,
        }
    }

    /// The warning an explicitly chosen mode below its bar carries with every result on
    /// `device`.
    pub fn accuracy_warning(self, device: &Device) -> Option<String> {
        self.accuracy_warning_where(device.is_cpu())
    }

    fn accuracy_warning_where(self, on_cpu: bool) -> Option<String> {
        let measured = if on_cpu {
            self.measured_rank()
        } else {
            self.measured_rank_on_gpu()
        };
        let (measured, bar) = (measured?, self.rank_bar()?);
        (measured < bar).then(|| {
            format!(
                "{} may not keep the ranking: on trained weights its scores ranked inputs \
                 with a rank correlation as low as {measured:.3} to the exact ones (the bar is \
                 {bar:.2}); close candidates can swap places, so check a ranking with bf16",
                self.name()
            )
        })
    }

    /// The most precise CPU mode that keeps the ranking and whose weights, with a margin for
    /// the runtime and activations, fit in `available` bytes of memory (f32 when that is
    /// unknown). When none fits, the smallest such mode: a mode that scrambles rankings is
    /// never picked without being asked for.
    pub fn for_memory(parameters: u64, available: Option<u64>) -> DTypeChoice {
        let Some(available) = available else {
            return DTypeChoice::F32;
        };
        let offered: Vec<(DTypeChoice, f64)> = cpu_sizes()
            .into_iter()
            .filter(|(c, _)| c.meets_rank_bar())
            .collect();
        offered
            .iter()
            .find(|(_, b)| need(parameters, *b) <= available as f64)
            .or(offered.last())
            .map_or(DTypeChoice::BF16, |(c, _)| *c)
    }

    /// What `auto` says when even the mode it chose does not fit in `available` bytes: the
    /// passes may page, and the most precise smaller mode that would fit costs the ranking.
    pub fn auto_memory_warning(self, parameters: u64, available: Option<u64>) -> Option<String> {
        let available = available? as f64;
        let sizes = cpu_sizes();
        let bytes = sizes.iter().find(|(c, _)| *c == self)?.1;
        let chosen = need(parameters, bytes);
        if chosen <= available {
            return None;
        }
        let gib = |b: f64| b / (1u64 << 30) as f64;
        let smaller = sizes
            .iter()
            .find(|(_, b)| need(parameters, *b) <= available)
            .map_or("no smaller mode fits either".to_string(), |(c, b)| {
                let rank = c
                    .accuracy_warning(&Device::Cpu)
                    .and(c.measured_rank())
                    .map_or(String::new(), |m| {
                        format!(" but may not keep the ranking (τ as low as {m:.3})")
                    });
                format!(
                    "--dtype {} needs about {:.1} GiB{rank}",
                    c.name(),
                    gib(need(parameters, *b))
                )
            });
        Some(format!(
            "--dtype auto chose {}, the smallest mode that keeps the ranking, but it needs about \
             {:.1} GiB and {:.1} GiB of memory is free: expect paging and slow passes; {smaller}",
            self.name(),
            gib(chosen),
            gib(available)
        ))
    }
}

/// `Q8_0`'s τ on candle's kernels, whose activations are quantised to 8 bits (24 pairs, as
/// shipped; the 8-bit activations alone: 0.884 in a simulation).
const CANDLE_Q8_0: f64 = 0.855;

/// `Q12`'s τ on trained weights: 0.998 as shipped, 0.997 with the grid undone, 0.996 on
/// `stories15M` (360 pairs; bf16 0.983–0.990, f16 0.994–0.995).
const Q12_MEASURED: f64 = 0.996;

/// `Q12`'s bytes per weight: 32 two-byte values and an f16 scale per block.
const Q12_BYTES: f64 = 66.0 / 32.0;

/// Whether `Q12` is worth choosing over bf16 here: its integer kernel runs (AVX2, or
/// AVX512-VNNI), and either bf16 runs on f32 FMA, with half the multiply-adds per
/// instruction of `Q12`'s integer ones (on AVX2, where `Q12` measured 1.3× faster, or on
/// AVX-512 where bf16's own dot product measured slower than FMA: `Q12` 1.4× faster over a pass
/// on an Intel Xeon, and a timing of the two products there sat near [`Q12_MARGIN`], so would
/// flip between starts), or both use a dot-product instruction and `Q12` measures clearly
/// faster on this CPU ([`Q12_MARGIN`]). The rates of the two
/// instructions differ by CPU: on a Zen 4 bf16 ran about 1.2× faster, on an Intel Xeon
/// (Emerald Rapids) `Q12` 2.3×. Measured once per process,
/// unless an answer kept from an earlier start was given ([`keep_q12_choice`]).
pub fn q12_beats_bf16() -> bool {
    *Q12_BEATS_BF16.get_or_init(|| {
        if !kernels::int8::avx2_available() {
            return false;
        }
        if kernels::bf16::PackedBf16::best_isa() != kernels::Isa::Avx512Bf16 {
            return true;
        }
        let (q12, bf16) = product_times();
        let beats = kernels::clearly_faster(q12, bf16, Q12_MARGIN);
        tracing::info!(
            "q12 against bf16 on this CPU: {:.0} against {:.0} µs for the same product; \
             --dtype auto prefers {}",
            q12 * 1e6,
            bf16 * 1e6,
            if beats { "q12" } else { "bf16" }
        );
        beats
    })
}

/// This process's answer to [`q12_beats_bf16`], once given.
static Q12_BEATS_BF16: OnceLock<bool> = OnceLock::new();

/// [`q12_beats_bf16`]'s answer in this process, if it has been given, to be kept for later
/// starts: timed again, it could change the mode `auto` picks, and with it the cache file.
pub fn q12_choice() -> Option<bool> {
    Q12_BEATS_BF16.get().copied()
}

/// Takes [`q12_beats_bf16`]'s answer kept from an earlier start instead of timing it; false
/// where this process has already answered.
pub fn keep_q12_choice(beats: bool) -> bool {
    Q12_BEATS_BF16.set(beats).is_ok()
}

/// How much faster `Q12` must measure to be chosen over bf16, which is 3 % smaller: far enough
/// from 1 that timing noise does not flip the choice between starts (each mode keeps its own
/// cache file, made at its first load).
const Q12_MARGIN: f64 = 0.85;

/// The best of a few timings of the kernels' timing product ([`kernels::TIMING_SHAPE`]) in
/// `Q12` and in bf16, alternating: seconds each. Run only where bf16 uses its dot product.
fn product_times() -> (f64, f64) {
    use kernels::int8::{PackedQ, QFormat};
    let (m, n, k) = kernels::TIMING_SHAPE;
    let (bf16, x) = kernels::bf16::timing_operands();
    let mut q12 = PackedQ::zeroed(QFormat::Q12, n, k);
    q12.fill_rows(0, n, |i, dst| {
        for (j, d) in dst.iter_mut().enumerate() {
            *d = kernels::timing_value(i * k + j);
        }
    });
    let mut out = vec![0f32; m * n];
    let mut run_q12 = || q12.matmul(&x, m, &mut out);
    let mut out2 = vec![0f32; m * n];
    let mut run_bf16 = || bf16.matmul(&x, m, &mut out2);
    kernels::best_times(&mut run_q12, &mut run_bf16)
}

/// The CPU modes `auto` chooses among, from the most precise to the smallest, with their bytes
/// per weight.
fn cpu_sizes() -> Vec<(DTypeChoice, f64)> {
    let q12 = q12_beats_bf16().then_some((DTypeChoice::Q12, Q12_BYTES));
    // `Q8_0` holds its edge layers in `Q12` only where this crate's kernels run it.
    let q8_0 = DTypeChoice::Q8_0
        .plan(&Device::Cpu)
        .bytes_per_weight(SIZED_LAYERS);
    [(DTypeChoice::F32, 4.0)]
        .into_iter()
        .chain(q12)
        .chain([
            (DTypeChoice::BF16, 2.0),
            (DTypeChoice::Q8_0, q8_0),
            (DTypeChoice::Q4K, 0.578),
            (DTypeChoice::Q4_0, 0.5625),
        ])
        .collect()
}

/// The layers `auto`'s sizes assume (the 7B's): with them `Q8_0` takes 1.125 bytes per weight
/// where its first and last layers are in `Q12` (1.0625, and one more byte for 2 weights in 32).
const SIZED_LAYERS: usize = 32;

/// Bytes `parameters` weights need at `bytes_per_weight`, with a margin for the runtime and a
/// pass's activations.
fn need(parameters: u64, bytes_per_weight: f64) -> f64 {
    parameters as f64 * bytes_per_weight * 1.15
}

/// Memory the system can give this process now (Linux `MemAvailable`), in bytes.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Memory and swap this machine has in all (Linux `MemTotal` + `SwapTotal`), in bytes.
pub fn total_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib = |key: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(key))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    kib("MemTotal:")?
        .checked_add(kib("SwapTotal:").unwrap_or(0))?
        .checked_mul(1024)
}

/// Refuses to load `parameters` weights held as `plan` says over `layers` decoder layers when
/// they cannot fit in `total` bytes (memory and swap; unknown: no check), rather than let the
/// allocation abort the process.
pub fn check_fits(
    parameters: u64,
    plan: ComputePlan,
    layers: usize,
    mode: &str,
    total: Option<u64>,
) -> Result<(), ModelError> {
    let bytes_per_weight = plan.bytes_per_weight(layers);
    let need = parameters as f64 * bytes_per_weight;
    match total {
        Some(total) if need > total as f64 => {
            let gib = |b: f64| b / (1u64 << 30) as f64;
            Err(ModelError::Device(format!(
                "the model's {parameters} parameters need about {:.1} GiB as {mode}, but this \
                 machine has {:.1} GiB of memory and swap in all; choose a smaller --dtype \
                 (bf16, q8_0 or q4_k)",
                gib(need),
                gib(total as f64)
            )))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes per weight `auto` counts for `q8_0`.
    fn auto_q8_0_size() -> f64 {
        let sizes = cpu_sizes();
        let q8_0 = sizes.iter().find(|(m, _)| *m == DTypeChoice::Q8_0);
        q8_0.expect("q8_0 is offered").1
    }

    #[test]
    fn q8_0_holds_its_first_and_last_layers_in_q12_where_its_own_kernels_run() {
        let plan = DTypeChoice::Q8_0.plan(&Device::Cpu);
        let q8 = WeightFormat::Quantized(GgmlDType::Q8_0);
        assert_eq!(plan.weights, q8);
        if !kernels::int8::own_kernel_available() {
            // Candle's kernel: no q12 to hold the edges in, nor counted by `auto`.
            assert_eq!(plan.edge_weights, q8);
            assert_eq!(auto_q8_0_size(), 34.0 / 32.0);
            return;
        }
        assert_eq!(auto_q8_0_size(), 1.125);
        let held: Vec<_> = (0..32).map(|i| plan.layer_weights(Some(i), 32)).collect();
        assert_eq!(held[0], WeightFormat::PackedQ12);
        assert_eq!(held[31], WeightFormat::PackedQ12);
        assert!(held[1..31].iter().all(|f| *f == q8), "{held:?}");
        assert_eq!(
            plan.layer_weights(None, 32),
            q8,
            "tensors outside the layers"
        );
        // Too few layers for edges apart from a middle: all q8_0.
        assert!((0..3).all(|i| plan.layer_weights(Some(i), 3) == q8));
        assert_eq!(plan.layer_weights(Some(3), 4), WeightFormat::PackedQ12);
        assert!((plan.bytes_per_weight(SIZED_LAYERS) - (1.0625 + 2.0 / 32.0)).abs() < 1e-12);
        assert_eq!(plan.bytes_per_weight(2), 34.0 / 32.0);
        // Every other mode holds all its layers alike.
        for mode in DTypeChoice::CPU_MODES
            .into_iter()
            .filter(|m| *m != DTypeChoice::Q8_0)
        {
            let p = mode.plan(&Device::Cpu);
            assert_eq!(p.edge_weights, p.weights, "{mode:?}");
        }
    }

    #[test]
    fn on_a_gpu_the_quantised_modes_warn_as_candles_kernels_measured() {
        // Candle's kernels quantise activations to 8 bits wherever they run.
        let w = DTypeChoice::Q8_0.accuracy_warning_where(false).unwrap();
        assert!(w.contains("as low as 0.855"), "{w}");
        for mode in [DTypeChoice::Q4_0, DTypeChoice::Q4K] {
            assert_eq!(
                mode.accuracy_warning_where(false),
                mode.accuracy_warning_where(true),
                "{mode:?}: 4-bit weights lose the ranking on any device"
            );
            assert!(mode.accuracy_warning_where(false).is_some());
        }
        // bf16 on the GPU, unmeasured there: no figure to warn with.
        for mode in [
            DTypeChoice::F32,
            DTypeChoice::BF16,
            DTypeChoice::F16,
            DTypeChoice::Q12,
        ] {
            assert_eq!(mode.accuracy_warning_where(false), None, "{mode:?}");
        }
        // On the CPU, q8_0 warns only where candle's kernel runs it.
        assert_eq!(
            DTypeChoice::Q8_0.accuracy_warning(&Device::Cpu).is_some(),
            !kernels::int8::own_kernel_available()
        );
    }

    #[test]
    fn the_q12_and_bf16_products_are_timed() {
        let (q12, bf16) = super::product_times();
        assert!(q12.is_finite() && q12 > 0.0, "{q12}");
        assert!(bf16.is_finite() && bf16 > 0.0, "{bf16}");
        eprintln!("q12 {:.0} µs, bf16 {:.0} µs", q12 * 1e6, bf16 * 1e6);
    }

    #[test]
    fn q12_is_chosen_only_when_clearly_faster() {
        let clearly_faster = |q, b| super::kernels::clearly_faster(q, b, super::Q12_MARGIN);
        // The Xeon's 1.9× and the Zen 4's 0.83× (bf16 faster); a near tie keeps bf16.
        assert!(clearly_faster(1.9e-3, 3.7e-3));
        assert!(!clearly_faster(1.2e-3, 1.0e-3));
        assert!(!clearly_faster(0.9e-3, 1.0e-3));
        assert!(clearly_faster(0.84e-3, 1.0e-3));
        assert!(!clearly_faster(f64::NAN, 1.0));
        assert!(!clearly_faster(0.5, f64::INFINITY));
    }
}
