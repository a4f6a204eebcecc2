//! Faults: the quantised weight cache. A cache file whose bytes changed on disk (a flipped bit,
//! a bad sector, a stray write) must never change scores silently: each tensor's bytes carry a
//! checksum, and a file that fails it is made anew in the same load.

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
