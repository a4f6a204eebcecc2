//! Quantised projection weights in GGML block formats (`q8_0`, `q4_0`, `q4_k`), made from the
//! checkpoint at load time and kept in a GGUF file under the cache directory, keyed by the
//! checkpoint's identity and the format, so that the next start reads them instead of
//! quantising again. Each tensor's bytes carry a CRC-32 in the header, checked as they are
//! read, or, for weights used in place from the mapped file, in the background after the load
//! (`integrity.rs`): a damaged file is noticed, and made anew.

use std::borrow::Cow;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::quantized::{gguf_file, GgmlDType, QStorage, QTensor};
use candle_core::{DType, Device};
use memmap2::Mmap;
use rayon::prelude::*;

use super::kernels::bytes::WeightBytes;

use super::kquant;
use super::weights::{Checkpoint, WeightFiles};
use super::ModelError;

/// Rows quantised at a time: bounds the f32 copy a tensor needs while it is being quantised.
const ROWS_PER_CHUNK: usize = 512;
/// Changes whenever what is written changes, so that old cache files are never read.
const CACHE_FORMAT: u32 = 4;
/// Metadata key prefix of each tensor's CRC-32 (of its data bytes, padding excluded).
const CRC_KEY: &str = "dpa_explorer.crc32.";
/// Metadata key prefix of the byte length of a tensor kept in this crate's packed layout.
const PACKED_KEY: &str = "dpa_explorer.packed.";

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
/// A cache file is memory-mapped: weights in this crate's packed layout are used in place from
/// it ([`QuantCache::packed`]), so a warm start copies nothing. Weights made now are spilled to
/// a side file as they come (so that nothing is held twice in memory) and become the cache file
/// in [`QuantCache::finish`].
pub struct QuantCache {
    path: Option<PathBuf>,
    dtype: GgmlDType,
    existing: Option<Existing>,
    spill: Option<Spill>,
    /// The cache file turned out not to fit this model part-way through: remove it, write none.
    stale: bool,
    /// Why the cache file could not be used, if it was there.
    problem: Option<String>,
    /// Tensors delivered from the cache file so far: copied into a new file if it turns out
    /// damaged part-way through.
    served: Vec<Served>,
    /// Packed tensors are used in place unchecked, for [`QuantCache::unchecked`] to hand on.
    defer: bool,
    /// A tensor used unchecked failed its check when the file had to be made anew.
    damaged_in_use: bool,
}

/// A cache file found at open: its header and its mapped bytes.
struct Existing {
    content: gguf_file::Content,
    map: Arc<Mmap>,
}

/// Where one tensor's bytes lie in the cache file, and what they are.
#[derive(Clone)]
struct Stored {
    name: String,
    type_id: u32,
    shape: (usize, usize),
    /// `Some(len)`: this crate's packed layout, `len` bytes; `None`: GGML's row-major blocks.
    packed: Option<u64>,
    crc: u32,
}

/// A tensor delivered from the cache file: its description and its bytes' range in the map.
struct Served {
    tensor: Stored,
    start: usize,
    len: usize,
    /// Whether its checksum was checked as it was delivered.
    checked: bool,
}

/// One tensor of a cache file being written, at `offset` in the data section.
struct SpillTensor {
    tensor: Stored,
    offset: u64,
}

struct Spill {
    path: PathBuf,
    file: BufWriter<std::fs::File>,
    tensors: Vec<SpillTensor>,
    len: u64,
}

impl QuantCache {
    /// The cache for `files` in `dtype` under `dir` (`None`: quantise every time, keep nothing).
    /// `packed`: the weights are for this crate's CPU kernels (their packed layout is kept);
    /// else for candle's quantised matmul (GGML's layout), in a file of its own.
    pub fn open(dir: Option<&Path>, files: &WeightFiles, dtype: GgmlDType, packed: bool) -> Self {
        let path = dir.map(|d| d.join(cache_name(files, dtype, packed)));
        let mut problem = None;
        let existing = path.as_ref().filter(|p| p.is_file()).and_then(|p| {
            read_existing(p)
                .map_err(|e| problem = Some(format!("{} {e}", p.display())))
                .ok()
        });
        Self {
            path,
            dtype,
            existing,
            spill: None,
            stale: false,
            problem,
            served: Vec::new(),
            defer: false,
            damaged_in_use: false,
        }
    }

    /// Packed tensors are then used in place before their checksums are checked; the caller
    /// has them checked ([`QuantCache::unchecked`]) before any result is shown.
    pub fn defer_checks(&mut self) {
        self.defer = true;
    }

    /// The tensors used in place unchecked, to be checked in the background; `None` when
    /// there are none (a cold start, a file made anew, or checks not deferred).
    pub fn unchecked(&self) -> Option<super::integrity::Pending> {
        let ex = self.existing.as_ref()?;
        let tensors: Vec<_> = self
            .served
            .iter()
            .filter(|s| !s.checked)
            .map(|s| super::integrity::Unchecked {
                name: s.tensor.name.clone(),
                start: s.start,
                len: s.len,
                crc: s.tensor.crc,
            })
            .collect();
        (!tensors.is_empty()).then(|| super::integrity::Pending {
            path: self.path.clone().unwrap_or_default(),
            map: ex.map.clone(),
            tensors,
        })
    }

    /// Whether a tensor this load uses in place turned out damaged: the load must be made
    /// again with checks first, which makes that tensor anew.
    pub fn damaged_in_use(&self) -> bool {
        self.damaged_in_use
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

    /// The cache file's record of `key` in `dtype`, `[n, k]`, laid out as `packed` says, and
    /// where its bytes lie in the map; `Err` says how the file differs.
    fn find(
        &self,
        key: &str,
        shape: (usize, usize),
        dtype: GgmlDType,
        packed: Option<u64>,
    ) -> Option<Result<(Arc<Mmap>, Served), String>> {
        let ex = self.existing.as_ref()?;
        let found = (|| {
            let info = ex.content.tensor_infos.get(key)?;
            if info.ggml_dtype != dtype || info.shape.dims() != [shape.0, shape.1] {
                return None;
            }
            let crc = match ex.content.metadata.get(&format!("{CRC_KEY}{key}"))? {
                gguf_file::Value::U32(c) => *c,
                _ => return None,
            };
            if packed_len(&ex.content, key) != packed {
                return None;
            }
            let len = tensor_len(&ex.content, key, info)?;
            let start = ex.content.tensor_data_offset.checked_add(info.offset)?;
            let start = usize::try_from(start).ok()?;
            let len = usize::try_from(len).ok()?;
            let type_id = ggml_type_id(dtype)?;
            (start.checked_add(len)? <= ex.map.len()).then(|| Served {
                tensor: Stored {
                    name: key.to_string(),
                    type_id,
                    shape,
                    packed,
                    crc,
                },
                start,
                len,
                checked: true,
            })
        })();
        // The file does not belong to this model after all.
        Some(
            found
                .map(|s| (ex.map.clone(), s))
                .ok_or_else(|| format!("`{key}` is missing or differs")),
        )
    }

    /// The packed bytes of `key` (`len` of them, for a `[n, k]` weight in `dtype`), in place
    /// in the mapped cache file, once their checksum holds; `None` when they must be made
    /// (then [`QuantCache::keep_packed`] keeps what is made).
    pub fn packed(
        &mut self,
        key: &str,
        shape: (usize, usize),
        dtype: GgmlDType,
        len: usize,
    ) -> Option<WeightBytes> {
        let problem = match self.find(key, shape, dtype, Some(len as u64))? {
            Ok((map, served)) if self.defer => {
                let mapped = WeightBytes::mapped(map, served.start, served.len);
                self.served.push(Served {
                    checked: false,
                    ..served
                });
                return mapped;
            }
            Ok((map, served)) => {
                let bytes = &map[served.start..served.start + served.len];
                if crc_of(bytes) == served.tensor.crc {
                    let mapped = WeightBytes::mapped(map.clone(), served.start, served.len);
                    self.served.push(served);
                    return mapped;
                }
                format!("`{key}` fails its checksum")
            }
            Err(problem) => problem,
        };
        self.remake_file(problem);
        None
    }

    /// Keeps `bytes`, the packed form of `key` made in this load, for the next start.
    pub fn keep_packed(
        &mut self,
        key: &str,
        shape: (usize, usize),
        dtype: GgmlDType,
        bytes: &[u8],
    ) {
        let tensor = ggml_type_id(dtype).map(|type_id| Stored {
            name: key.to_string(),
            type_id,
            shape,
            packed: Some(bytes.len() as u64),
            crc: crc_of(bytes),
        });
        if let Some(tensor) = tensor {
            self.spill_bytes(tensor, bytes);
        }
    }

    /// Delivers the weight `key` of shape `[n, k]` in `dtype` to `sink` as GGML blocks, a chunk
    /// of rows at a time: from the cache file when it holds exactly that, else as `make`
    /// quantises it (spilled on the way, to be kept by [`QuantCache::finish`]).
    pub fn rows(
        &mut self,
        key: &str,
        shape: (usize, usize),
        dtype: GgmlDType,
        sink: &mut RowSink<'_>,
        make: impl FnOnce(&mut RowSink<'_>) -> Result<(), ModelError>,
    ) -> Result<(), ModelError> {
        let problem = match self.find(key, shape, dtype, None) {
            Some(Ok((map, served))) => {
                let bytes = &map[served.start..served.start + served.len];
                let mut crc = crc32fast::Hasher::new();
                let rb = row_bytes(dtype, shape.1);
                let mut row0 = 0;
                for chunk in bytes.chunks(ROWS_PER_CHUNK * rb.max(1)) {
                    crc.update(chunk);
                    let rows = chunk.len() / rb.max(1);
                    sink(row0, rows, chunk)?;
                    row0 += rows;
                }
                if crc.finalize() == served.tensor.crc {
                    self.served.push(served);
                    return Ok(());
                }
                // The rows delivered are overwritten below by freshly made ones.
                Some(format!("`{key}` fails its checksum"))
            }
            Some(Err(problem)) => Some(problem),
            None => None,
        };
        if let Some(problem) = problem {
            self.remake_file(problem);
        }
        if self.stale || self.path.is_none() {
            return make(sink);
        }
        let (spill, type_id) = match (self.spill_file(), ggml_type_id(dtype)) {
            (Ok(s), Some(t)) => (s, t),
            (Err(e), _) => {
                tracing::warn!("cannot keep quantised weights: {e}");
                self.stale = true;
                return make(sink);
            }
            (_, None) => return make(sink),
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
        match failed {
            None => {
                spill.tensors.push(SpillTensor {
                    tensor: Stored {
                        name: key.to_string(),
                        type_id,
                        shape,
                        packed: None,
                        crc: crc.finalize(),
                    },
                    offset,
                });
                spill.len += padded;
            }
            Some(e) => {
                tracing::warn!("cannot keep quantised weights: {e}");
                self.stale = true;
            }
        }
        Ok(())
    }

    /// Appends one tensor's bytes to the side file, padded to [`ALIGN`]; a failure to write
    /// costs only the cache file, never this load.
    fn spill_bytes(&mut self, tensor: Stored, bytes: &[u8]) {
        if self.stale || self.path.is_none() {
            return;
        }
        let written = self.spill_file().and_then(|spill| {
            let len = bytes.len() as u64;
            let padded = len.div_ceil(ALIGN) * ALIGN;
            spill.file.write_all(bytes)?;
            spill.file.write_all(&vec![0u8; (padded - len) as usize])?;
            spill.tensors.push(SpillTensor {
                tensor,
                offset: spill.len,
            });
            spill.len += padded;
            Ok(())
        });
        if let Err(e) = written {
            tracing::warn!("cannot keep quantised weights: {e}");
            self.stale = true;
        }
    }

    /// Gives up the cache file found damaged or foreign (`problem` says how) and starts a new
    /// one, into which the tensors already read from the old one, each verified, are copied: so
    /// this load still leaves a whole, good file behind.
    fn remake_file(&mut self, problem: String) {
        self.problem = Some(problem);
        let Some(old) = self.existing.take() else {
            return;
        };
        for served in std::mem::take(&mut self.served) {
            let bytes = &old.map[served.start..served.start + served.len];
            if !served.checked && crc_of(bytes) != served.tensor.crc {
                // In use unchecked and damaged: left out, to be made by a load that checks.
                self.damaged_in_use = true;
                continue;
            }
            self.spill_bytes(served.tensor, bytes);
        }
    }

    fn spill_file(&mut self) -> std::io::Result<&mut Spill> {
        if self.spill.is_none() {
            let path = self.path.as_ref().expect("checked by the caller");
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let spill_path = path.with_extension(format!("part{}", std::process::id()));
            let mut file = BufWriter::new(std::fs::File::create(&spill_path)?);
            // Room for the header, written last: the side file becomes the cache file as it is.
            file.write_all(&vec![0u8; HEADER_ROOM as usize])?;
            self.spill = Some(Spill {
                file,
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
        let header = gguf_header(self.dtype, &tensors, Some(HEADER_ROOM));
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let write = || -> std::io::Result<PathBuf> {
            use std::io::{Seek, SeekFrom};
            let mut file = file.into_inner().map_err(|e| e.into_error())?;
            if header.len() as u64 == HEADER_ROOM {
                // The header fills its room exactly: no copy of gigabytes of weights.
                file.seek(SeekFrom::Start(0))?;
                file.write_all(&header)?;
                // On disk before the rename: a crash leaves the old cache or the whole new one.
                file.sync_all()?;
                return Ok(spill_path.clone());
            }
            let mut w = BufWriter::new(std::fs::File::create(&tmp)?);
            w.write_all(&gguf_header(self.dtype, &tensors, None))?;
            let mut data = std::fs::File::open(&spill_path)?;
            data.seek(SeekFrom::Start(HEADER_ROOM))?;
            std::io::copy(&mut data, &mut w)?;
            w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            Ok(tmp.clone())
        };
        let written = match write() {
            Ok(p) => p,
            Err(e) => {
                let _ = std::fs::remove_file(&spill_path);
                let _ = std::fs::remove_file(&tmp);
                return Err(ModelError::io(&tmp, e));
            }
        };
        if written != spill_path {
            let _ = std::fs::remove_file(&spill_path);
        }
        if let Err(e) = std::fs::rename(&written, &path) {
            let _ = std::fs::remove_file(&written);
            return Err(ModelError::io(&path, e));
        }
        // Mapped by this process or another, the old file stays whole until unmapped.
        if let Some(dir) = path.parent() {
            remove_other_formats(dir);
        }
        Ok(Some(path))
    }
}

/// Removes cache files of another cache format from `dir`: no version of this build can read
/// them, and each holds gigabytes for a 7B. Only files named as this module names them and
/// whose header says so are touched.
fn remove_other_formats(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let ours = name.len() > 22
            && name.ends_with(".gguf")
            && name.as_bytes()[16] == b'-'
            && name[..16].bytes().all(|b| b.is_ascii_hexdigit());
        if !ours || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let format = std::fs::File::open(entry.path())
            .ok()
            .and_then(|mut f| cache_format(&read_header(&mut f).ok()?));
        if format.is_some_and(|v| v != CACHE_FORMAT) {
            tracing::info!("removing {}: an older cache format", entry.path().display());
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Reads and maps a cache file; `Err` completes "<path> ...".
fn read_existing(p: &Path) -> Result<Existing, String> {
    let mut file = std::fs::File::open(p).map_err(|e| format!("is unreadable: {e}"))?;
    let content = read_header(&mut file).map_err(|e| format!("is unreadable: {e}"))?;
    if !format_matches(&content) {
        return Err("is of another format version".into());
    }
    let map = map_or_read(&mut file, false).map_err(|e| format!("is unreadable: {e}"))?;
    if !complete(&content, map.len() as u64) {
        return Err("is truncated".into());
    }
    Ok(Existing {
        content,
        map: Arc::new(map),
    })
}

/// A GGUF header. A malformed one can panic inside the GGUF reader (an alignment of zero
/// divides by zero there): that is an unreadable file, not a crash.
fn read_header(file: &mut std::fs::File) -> Result<gguf_file::Content, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        gguf_file::Content::read(file)
    }))
    .map_err(|_| "malformed header".to_string())?
    .map_err(|e| e.to_string())
}

/// The whole file mapped, or, where it cannot be mapped (`read`, or a file system without
/// mapping), read into anonymous memory: the weights are then in memory as a cold start's are.
fn map_or_read(file: &mut std::fs::File, read: bool) -> std::io::Result<Mmap> {
    use std::io::{Read, Seek, SeekFrom};
    if !read {
        // SAFETY: cache files are only ever replaced whole by a rename, never written in place,
        // so the mapped bytes stay what they were when their checksums were checked. (A file
        // changed in place by hand could still change under the mapping, as with any mapped
        // checkpoint.)
        match unsafe { Mmap::map(&*file) } {
            Ok(map) => return Ok(map),
            Err(e) => tracing::warn!("cannot map the cache file, reading it instead: {e}"),
        }
    }
    let len = usize::try_from(file.metadata()?.len()).map_err(std::io::Error::other)?;
    if len == 0 {
        return Err(std::io::Error::other("empty file"));
    }
    let mut anon = memmap2::MmapMut::map_anon(len)?;
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut anon)?;
    anon.make_read_only()
}

/// CRC-32 of `bytes`, in parallel chunks (a warm start checks gigabytes of mapped weights).
fn crc_of(bytes: &[u8]) -> u32 {
    const CHUNK: usize = 8 << 20;
    if bytes.len() <= CHUNK {
        return crc32fast::hash(bytes);
    }
    bytes
        .par_chunks(CHUNK)
        .map(|c| {
            let mut h = crc32fast::Hasher::new();
            h.update(c);
            h
        })
        .collect::<Vec<_>>()
        .into_iter()
        .reduce(|mut a, b| {
            a.combine(&b);
            a
        })
        .map_or_else(|| crc32fast::hash(&[]), |h| h.finalize())
}

/// The packed length recorded for `key`, if its bytes are in this crate's packed layout.
fn packed_len(content: &gguf_file::Content, key: &str) -> Option<u64> {
    match content.metadata.get(&format!("{PACKED_KEY}{key}"))? {
        gguf_file::Value::U64(n) => Some(*n),
        _ => None,
    }
}

/// Bytes of `key`'s data: its packed length, or its GGML blocks (`None` on overflow).
fn tensor_len(
    content: &gguf_file::Content,
    key: &str,
    info: &gguf_file::TensorInfo,
) -> Option<u64> {
    if let Some(n) = packed_len(content, key) {
        return Some(n);
    }
    let d = info.ggml_dtype;
    let elems = info
        .shape
        .dims()
        .iter()
        .try_fold(1u64, |a, &n| a.checked_mul(n as u64))?;
    (elems / d.block_size() as u64).checked_mul(d.type_size() as u64)
}

/// Bytes kept at the start of the side file for the header (about 250 per tensor are needed).
const HEADER_ROOM: u64 = 1 << 20;

/// GGUF's data alignment: a cache line, written as `general.alignment` (GGUF's default is 32).
const ALIGN: u64 = 64;

/// The type a cache file records for `Q12`'s packed form, which GGUF has no type for: GGML's
/// f16, which no mode keeps in a cache (its length is the packed length the header states, and
/// the file's name and mode entry say `q12`).
pub const Q12_CACHE_TYPE: GgmlDType = GgmlDType::F16;

/// GGML's type ids for the formats made here.
fn ggml_type_id(d: GgmlDType) -> Option<u32> {
    Some(match d {
        GgmlDType::Q4_0 => 2,
        GgmlDType::Q8_0 => 8,
        GgmlDType::Q4K => 12,
        GgmlDType::Q6K => 14,
        GgmlDType::BF16 => 30,
        Q12_CACHE_TYPE => 1,
        _ => return None,
    })
}

/// A GGUF v3 header: the alignment, the format, the mode, each tensor's CRC-32 (and packed
/// length) as metadata, then the tensor infos, padded to [`ALIGN`]. With `room`, a padding
/// entry makes it exactly `room` bytes long where it fits (`room` a multiple of [`ALIGN`]).
fn gguf_header(dtype: GgmlDType, tensors: &[SpillTensor], room: Option<u64>) -> Vec<u8> {
    let build = |pad: Option<usize>| {
        let mut h: Vec<u8> = Vec::new();
        let string = |h: &mut Vec<u8>, s: &str| {
            h.extend_from_slice(&(s.len() as u64).to_le_bytes());
            h.extend_from_slice(s.as_bytes());
        };
        h.extend_from_slice(b"GGUF");
        h.extend_from_slice(&3u32.to_le_bytes());
        h.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
        let packed = tensors.iter().filter(|t| t.tensor.packed.is_some()).count();
        let entries = 3 + tensors.len() + packed + usize::from(pad.is_some());
        h.extend_from_slice(&(entries as u64).to_le_bytes());
        string(&mut h, "general.alignment");
        h.extend_from_slice(&4u32.to_le_bytes()); // u32
        h.extend_from_slice(&(ALIGN as u32).to_le_bytes());
        string(&mut h, "dpa_explorer.cache_format");
        h.extend_from_slice(&4u32.to_le_bytes()); // u32
        h.extend_from_slice(&CACHE_FORMAT.to_le_bytes());
        string(&mut h, "dpa_explorer.mode");
        h.extend_from_slice(&8u32.to_le_bytes()); // string
        string(&mut h, mode_name(dtype));
        if let Some(pad) = pad {
            string(&mut h, "dpa_explorer.padding");
            h.extend_from_slice(&8u32.to_le_bytes()); // string
            string(&mut h, &" ".repeat(pad));
        }
        for SpillTensor { tensor: t, .. } in tensors {
            string(&mut h, &format!("{CRC_KEY}{}", t.name));
            h.extend_from_slice(&4u32.to_le_bytes()); // u32
            h.extend_from_slice(&t.crc.to_le_bytes());
            if let Some(len) = t.packed {
                string(&mut h, &format!("{PACKED_KEY}{}", t.name));
                h.extend_from_slice(&10u32.to_le_bytes()); // u64
                h.extend_from_slice(&len.to_le_bytes());
            }
        }
        for SpillTensor { tensor: t, offset } in tensors {
            let (rows, cols) = t.shape;
            string(&mut h, &t.name);
            h.extend_from_slice(&2u32.to_le_bytes());
            // GGUF lists dimensions innermost first.
            h.extend_from_slice(&(cols as u64).to_le_bytes());
            h.extend_from_slice(&(rows as u64).to_le_bytes());
            h.extend_from_slice(&t.type_id.to_le_bytes());
            h.extend_from_slice(&offset.to_le_bytes());
        }
        h
    };
    let padded = room.and_then(|room| {
        let h = build(Some(0));
        let pad = usize::try_from(room).ok()?.checked_sub(h.len())?;
        Some(build(Some(pad)))
    });
    padded.unwrap_or_else(|| {
        let mut h = build(None);
        h.resize(h.len().div_ceil(ALIGN as usize) * ALIGN as usize, 0);
        h
    })
}

/// Whether every tensor's data lies inside the file (a crash or a full disk can cut it short),
/// in checked arithmetic: the header's sizes and offsets are the file's word, not ours.
fn complete(content: &gguf_file::Content, file_len: u64) -> bool {
    content.tensor_infos.iter().all(|(name, i)| {
        tensor_len(content, name, i)
            .and_then(|n| {
                content
                    .tensor_data_offset
                    .checked_add(i.offset)?
                    .checked_add(n)
            })
            .is_some_and(|end| end <= file_len)
    })
}

fn format_matches(content: &gguf_file::Content) -> bool {
    cache_format(content) == Some(CACHE_FORMAT)
}

/// The cache format a file's header states, if it states one.
fn cache_format(content: &gguf_file::Content) -> Option<u32> {
    match content.metadata.get("dpa_explorer.cache_format")? {
        gguf_file::Value::U32(v) => Some(*v),
        _ => None,
    }
}

/// `<fingerprint>-<format>.gguf` (`-ggml.gguf` for weights in GGML's own layout, which a GPU
/// load keeps): the fingerprint covers each weight file's resolved path, size and modification
/// time, so a changed or different checkpoint never meets old weights.
pub fn cache_name(files: &WeightFiles, dtype: GgmlDType, packed: bool) -> String {
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
    let layout = if packed { "" } else { "-ggml" };
    format!("{:016x}-{}{layout}.gguf", h.0, mode_name(dtype))
}

pub fn mode_name(dtype: GgmlDType) -> &'static str {
    match dtype {
        GgmlDType::Q8_0 => "q8_0",
        GgmlDType::Q4K => "q4_k",
        GgmlDType::Q6K => "q6k",
        GgmlDType::Q5K => "q5k",
        GgmlDType::Q4_0 => "q4_0",
        GgmlDType::BF16 => "bf16",
        Q12_CACHE_TYPE => "q12",
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

    /// The header fills the room kept for it exactly (so the side file is renamed, not copied)
    /// and reads back with the data right behind it; one too big for its room is written apart.
    #[test]
    fn headers_fill_their_room_or_stand_alone() {
        let tensors: Vec<SpillTensor> = (0..3)
            .map(|i| SpillTensor {
                tensor: Stored {
                    name: format!("model.layers.{i}.mlp.down_proj.weight"),
                    type_id: 8,
                    shape: (64, 32),
                    packed: (i != 1).then_some(2176),
                    crc: 7 + i as u32,
                },
                offset: i * 2176,
            })
            .collect();
        let read =
            |h: &[u8]| gguf_file::Content::read(&mut std::io::Cursor::new(h.to_vec())).unwrap();
        let h = gguf_header(GgmlDType::Q8_0, &tensors, Some(HEADER_ROOM));
        assert_eq!(h.len() as u64, HEADER_ROOM);
        let c = read(&h);
        assert_eq!(c.tensor_data_offset, HEADER_ROOM);
        assert!(format_matches(&c));
        assert_eq!(c.tensor_infos.len(), 3);
        assert_eq!(
            packed_len(&c, "model.layers.0.mlp.down_proj.weight"),
            Some(2176)
        );
        assert_eq!(packed_len(&c, "model.layers.1.mlp.down_proj.weight"), None);
        let small = gguf_header(GgmlDType::Q8_0, &tensors, Some(256));
        assert!(small.len() > 256 && (small.len() as u64).is_multiple_of(ALIGN));
        assert_eq!(read(&small).tensor_data_offset, small.len() as u64);
    }

    /// Where a file cannot be mapped it is read: the same bytes either way.
    #[test]
    fn a_file_that_cannot_be_mapped_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.gguf");
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let mut f = std::fs::File::open(&path).unwrap();
        let mapped = map_or_read(&mut f, false).unwrap();
        let read = map_or_read(&mut f, true).unwrap();
        assert_eq!(&mapped[..], &bytes[..]);
        assert_eq!(&read[..], &bytes[..]);
        std::fs::write(&path, b"").unwrap();
        assert!(map_or_read(&mut std::fs::File::open(&path).unwrap(), true).is_err());
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
            cache_name(&fa, GgmlDType::Q8_0, true),
            cache_name(&fa, GgmlDType::Q4K, true)
        );
        assert_ne!(
            cache_name(&fa, GgmlDType::Q8_0, true),
            cache_name(&fb, GgmlDType::Q8_0, true)
        );
        assert_eq!(
            cache_name(&fa, GgmlDType::Q8_0, true),
            cache_name(&fa, GgmlDType::Q8_0, true)
        );
        assert!(cache_name(&fa, GgmlDType::Q4K, true).ends_with("-q4_k.gguf"));
        // GGML's layout (a GPU load) never meets the CPU kernels' packed one.
        assert!(cache_name(&fa, GgmlDType::Q8_0, false).ends_with("-q8_0-ggml.gguf"));
    }
}
