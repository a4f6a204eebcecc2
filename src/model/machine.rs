//! The kernel choices this processor was timed for, kept beside the quantised weights so that
//! every start scores with the same kernels.
//!
//! Two choices on the CPU are made by timing two kernels against each other: whether bf16 runs
//! on its dot product or widened to f32 FMA (they round differently, so every bf16 score moves
//! in its second or third decimal), and whether `--dtype auto` prefers `q12` to bf16 (another
//! mode, and another cache file of the whole model). Each has a margin against noise, but on a
//! shared machine a timing can still land past it, and a choice timed at each start flipped now
//! and then. So the first start on a processor times them and keeps the answers in
//! [`FILE`]; later starts of the same build on the same processor take them from there.
//! Deleting the file makes the next start time them again.

use std::io::Read;
use std::path::Path;
use std::sync::Once;

use serde::{Deserialize, Serialize};

use super::{files, kernels, modes};

/// The file in the cache directory.
pub const FILE: &str = "kernel-choices.json";
/// The file is a few hundred bytes; anything longer was not written by this.
const MAX_BYTES: u64 = 4096;
/// Changes whenever the kernels timed here change, so that an older build's choices are timed
/// again.
const REVISION: u32 = 1;

/// What the file holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Kept {
    /// The build and processor the choices were timed on ([`this_machine`]).
    machine: String,
    /// bf16 widened to f32 FMA rather than its dot product.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bf16_widened: Option<bool>,
    /// `q12` rather than bf16 for `--dtype auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    q12_over_bf16: Option<bool>,
}

/// Before anything is timed in this process: takes the choices kept in `dir` for this build
/// and processor. Only the first call does anything.
pub(super) fn use_kept(dir: &Path) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Some(kept) = read(&dir.join(FILE), &this_machine()) else {
            return;
        };
        // A choice this process made before reading the file stays its own (false).
        let widened = kept.bf16_widened.map(kernels::bf16::keep_widening_choice);
        let q12 = kept.q12_over_bf16.map(modes::keep_q12_choice);
        tracing::info!(
            "kernel choices kept from an earlier start on this processor ({}): {kept:?}; \
             taken: bf16 {widened:?}, q12 {q12:?}",
            dir.join(FILE).display()
        );
    });
}

/// Which choices a load used.
#[derive(Debug, Clone, Copy)]
pub(super) struct Used {
    /// bf16's kernel: the load holds bf16 weights for the CPU.
    pub bf16: bool,
    /// `q12` against bf16: the load resolved `--dtype auto` on the CPU.
    pub q12: bool,
}

/// After a load: keeps in `dir` the choices it used that the file lacks (where the file is
/// missing, unreadable or of another build or processor, all it used). A file that cannot be
/// written costs only a timing at the next start.
pub(super) fn keep_made(dir: &Path, used: Used) {
    let path = dir.join(FILE);
    let machine = this_machine();
    let made = Kept {
        machine: machine.clone(),
        bf16_widened: kernels::bf16::widening_choice().filter(|_| used.bf16),
        q12_over_bf16: modes::q12_choice().filter(|_| used.q12),
    };
    let Some(merged) = merged(read(&path, &machine), made) else {
        return;
    };
    let json = serde_json::to_vec_pretty(&merged).expect("plain fields");
    if let Err(e) = files::write_atomic(&path, &json) {
        tracing::warn!("cannot keep the kernel choices in {}: {e}", path.display());
    }
}

/// What to write, given what the file holds and what this process chose: `None` when the file
/// already holds every choice made (a kept choice wins over one made before it was read).
fn merged(file: Option<Kept>, made: Kept) -> Option<Kept> {
    let Some(file) = file else {
        return (made.bf16_widened.is_some() || made.q12_over_bf16.is_some()).then_some(made);
    };
    let out = Kept {
        machine: file.machine.clone(),
        bf16_widened: file.bf16_widened.or(made.bf16_widened),
        q12_over_bf16: file.q12_over_bf16.or(made.q12_over_bf16),
    };
    (out != file).then_some(out)
}

/// The file's choices if it holds this machine's, else `None`: missing, too long, not this
/// format, or timed on another build or processor.
fn read(path: &Path, machine: &str) -> Option<Kept> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    parse(&bytes, machine)
}

fn parse(bytes: &[u8], machine: &str) -> Option<Kept> {
    if bytes.len() as u64 > MAX_BYTES {
        return None;
    }
    let kept: Kept = serde_json::from_slice(bytes).ok()?;
    (kept.machine == machine).then_some(kept)
}

/// This build and processor: the crate's version and [`REVISION`], the architecture, the
/// processor's name and model as it reports them, the instructions the kernels use, and the
/// threads (timings with two threads need not hold with sixteen).
fn this_machine() -> String {
    let threads = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "dpa-explorer {} r{REVISION}; {}; {}; {threads} threads",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
        processor()
    )
}

#[cfg(target_arch = "x86_64")]
fn processor() -> String {
    use std::arch::x86_64::{__cpuid, CpuidResult};
    // SAFETY: CPUID exists on every x86_64 processor. (Safe to call in newer toolchains.)
    #[allow(unused_unsafe)]
    let cpuid = |leaf: u32| -> CpuidResult { unsafe { __cpuid(leaf) } };
    let max_extended = cpuid(0x8000_0000).eax;
    let mut brand = Vec::with_capacity(48);
    if max_extended >= 0x8000_0004 {
        for leaf in 0x8000_0002..=0x8000_0004u32 {
            let r = cpuid(leaf);
            for reg in [r.eax, r.ebx, r.ecx, r.edx] {
                brand.extend_from_slice(&reg.to_le_bytes());
            }
        }
    }
    let brand = String::from_utf8_lossy(&brand)
        .trim_matches(|c: char| c == '\0' || c.is_whitespace())
        .to_string();
    let signature = cpuid(1).eax;
    let features: Vec<&str> = [
        ("avx2", std::arch::is_x86_feature_detected!("avx2")),
        ("fma", std::arch::is_x86_feature_detected!("fma")),
        ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
        (
            "avx512vnni",
            std::arch::is_x86_feature_detected!("avx512vnni"),
        ),
        (
            "avx512bf16",
            std::arch::is_x86_feature_detected!("avx512bf16"),
        ),
    ]
    .into_iter()
    .filter_map(|(name, has)| has.then_some(name))
    .collect();
    format!("{brand} (signature {signature:#x}) {}", features.join(" "))
}

#[cfg(not(target_arch = "x86_64"))]
fn processor() -> String {
    "unknown processor".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(widened: Option<bool>, q12: Option<bool>) -> Kept {
        Kept {
            machine: this_machine(),
            bf16_widened: widened,
            q12_over_bf16: q12,
        }
    }

    #[test]
    fn this_machine_names_the_build_and_the_processor() {
        let m = this_machine();
        assert!(m.contains(env!("CARGO_PKG_VERSION")), "{m}");
        assert!(m.contains(std::env::consts::ARCH), "{m}");
        assert_eq!(m, this_machine(), "the same at every call");
    }

    #[test]
    fn a_file_is_taken_only_for_this_machine_and_when_well_formed() {
        let m = this_machine();
        let good = serde_json::to_vec(&kept(Some(true), Some(false))).unwrap();
        assert_eq!(parse(&good, &m), Some(kept(Some(true), Some(false))));
        // Another build or processor: timed again.
        assert_eq!(parse(&good, "dpa-explorer 0.0.0 r0; x86_64; other"), None);
        let mut long = good.clone();
        long.resize(MAX_BYTES as usize + 1, b' ');
        assert_eq!(parse(&long, &m), None, "longer than any file this writes");
        for bad in [
            &b""[..],
            b"{",
            b"[]",
            b"{\"machine\": 3}",
            b"{\"bf16_widened\": true}",
            br#"{"machine": "m", "bf16_widened": "yes"}"#,
            br#"{"machine": "m", "extra": 1}"#,
        ] {
            assert_eq!(parse(bad, "m"), None, "{}", String::from_utf8_lossy(bad));
        }
        // Either choice may be absent.
        assert_eq!(
            parse(br#"{"machine": "m"}"#, "m").map(|k| (k.bf16_widened, k.q12_over_bf16)),
            Some((None, None))
        );
    }

    #[test]
    fn only_choices_the_file_lacks_are_written_and_kept_ones_win() {
        // Nothing chosen, no file: nothing to write.
        assert_eq!(merged(None, kept(None, None)), None);
        // No file (or another machine's): what was chosen.
        assert_eq!(
            merged(None, kept(Some(false), None)),
            Some(kept(Some(false), None))
        );
        // The file has it already: nothing to write.
        assert_eq!(
            merged(Some(kept(Some(false), None)), kept(Some(false), None)),
            None
        );
        // A choice the file lacks is added; the file's own stays, even against this
        // process's (made before the file was read).
        assert_eq!(
            merged(Some(kept(Some(true), None)), kept(Some(false), Some(true))),
            Some(kept(Some(true), Some(true)))
        );
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Any bytes: refused or read, never a panic; what is read is this machine's.
            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
                let m = this_machine();
                if let Some(k) = parse(&bytes, &m) {
                    prop_assert_eq!(k.machine, m);
                }
            }

            /// A good file with bytes changed, cut or spliced: refused or read, never a panic.
            #[test]
            fn mangled_files_never_panic(
                at in 0usize..400,
                junk in proptest::collection::vec(any::<u8>(), 0..40),
                cut in 0usize..400,
            ) {
                let m = this_machine();
                let mut bytes = serde_json::to_vec_pretty(&kept(Some(true), Some(false))).unwrap();
                let at = at.min(bytes.len());
                bytes.splice(at..at, junk);
                bytes.truncate(cut.max(at));
                if let Some(k) = parse(&bytes, &m) {
                    prop_assert_eq!(k.machine, m);
                }
            }
        }
    }

    #[test]
    fn a_kept_file_is_written_whole_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache").join(FILE);
        let want = kept(Some(true), Some(true));
        files::write_atomic(&path, &serde_json::to_vec_pretty(&want).unwrap()).unwrap();
        assert_eq!(read(&path, &this_machine()), Some(want));
        assert_eq!(read(&dir.path().join("missing"), &this_machine()), None);
        // Only the file itself is left in the directory: no temporary beside it.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [FILE]);
    }
}
