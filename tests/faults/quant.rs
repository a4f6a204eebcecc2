//! Faults: the quantised weight cache. A cache file whose bytes changed on disk (a flipped bit,
//! a bad sector, a stray write) must never change scores silently: each tensor's bytes carry a
//! checksum, checked as the file is read or, for weights used in place, in the background
//! before any score is shown; a file that fails it is made anew.

use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file;
use dpa_explorer::model::DTypeChoice;

use crate::common::*;

fn only_file(dir: &Path) -> PathBuf {
    let files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.into_iter().next().unwrap()
}

/// The file offset of byte `at` of the data of the tensor whose data comes `nth` in the file.
fn data_offset(path: &Path, nth: usize, at: u64) -> u64 {
    let mut f = std::fs::File::open(path).unwrap();
    let content = gguf_file::Content::read(&mut f).unwrap();
    let mut offsets: Vec<u64> = content.tensor_infos.values().map(|i| i.offset).collect();
    offsets.sort();
    content.tensor_data_offset + offsets[nth] + at
}

#[test]
fn a_flipped_byte_in_the_quantised_cache_is_caught_and_the_file_made_anew() {
    let dir = fixture("tiny-gqa-window");
    let case = &reference(&dir).cases[0];
    let pair = [(case.prompt.as_str(), case.response.as_str())];
    for mode in [DTypeChoice::Q8_0, DTypeChoice::Q4K, DTypeChoice::Q4_0] {
        // A tensor at the start, in the middle and at the end of the file.
        for nth in [0, 4, 8] {
            let cache = tempfile::tempdir().unwrap();
            let good = load_mode(&dir, mode, cache.path()).score(&pair).unwrap();
            let path = only_file(cache.path());
            let original = std::fs::read(&path).unwrap();
            let mut bytes = original.clone();
            // The first quantised value of the tensor's first block, past its f16 scale.
            let at = data_offset(&path, nth, 2) as usize;
            bytes[at] ^= 0x5a;
            std::fs::write(&path, &bytes).unwrap();

            let again = load_mode(&dir, mode, cache.path()).score(&pair).unwrap();
            assert_eq!(
                good[0].scores,
                again[0].scores,
                "{} tensor {nth}: a damaged cache changed the scores",
                mode.name()
            );
            assert_eq!(
                std::fs::read(&path).unwrap(),
                original,
                "{} tensor {nth}: the file is made anew, whole",
                mode.name()
            );
            assert_eq!(
                std::fs::read_dir(cache.path()).unwrap().count(),
                1,
                "no leftovers"
            );
        }
    }
}

/// The name of the tensor whose data comes `nth` in the file.
fn tensor_name(path: &Path, nth: usize) -> String {
    let mut f = std::fs::File::open(path).unwrap();
    let content = gguf_file::Content::read(&mut f).unwrap();
    let mut infos: Vec<_> = content.tensor_infos.iter().collect();
    infos.sort_by_key(|(_, i)| i.offset);
    infos[nth].0.clone()
}

/// A warm load uses the file's bytes in place and checks them in the background: the load
/// returns, the check names the damaged tensor, and no score computed from it is shown; the
/// scores and the trajectory shown are those of the good file, which is made anew.
#[test]
fn a_damage_found_after_a_warm_load_is_never_shown_and_the_model_is_made_again() {
    let dir = fixture("tiny-gqa-window");
    let case = &reference(&dir).cases[0];
    let pair = [(case.prompt.as_str(), case.response.as_str())];
    let every = dpa_explorer::scoring::Every::Word;
    for mode in [DTypeChoice::Q8_0, DTypeChoice::Q4_0] {
        let cache = tempfile::tempdir().unwrap();
        let fresh = load_mode(&dir, mode, cache.path());
        assert_eq!(fresh.integrity().wait(), Ok(()), "made in this load");
        let good = fresh.score(&pair).unwrap();
        let good_path = fresh
            .trajectory(&case.prompt, &case.response, every, &|| false)
            .unwrap();
        let path = only_file(cache.path());
        let original = std::fs::read(&path).unwrap();

        let warm = load_mode(&dir, mode, cache.path());
        assert_eq!(
            warm.integrity().wait(),
            Ok(()),
            "{}: the good file passes",
            mode.name()
        );

        // A tensor of the middle of the file (a packed projection, used in place).
        let mut bytes = original.clone();
        bytes[data_offset(&path, 4, 2) as usize] ^= 0x5a;
        std::fs::write(&path, &bytes).unwrap();
        let damaged = load_mode(&dir, mode, cache.path());
        let found = damaged.integrity().wait().unwrap_err();
        assert_eq!(found.tensor, tensor_name(&path, 4), "{}", mode.name());
        assert_eq!(found.path, path);

        let shown = damaged.score(&pair).unwrap();
        assert_eq!(shown[0].scores, good[0].scores, "{}: scores", mode.name());
        assert_eq!(
            std::fs::read(&path).unwrap(),
            original,
            "{}: made anew",
            mode.name()
        );

        std::fs::write(&path, &bytes).unwrap();
        let damaged = load_mode(&dir, mode, cache.path());
        let points = damaged
            .trajectory(&case.prompt, &case.response, every, &|| false)
            .unwrap();
        assert_eq!(points.len(), good_path.len());
        for (a, b) in points.iter().zip(&good_path) {
            assert_eq!(a.scores, b.scores, "{}: trajectory", mode.name());
        }
        assert_eq!(
            std::fs::read(&path).unwrap(),
            original,
            "{}: made anew",
            mode.name()
        );
        assert_eq!(
            std::fs::read_dir(cache.path()).unwrap().count(),
            1,
            "no leftovers"
        );
    }
}

/// A file that must be made anew during a warm load (one tensor no longer found), with
/// another tensor, already in use unchecked, damaged: that one is not copied into the new
/// file as good, and the load is made again checking first.
#[test]
fn a_tensor_in_use_found_damaged_while_the_file_is_remade_is_made_anew() {
    let dir = fixture("tiny-gqa-window");
    let case = &reference(&dir).cases[0];
    let pair = [(case.prompt.as_str(), case.response.as_str())];
    let cache = tempfile::tempdir().unwrap();
    let good = load_mode(&dir, DTypeChoice::Q8_0, cache.path())
        .score(&pair)
        .unwrap();
    let path = only_file(cache.path());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[data_offset(&path, 0, 2) as usize] ^= 0x5a;
    // The last tensor's name in its tensor info (after the metadata that also names it).
    let last = tensor_name(&path, 8);
    let at = bytes
        .windows(last.len())
        .rposition(|w| w == last.as_bytes())
        .unwrap();
    bytes[at + last.len() - 1] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();

    let model = load_mode(&dir, DTypeChoice::Q8_0, cache.path());
    assert_eq!(model.integrity().wait(), Ok(()), "checked before use");
    assert_eq!(model.score(&pair).unwrap()[0].scores, good[0].scores);
    let again = load_mode(&dir, DTypeChoice::Q8_0, cache.path());
    assert_eq!(
        again.integrity().wait(),
        Ok(()),
        "the file left behind is good"
    );
    assert_eq!(again.score(&pair).unwrap()[0].scores, good[0].scores);
    assert_eq!(
        std::fs::read_dir(cache.path()).unwrap().count(),
        1,
        "no leftovers"
    );
}

mod fuzz {
    //! Fuzz target (proptest) for the cache file's reader: its bytes are a file's word. Whatever
    //! is changed in it, a load never panics and its scores are those of the good file.
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    /// The good file of a `q4_k` load (packed tensors and q8_0 fallbacks), and its scores.
    fn good() -> &'static (Vec<u8>, Vec<f32>) {
        static GOOD: OnceLock<(Vec<u8>, Vec<f32>)> = OnceLock::new();
        GOOD.get_or_init(|| {
            let dir = fixture("tiny-gqa-window");
            let case = &reference(&dir).cases[0];
            let cache = tempfile::tempdir().unwrap();
            let scores = load_mode(&dir, DTypeChoice::Q4K, cache.path())
                .score(&[(case.prompt.as_str(), case.response.as_str())])
                .unwrap()
                .remove(0)
                .scores;
            (std::fs::read(only_file(cache.path())).unwrap(), scores)
        })
    }

    fn check(edit: impl FnOnce(&mut Vec<u8>)) {
        let (bytes, scores) = good();
        let dir = fixture("tiny-gqa-window");
        let case = &reference(&dir).cases[0];
        let cache = tempfile::tempdir().unwrap();
        // Where the load looks: made by a load, then replaced by the changed bytes.
        load_mode(&dir, DTypeChoice::Q4K, cache.path());
        let path = only_file(cache.path());
        let mut changed = bytes.clone();
        edit(&mut changed);
        std::fs::write(&path, &changed).unwrap();
        let again = load_mode(&dir, DTypeChoice::Q4K, cache.path())
            .score(&[(case.prompt.as_str(), case.response.as_str())])
            .unwrap()
            .remove(0)
            .scores;
        assert_eq!(&again, scores, "a changed cache file changed the scores");
        assert_eq!(
            std::fs::read_dir(cache.path()).unwrap().count(),
            1,
            "no leftovers"
        );
    }

    /// GGUF's reader divides by the header's alignment: zero is an unreadable file, not a crash.
    #[test]
    fn an_alignment_of_zero_is_an_unreadable_file() {
        check(|b| {
            let key = b"general.alignment";
            let at = b
                .windows(key.len())
                .position(|w| w == key)
                .expect("the cache file states its alignment")
                + key.len()
                + 4; // the value's type
            b[at..at + 4].copy_from_slice(&0u32.to_le_bytes());
        });
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Bytes changed anywhere, most of them in the header (sizes, offsets, checksums).
        #[test]
        fn fuzz_cache_file_mutated(
            edits in prop::collection::vec((any::<bool>(), any::<u32>(), 1u8..=255), 1..6),
        ) {
            check(|b| {
                // The header: metadata and tensor infos come before the first tensor's data.
                let header = b.len().min(2048);
                for (in_header, at, x) in edits {
                    let at = at as usize % if in_header { header } else { b.len() };
                    b[at] ^= x;
                }
            });
        }

        /// Cut short anywhere, or replaced by arbitrary bytes behind a GGUF magic.
        #[test]
        fn fuzz_cache_file_cut_or_arbitrary(
            cut in any::<u32>(),
            junk in prop::collection::vec(any::<u8>(), 0..256),
        ) {
            check(|b| {
                let cut = cut as usize % b.len();
                b.truncate(cut);
            });
            check(|b| {
                b.truncate(4);
                b.extend_from_slice(&junk);
            });
        }
    }
}
