//! Crafted PyTorch checkpoints: the tiny `.bin` fixture with one zip entry rewritten in place
//! (same length, checksums updated), so that only the crafted value differs.

use serde_json::json;

use super::{refusal, set};
use crate::common::{fixture, model_copy};

const PICKLE: &str = "pytorch_model/data.pkl";
const EMBEDDING: &str = "pytorch_model/data/0";

fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn u16_at(b: &[u8], i: usize) -> usize {
    u16::from_le_bytes([b[i], b[i + 1]]) as usize
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// Rewrites the stored (uncompressed) zip entry `name` with `edit`, which keeps its length,
/// and updates its CRC in the central directory, the local header and the data descriptor.
fn patch_entry(zip: &mut [u8], name: &str, edit: impl FnOnce(&mut [u8])) {
    let mut at = 0;
    let (local, size, crc_at) = loop {
        assert!(at + 46 <= zip.len(), "{name} is not in the zip");
        if u32_at(zip, at) == 0x0201_4b50 {
            let n = u16_at(zip, at + 28);
            if &zip[at + 46..at + 46 + n] == name.as_bytes() {
                assert_eq!(u16_at(zip, at + 10), 0, "{name} is stored uncompressed");
                break (
                    u32_at(zip, at + 42) as usize,
                    u32_at(zip, at + 24) as usize,
                    at + 16,
                );
            }
        }
        at += 1;
    };
    let start = local + 30 + u16_at(zip, local + 26) + u16_at(zip, local + 28);
    let old = crc32(&zip[start..start + size]);
    edit(&mut zip[start..start + size]);
    let new = crc32(&zip[start..start + size]).to_le_bytes();
    let descriptor = if u32_at(zip, start + size) == 0x0807_4b50 {
        start + size + 4
    } else {
        start + size
    };
    for i in [crc_at, local + 14, descriptor] {
        if u32_at(zip, i) == old {
            zip[i..i + 4].copy_from_slice(&new);
        }
    }
}

/// tiny-mha-bin with its `.bin` edited and its config edited.
fn crafted_bin(
    edit_zip: impl FnOnce(&mut Vec<u8>),
    edit_config: impl FnOnce(&mut serde_json::Value),
) -> tempfile::TempDir {
    let src = fixture("tiny-mha-bin");
    let mut zip = std::fs::read(src.join("pytorch_model.bin")).unwrap();
    edit_zip(&mut zip);
    let text = std::fs::read_to_string(src.join("config.json")).unwrap();
    let mut cfg = serde_json::from_str(&text).unwrap();
    edit_config(&mut cfg);
    model_copy(&src, |d| {
        for f in ["pytorch_model.bin", "config.json"] {
            std::fs::remove_file(d.join(f)).unwrap();
        }
        std::fs::write(d.join("pytorch_model.bin"), &zip).unwrap();
        std::fs::write(d.join("config.json"), cfg.to_string()).unwrap();
    })
}

#[test]
fn a_pickled_embedding_larger_than_its_file_is_refused_before_allocating() {
    // The embedding's shape in the pickle: `K 0` (offset), `M 32001`, `K 32` after its storage
    // tuple and `BINPUT 7`. Dropping that unused memo store leaves room for a 4-byte int.
    let was: &[u8] = b"q\x07QK\x00M\x01}K ";
    let now: &[u8] = b"QK\x00J\xff\xff\xff\x7fK ";
    let dir = crafted_bin(
        |zip| {
            patch_entry(zip, PICKLE, |pkl| {
                let i = pkl.windows(was.len()).position(|w| w == was).unwrap();
                pkl[i..i + was.len()].copy_from_slice(now);
            })
        },
        |cfg| set(cfg, "vocab_size", json!(i32::MAX)),
    );
    let e = refusal(dir.path());
    assert_eq!(
        e,
        format!(
            "bad checkpoint {}: tensor `model.embed_tokens.weight` has shape [2147483647, 32] \
             (137438953408 bytes), more than the file's 2097478 bytes",
            dir.path().join("pytorch_model.bin").display()
        )
    );
}

#[test]
fn a_pickled_nan_is_refused_naming_the_tensor() {
    let dir = crafted_bin(
        |zip| {
            patch_entry(zip, EMBEDDING, |data| {
                data[64..66].copy_from_slice(&[0xc0, 0x7f])
            })
        },
        |_| {},
    );
    let e = refusal(dir.path());
    assert!(
        e.contains("tensor `model.embed_tokens.weight` holds 1 NaN or infinite value(s) (the first, element 32, is NaN)"),
        "{e}"
    );
    // The untouched fixture loads: the edit, not the patching, is refused.
    let dir = crafted_bin(|zip| patch_entry(zip, EMBEDDING, |_| {}), |_| {});
    super::load_with(dir.path(), dpa_explorer::model::DTypeChoice::F32).unwrap();
}
