//! Quantised projection weights in GGML block formats (`q8_0`, `q4_0`, `q4_k`), made from the
//! checkpoint at load time and kept in a GGUF file under the cache directory, keyed by the
//! checkpoint's identity and the format, so that the next start reads them instead of
//! quantising again. Each tensor's bytes carry a CRC-32 in the header, checked as they are
//! read: a damaged file is noticed, and made anew in the same load.

use std::borrow::Cow;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use candle_core::quantized::{gguf_file, GgmlDType, QStorage, QTensor};
use candle_core::{DType, Device};

use super::kquant;
use super::weights::{Checkpoint, WeightFiles};
use super::ModelError;

/// Rows quantised at a time: bounds the f32 copy a tensor needs while it is being quantised.
const ROWS_PER_CHUNK: usize = 512;
/// Changes whenever what is written changes, so that old cache files are never read.
const CACHE_FORMAT: u32 = 3;
/// Metadata key prefix of each tensor's CRC-32 (of its data bytes, padding excluded).
const CRC_KEY: &str = "dpa_explorer.crc32.";

/// The block format for a `[n, k]` weight: `want` where `k` is a whole number of its blocks,
/// else the finer `q8_0` (32-value blocks), else none (the weight stays dense). With
/// `pad_q4k` (this crate's `Q4_K` kernel, which skips the padding) a `Q4_K` row need only be
/// whole blocks of 32: it is stored padded with zeros to whole super-blocks ([`stored_k`]).
pub fn format_for(want: GgmlDType, k: usize, pad_q4k: bool) -> Option<GgmlDType> {
    if want == GgmlDType::Q4K && pad_q4k && k > 0 && k.is_multiple_of(32) {
        return Some(want);
    }
    [want, GgmlDType::Q8_0]
        .into_iter()
        .find(|d| k > 0 && k.is_multiple_of(d.block_size()))
}

/// The row length a `[n, k]` weight is stored with in `dtype`: `k`, or for `Q4_K` `k` rounded
/// up to whole super-blocks of 256.
pub fn stored_k(dtype: GgmlDType, k: usize) -> usize {
    match dtype {
        GgmlDType::Q4K => kquant::padded_k(k),
        _ => k,
    }
}

/// Receives quantised rows in order: `(first row, rows, GGML block bytes of those rows)`.
pub type RowSink<'a> = dyn FnMut(usize, usize, &[u8]) -> Result<(), ModelError> + 'a;

/// Quantises rows of `[out_i, in_features]` weights, stacked, to `dtype`, a chunk of rows at a
/// time, so that no whole copy of the weight exists besides what `sink` keeps.
pub fn quantize_rows(
    ckpt: &mut Checkpoint,
    names: &[&str],
    outs: &[usize],
    in_features: usize,
    dtype: GgmlDType,
    sink: &mut RowSink<'_>,
) -> Result<(), ModelError> {
    let mut row0 = 0;
    for (name, &out) in names.iter().zip(outs) {
        let stored = ckpt.get_stored(name, &[out, in_features])?;
        let mut start = 0;
        while start < out {
            let n = ROWS_PER_CHUNK.min(out - start);
            // A chunk of its own: `QTensor::quantize` reads the storage from its start and
            // ignores a view's offset, which a narrowed f32 weight (no conversion copy) has.
            let chunk = stored.narrow(0, start, n)?.to_dtype(DType::F32)?;
            if dtype == GgmlDType::Q4K {
                // llama.cpp's quantiser (candle's searches less), rows padded with zeros.
                let values = chunk.flatten_all()?.to_vec1::<f32>()?;
                let kp = kquant::padded_k(in_features);
                let mut padded = vec![0f32; n * kp];
                for (dst, src) in padded
                    .chunks_exact_mut(kp)
                    .zip(values.chunks_exact(in_features))
                {
                    dst[..in_features].copy_from_slice(src);
                }
                sink(row0 + start, n, &kquant::quantize_q4k(&padded))?;
                start += n;
                continue;
            }
            let chunk = if chunk.layout().start_offset() != 0 {
                let values = chunk.flatten_all()?.to_vec1::<f32>()?;
                candle_core::Tensor::from_vec(values, chunk.dims(), &Device::Cpu)?
            } else {
                chunk
            };
            let q = QTensor::quantize(&chunk, dtype)?;
            sink(row0 + start, n, &q.data()?)?;
            start += n;
        }
        row0 += out;
    }
    Ok(())
}

/// Bytes of one row of `k` values in `dtype`.
pub fn row_bytes(dtype: GgmlDType, k: usize) -> usize {
    k / dtype.block_size() * dtype.type_size()
}

/// A whole quantised tensor from its GGML block bytes.
pub fn qtensor(
    bytes: Vec<u8>,
    shape: (usize, usize),
    dtype: GgmlDType,
    device: &Device,
) -> Result<QTensor, ModelError> {
    let storage = QStorage::from_data(Cow::Owned(bytes), device, dtype)?;
    Ok(QTensor::new(storage, shape)?)
}

/// Quantised weights already made for one checkpoint and format, and those made now.
///
/// Weights made now are spilled to a side file as they come (so that nothing is held twice in
/// memory) and become the cache file in [`QuantCache::finish`].
pub struct QuantCache {
    path: Option<PathBuf>,
    dtype: GgmlDType,
    existing: Option<(gguf_file::Content, std::fs::File)>,
    spill: Option<Spill>,
    /// The cache file turned out not to fit this model part-way through: remove it, write none.
    stale: bool,
    /// Why the cache file could not be used, if it was there.
    problem: Option<String>,
    /// Tensors delivered from the cache file so far: copied into a new file if it turns out
    /// damaged part-way through.
    served: Vec<(String, (usize, usize), GgmlDType)>,
}

/// One tensor of a cache file being written.
struct SpillTensor {
    name: String,
    type_id: u32,
    shape: (usize, usize),
    /// Offset in the data section.
    offset: u64,
    crc: u32,
}

struct Spill {
    path: PathBuf,
    file: BufWriter<std::fs::File>,
    tensors: Vec<SpillTensor>,
    len: u64,
}

impl QuantCache {
    /// The cache for `files` in `dtype` under `dir` (`None`: quantise every time, keep nothing).
    pub fn open(dir: Option<&Path>, files: &WeightFiles, dtype: GgmlDType) -> Self {
        let path = dir.map(|d| d.join(cache_name(files, dtype)));
        let mut problem = None;
        let existing = path.as_ref().filter(|p| p.is_file()).and_then(|p| {
            let opened = std::fs::File::open(p)
                .map_err(|e| e.to_string())
                .and_then(|mut f| {
                    gguf_file::Content::read(&mut f)
                        .map(|c| (c, f))
                        .map_err(|e| e.to_string())
                });
            match opened {
                Ok((content, file)) if !format_matches(&content) => {
                    drop((content, file));
                    problem = Some(format!("{} is of another format version", p.display()));
                    None
                }
                Ok((content, file)) if !complete(&content, &file) => {
                    drop((content, file));
                    problem = Some(format!("{} is truncated", p.display()));
                    None
                }
                Ok((content, file)) => Some((content, file)),
                Err(e) => {
                    problem = Some(format!("{} is unreadable: {e}", p.display()));
                    None
                }
            }
        });
        Self {
            path,
            dtype,
            existing,
            spill: None,
            stale: false,
            problem,
            served: Vec::new(),
        }
    }

    /// Whether a readable cache file was found.
    pub fn is_warm(&self) -> bool {
        self.existing.is_some()
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }

    /// Delivers the weight `key` of shape `[n, k]` in `dtype` to `sink`, a chunk of rows at a
    /// time: from the cache file when it holds exactly that, else as `make` quantises it
    /// (spilled on the way, to be kept by [`QuantCache::finish`]).
    pub fn rows(
        &mut self,
        key: &str,
        shape: (usize, usize),
        dtype: GgmlDType,
        sink: &mut RowSink<'_>,
        make: impl FnOnce(&mut RowSink<'_>) -> Result<(), ModelError>,
    ) -> Result<(), ModelError> {
        let problem = if let Some((content, file)) = &mut self.existing {
            let info = content
                .tensor_infos
                .get(key)
                .filter(|i| i.ggml_dtype == dtype && i.shape.dims() == [shape.0, shape.1]);
            let want_crc = match content.metadata.get(&format!("{CRC_KEY}{key}")) {
                Some(gguf_file::Value::U32(c)) => Some(*c),
                _ => None,
            };
            let problem = match (info, want_crc) {
                (Some(info), Some(want_crc)) => {
                    let start = content.tensor_data_offset + info.offset;
                    match read_rows(file, start, shape, dtype, sink) {
                        Ok(crc) if crc == want_crc => {
                            self.served.push((key.to_string(), shape, dtype));
                            return Ok(());
                        }
                        // The rows delivered are overwritten below by freshly made ones.
                        Ok(_) => format!("`{key}` fails its checksum"),
                        Err(e) => format!("cannot read cached `{key}`: {e}"),
                    }
                }
                // The file does not belong to this model after all.
                _ => format!("`{key}` is missing or differs"),
            };
            Some(problem)
        } else {
            None
        };
        if let Some(problem) = problem {
            self.remake_file(problem);
        }
        if self.stale || self.path.is_none() {
            return make(sink);
        }
        let spill = match self.spill_file() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot keep quantised weights: {e}");
                self.stale = true;
                return make(sink);
            }
        };
        let offset = spill.len;
        let mut written = 0u64;
        let mut failed = None;
        let mut crc = crc32fast::Hasher::new();
        make(&mut |row0, n, bytes| {
            if failed.is_none() {
                match spill.file.write_all(bytes) {
                    Ok(()) => {
                        written += bytes.len() as u64;
                        crc.update(bytes);
                    }
                    Err(e) => failed = Some(e),
                }
            }
            sink(row0, n, bytes)
        })?;
        let padded = written.div_ceil(ALIGN) * ALIGN;
        if failed.is_none() {
            if let Err(e) = spill
                .file
                .write_all(&vec![0u8; (padded - written) as usize])
            {
                failed = Some(e);
            }
        }
        match (failed, ggml_type_id(dtype)) {
            (None, Some(type_id)) => {
                spill.tensors.push(SpillTensor {
                    name: key.to_string(),
                    type_id,
                    shape,
                    offset,
                    crc: crc.finalize(),
                });
                spill.len += padded;
            }
            (e, _) => {
                tracing::warn!("cannot keep quantised weights: {e:?}");
                self.stale = true;
            }
        }
        Ok(())
    }

    /// Gives up the cache file found damaged or foreign (`problem` says how) and starts a new
    /// one, into which the tensors already read from the old one, each verified, are copied: so
    /// this load still leaves a whole, good file behind.
    fn remake_file(&mut self, problem: String) {
        self.problem = Some(problem);
        let Some((content, mut old)) = self.existing.take() else {
            return;
        };
        let served = std::mem::take(&mut self.served);
        let copied = (|| -> std::io::Result<()> {
            let spill = self.spill_file()?;
            for (key, shape, dtype) in served {
                let (info, type_id) = content
                    .tensor_infos
                    .get(&key)
                    .zip(ggml_type_id(dtype))
                    .ok_or_else(|| std::io::Error::other(format!("`{key}` vanished")))?;
                let start = content.tensor_data_offset + info.offset;
                let mut crc = crc32fast::Hasher::new();
                let mut write = Ok(());
                read_rows(&mut old, start, shape, dtype, &mut |_, _, b| {
                    crc.update(b);
                    if write.is_ok() {
                        write = spill.file.write_all(b);
                    }
                    Ok(())
                })
                .map_err(|e| std::io::Error::other(e.to_string()))?;
                write?;
                let len = (shape.0 * row_bytes(dtype, shape.1)) as u64;
                let padded = len.div_ceil(ALIGN) * ALIGN;
                spill.file.write_all(&vec![0u8; (padded - len) as usize])?;
                spill.tensors.push(SpillTensor {
                    name: key,
                    type_id,
                    shape,
                    offset: spill.len,
                    crc: crc.finalize(),
                });
                spill.len += padded;
            }
            Ok(())
        })();
        if let Err(e) = copied {
            tracing::warn!("cannot keep quantised weights: {e}");
            self.stale = true;
        }
    }

    fn spill_file(&mut self) -> std::io::Result<&mut Spill> {
        if self.spill.is_none() {
            let path = self.path.as_ref().expect("checked by the caller");
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let spill_path = path.with_extension(format!("part{}", std::process::id()));
            self.spill = Some(Spill {
                file: BufWriter::new(std::fs::File::create(&spill_path)?),
                path: spill_path,
                tensors: Vec::new(),
                len: 0,
            });
        }
        Ok(self.spill.as_mut().expect("just made"))
    }

    /// Makes the spilled weights the cache file (header, then the data; written beside and
    /// renamed into place), or removes a cache file found not to fit.
    pub fn finish(mut self) -> Result<Option<PathBuf>, ModelError> {
        let Some(path) = self.path.clone() else {
            return Ok(None);
        };
        let spill = self.spill.take();
        if self.stale {
            let _ = std::fs::remove_file(&path);
            if let Some(s) = spill {
                let _ = std::fs::remove_file(&s.path);
            }
            return Ok(None);
        }
        let Some(spill) = spill else {
            return Ok(None);
        };
        let Spill {
            path: spill_path,
            file,
            tensors,
            ..
        } = spill;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            let mut w = BufWriter::new(std::fs::File::create(&tmp)?);
            write_gguf_header(&mut w, self.dtype, &tensors)?;
            std::io::copy(&mut std::fs::File::open(&spill_path)?, &mut w)?;
            // On disk before the rename: a crash leaves the old cache or the whole new one.
            w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            Ok(())
        };
        let result = write();
        let _ = std::fs::remove_file(&spill_path);
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(ModelError::io(&tmp, e));
        }
        std::fs::rename(&tmp, &path).map_err(|e| ModelError::io(&path, e))?;
        Ok(Some(path))
    }
}

/// Reads a `[n, k]` tensor's rows from a GGUF file in chunks; returns the CRC-32 of the bytes.
fn read_rows(
    file: &mut std::fs::File,
    start: u64,
    (n, k): (usize, usize),
    dtype: GgmlDType,
    sink: &mut RowSink<'_>,
) -> Result<u32, ModelError> {
    use std::io::{Read, Seek, SeekFrom};
    let rb = row_bytes(dtype, k);
    let io = |e: std::io::Error| ModelError::Input(e.to_string());
    file.seek(SeekFrom::Start(start)).map_err(io)?;
    let mut buf = vec![0u8; ROWS_PER_CHUNK.min(n) * rb];
    let mut row0 = 0;
    let mut crc = crc32fast::Hasher::new();
    while row0 < n {
        let rows = ROWS_PER_CHUNK.min(n - row0);
        let b = &mut buf[..rows * rb];
        file.read_exact(b).map_err(io)?;
        crc.update(b);
        sink(row0, rows, b)?;
        row0 += rows;
    }
    Ok(crc.finalize())
}

/// GGUF's data alignment (its default, which the reader assumes when none is given).
const ALIGN: u64 = 32;

/// GGML's type ids for the formats made here.
fn ggml_type_id(d: GgmlDType) -> Option<u32> {
    Some(match d {
        GgmlDType::Q4_0 => 2,
        GgmlDType::Q8_0 => 8,
        GgmlDType::Q4K => 12,
        GgmlDType::Q6K => 14,
        _ => return None,
    })
}

/// A GGUF v3 header: the format, the mode and each tensor's CRC-32 as metadata, then the
/// tensor infos, padded to [`ALIGN`].
fn write_gguf_header(
    w: &mut impl Write,
    dtype: GgmlDType,
    tensors: &[SpillTensor],
) -> std::io::Result<()> {
    let mut h: Vec<u8> = Vec::new();
    let string = |h: &mut Vec<u8>, s: &str| {
        h.extend_from_slice(&(s.len() as u64).to_le_bytes());
        h.extend_from_slice(s.as_bytes());
    };
    h.extend_from_slice(b"GGUF");
    h.extend_from_slice(&3u32.to_le_bytes());
    h.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    h.extend_from_slice(&(2 + tensors.len() as u64).to_le_bytes());
    string(&mut h, "dpa_explorer.cache_format");
    h.extend_from_slice(&4u32.to_le_bytes()); // u32
    h.extend_from_slice(&CACHE_FORMAT.to_le_bytes());
    string(&mut h, "dpa_explorer.mode");
    h.extend_from_slice(&8u32.to_le_bytes()); // string
    string(&mut h, mode_name(dtype));
    for t in tensors {
        string(&mut h, &format!("{CRC_KEY}{}", t.name));
        h.extend_from_slice(&4u32.to_le_bytes()); // u32
        h.extend_from_slice(&t.crc.to_le_bytes());
    }
    for t in tensors {
        let (rows, cols) = t.shape;
        string(&mut h, &t.name);
        h.extend_from_slice(&2u32.to_le_bytes());
        // GGUF lists dimensions innermost first.
        h.extend_from_slice(&(cols as u64).to_le_bytes());
        h.extend_from_slice(&(rows as u64).to_le_bytes());
        h.extend_from_slice(&t.type_id.to_le_bytes());
        h.extend_from_slice(&t.offset.to_le_bytes());
    }
    h.resize(
        (h.len() as u64).div_ceil(ALIGN) as usize * ALIGN as usize,
        0,
    );
    w.write_all(&h)
}

/// Whether every tensor's data lies inside the file (a crash or a full disk can cut it short).
fn complete(content: &gguf_file::Content, file: &std::fs::File) -> bool {
    let Ok(len) = file.metadata().map(|m| m.len()) else {
        return false;
    };
    content.tensor_infos.values().all(|i| {
        let d = i.ggml_dtype;
        let bytes = (i.shape.elem_count() / d.block_size() * d.type_size()) as u64;
        content.tensor_data_offset + i.offset + bytes <= len
    })
}

fn format_matches(content: &gguf_file::Content) -> bool {
    matches!(
        content.metadata.get("dpa_explorer.cache_format"),
        Some(gguf_file::Value::U32(v)) if *v == CACHE_FORMAT
    )
}

/// `<fingerprint>-<format>.gguf`: the fingerprint covers each weight file's resolved path,
/// size and modification time, so a changed or different checkpoint never meets old weights.
pub fn cache_name(files: &WeightFiles, dtype: GgmlDType) -> String {
    let mut h = Fnv::default();
    h.write(&CACHE_FORMAT.to_le_bytes());
    for p in files.paths() {
        let resolved = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
        h.write(resolved.to_string_lossy().as_bytes());
        if let Ok(meta) = std::fs::metadata(&resolved) {
            h.write(&meta.len().to_le_bytes());
            if let Ok(t) = meta.modified() {
                let since = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                h.write(&since.as_nanos().to_le_bytes());
            }
        }
    }
    format!("{:016x}-{}.gguf", h.0, mode_name(dtype))
}

pub fn mode_name(dtype: GgmlDType) -> &'static str {
    match dtype {
        GgmlDType::Q8_0 => "q8_0",
        GgmlDType::Q4K => "q4_k",
        GgmlDType::Q6K => "q6k",
        GgmlDType::Q5K => "q5k",
        GgmlDType::Q4_0 => "q4_0",
        _ => "other",
    }
}

/// FNV-1a, 64-bit: a stable hash for file names (std's hasher may change between releases).
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_fall_back_to_q8_0_then_dense() {
        assert_eq!(
            format_for(GgmlDType::Q4K, 4096, false),
            Some(GgmlDType::Q4K)
        );
        assert_eq!(
            format_for(GgmlDType::Q4K, 14336, false),
            Some(GgmlDType::Q4K)
        );
        assert_eq!(format_for(GgmlDType::Q4K, 96, false), Some(GgmlDType::Q8_0));
        assert_eq!(format_for(GgmlDType::Q8_0, 20, false), None);
        // This crate's kernel takes rows padded to whole super-blocks.
        assert_eq!(format_for(GgmlDType::Q4K, 576, true), Some(GgmlDType::Q4K));
        assert_eq!(stored_k(GgmlDType::Q4K, 576), 768);
        assert_eq!(stored_k(GgmlDType::Q8_0, 576), 576);
        assert_eq!(format_for(GgmlDType::Q4K, 20, true), None);
    }

    #[test]
    fn cache_names_differ_by_format_and_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.safetensors");
        let b = dir.path().join("b.safetensors");
        std::fs::write(&a, b"x").unwrap();
        std::fs::write(&b, b"yy").unwrap();
        let fa = WeightFiles::Safetensors(vec![a]);
        let fb = WeightFiles::Safetensors(vec![b]);
        assert_ne!(
            cache_name(&fa, GgmlDType::Q8_0),
            cache_name(&fa, GgmlDType::Q4K)
        );
        assert_ne!(
            cache_name(&fa, GgmlDType::Q8_0),
            cache_name(&fb, GgmlDType::Q8_0)
        );
        assert_eq!(
            cache_name(&fa, GgmlDType::Q8_0),
            cache_name(&fa, GgmlDType::Q8_0)
        );
        assert!(cache_name(&fa, GgmlDType::Q4K).ends_with("-q4_k.gguf"));
    }
}
