//! Checkpoint files: one `model.safetensors`, sharded safetensors with an index, or PyTorch
//! pickles. Safetensors are memory-mapped and each tensor is copied once, straight into the
//! compute dtype; its mapped pages are released as soon as it is loaded.
//!
//! Nothing in a checkpoint is trusted: every header's sizes are checked against the bytes of
//! its file before anything is allocated for them, and every tensor is scanned for non-finite
//! values as it is read ([`finite`]). Which files make a checkpoint is decided in
//! [`super::files`]. Called by the model loader (and the quantiser, through [`Checkpoint`]).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use memmap2::Mmap;

use super::files::{self, shown};
use super::ModelError;

pub mod finite;

/// The weight files of a checkpoint, in the order they should be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeightFiles {
    Safetensors(Vec<PathBuf>),
    PyTorch(Vec<PathBuf>),
}

impl WeightFiles {
    pub fn paths(&self) -> &[PathBuf] {
        match self {
            WeightFiles::Safetensors(p) | WeightFiles::PyTorch(p) => p,
        }
    }

    /// Finds the weights in a model directory by the rule in [`files::plan`].
    pub fn find(dir: &Path) -> Result<Self, ModelError> {
        let (plan, paths) = files::weight_paths(dir)?;
        Ok(if plan.is_safetensors() {
            WeightFiles::Safetensors(paths)
        } else {
            WeightFiles::PyTorch(paths)
        })
    }
}

/// One tensor of a safetensors file, as its header describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTensor {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// Byte range inside the file; its length is exactly the shape's elements times the dtype's
    /// size, and it lies inside the file.
    pub range: (usize, usize),
}

/// The tensors a safetensors file's bytes hold, with the header checked against the bytes
/// present: sizes, offsets and shapes agree, nothing reaches past the end, no overflow.
pub fn tensor_table(bytes: &[u8]) -> Result<Vec<StoredTensor>, String> {
    let (header_len, metadata) = safetensors::SafeTensors::read_metadata(bytes).map_err(|e| {
        format!(
            "not a valid safetensors file (truncated or corrupt): {}",
            shown(&e.to_string())
        )
    })?;
    let data_start = header_len
        .checked_add(8)
        .ok_or("the safetensors header length overflows")?;
    let mut out = Vec::with_capacity(metadata.tensors().len());
    for (name, info) in metadata.tensors() {
        let dtype = match info.dtype {
            safetensors::Dtype::BF16 => DType::BF16,
            safetensors::Dtype::F16 => DType::F16,
            safetensors::Dtype::F32 => DType::F32,
            other => {
                return Err(format!(
                "tensor `{}` is stored as {other:?}; only bf16, f16 and f32 weights are supported",
                shown(&name)
            ))
            }
        };
        // The crate checks these already; a wrong range here would be an out-of-bounds slice
        // later, so they are checked again where they are used.
        let (a, b) = info.data_offsets;
        let range = data_start
            .checked_add(a)
            .zip(data_start.checked_add(b))
            .filter(|&(a, b)| a <= b && b <= bytes.len());
        let expected = byte_size(&info.shape, dtype);
        let Some(range) = range.filter(|(a, b)| Some(b - a) == expected) else {
            return Err(format!(
                "tensor `{}` has shape {:?} but its bytes do not match ({a}..{b} of a {}-byte file)",
                shown(&name),
                info.shape,
                bytes.len()
            ));
        };
        out.push(StoredTensor {
            name,
            dtype,
            shape: info.shape.clone(),
            range,
        });
    }
    Ok(out)
}

/// Bytes a tensor of `shape` takes in `dtype`; `None` when that does not fit in a `usize`.
fn byte_size(shape: &[usize], dtype: DType) -> Option<usize> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))?
        .checked_mul(dtype.size_in_bytes())
}

#[derive(Debug, Clone)]
struct Entry {
    file: usize,
    dtype: DType,
    shape: Vec<usize>,
    /// Byte range inside the mapped safetensors file.
    range: (usize, usize),
}

enum Backing {
    Safetensors(Vec<Mmap>),
    PyTorch(Vec<candle_core::pickle::PthTensors>),
}

/// An opened checkpoint: every tensor's name, dtype and shape, loaded on demand.
pub struct Checkpoint {
    paths: Vec<PathBuf>,
    backing: Backing,
    entries: HashMap<String, Entry>,
    taken: BTreeSet<String>,
}

impl Checkpoint {
    pub fn open(files: &WeightFiles) -> Result<Self, ModelError> {
        match files {
            WeightFiles::Safetensors(paths) => Self::open_safetensors(paths),
            WeightFiles::PyTorch(paths) => Self::open_pytorch(paths),
        }
    }

    fn open_safetensors(paths: &[PathBuf]) -> Result<Self, ModelError> {
        let mut maps = Vec::with_capacity(paths.len());
        let mut entries = HashMap::new();
        for (file, path) in paths.iter().enumerate() {
            let f = files::open_regular(path, "a weight file")?;
            // SAFETY: the file is opened read-only; a checkpoint rewritten while it is being read
            // is outside what any loader can defend against (transformers and candle map it too).
            let mmap = unsafe { Mmap::map(&f) }.map_err(|e| ModelError::io(path, e))?;
            let corrupt = |message: String| ModelError::Checkpoint {
                path: path.clone(),
                message,
            };
            for t in tensor_table(&mmap).map_err(corrupt)? {
                let entry = Entry {
                    file,
                    dtype: t.dtype,
                    shape: t.shape,
                    range: t.range,
                };
                if entries.insert(t.name.clone(), entry).is_some() {
                    return Err(corrupt(format!(
                        "tensor `{}` appears in more than one shard",
                        shown(&t.name)
                    )));
                }
            }
            maps.push(mmap);
        }
        Ok(Self {
            paths: paths.to_vec(),
            backing: Backing::Safetensors(maps),
            entries,
            taken: BTreeSet::new(),
        })
    }

    fn open_pytorch(paths: &[PathBuf]) -> Result<Self, ModelError> {
        let mut tables = Vec::with_capacity(paths.len());
        let mut entries = HashMap::new();
        for (file, path) in paths.iter().enumerate() {
            let len = files::open_regular(path, "a weight file")?
                .metadata()
                .map_err(|e| ModelError::io(path, e))?
                .len();
            let pth = candle_core::pickle::PthTensors::new(path, None).map_err(|e| {
                ModelError::Checkpoint {
                    path: path.clone(),
                    message: format!(
                        "not a readable PyTorch checkpoint: {}",
                        shown(&e.to_string())
                    ),
                }
            })?;
            check_pickle_sizes(path, len, pth.tensor_infos())?;
            for (name, info) in pth.tensor_infos() {
                let entry = Entry {
                    file,
                    dtype: info.dtype,
                    shape: info.layout.shape().dims().to_vec(),
                    range: (0, 0),
                };
                if entries.insert(name.clone(), entry).is_some() {
                    return Err(ModelError::Checkpoint {
                        path: path.clone(),
                        message: format!("tensor `{}` appears in more than one shard", shown(name)),
                    });
                }
            }
            tables.push(pth);
        }
        Ok(Self {
            paths: paths.to_vec(),
            backing: Backing::PyTorch(tables),
            entries,
            taken: BTreeSet::new(),
        })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.entries.get(name).map(|e| e.shape.as_slice())
    }

    /// The dtype one tensor is stored in.
    pub fn dtype_of(&self, name: &str) -> Option<DType> {
        self.entries.get(name).map(|e| e.dtype)
    }

    /// The dtype most of the checkpoint's bytes are stored in.
    pub fn stored_dtype(&self) -> Option<DType> {
        let mut bytes: HashMap<DType, usize> = HashMap::new();
        for e in self.entries.values() {
            let n = byte_size(&e.shape, e.dtype).unwrap_or(usize::MAX);
            let total = bytes.entry(e.dtype).or_default();
            *total = total.saturating_add(n);
        }
        bytes.into_iter().max_by_key(|(_, n)| *n).map(|(d, _)| d)
    }

    /// Total bytes of all tensors as stored.
    pub fn stored_bytes(&self) -> usize {
        self.entries
            .values()
            .map(|e| byte_size(&e.shape, e.dtype).unwrap_or(usize::MAX))
            .fold(0, usize::saturating_add)
    }

    /// The entry of a tensor that must exist with exactly `shape`.
    fn entry(&self, name: &str, shape: &[usize]) -> Result<&Entry, ModelError> {
        let entry = self
            .entries
            .get(name)
            .ok_or_else(|| ModelError::MissingTensor {
                name: name.to_string(),
                expected: shape.to_vec(),
                unknown: Vec::new(),
            })?;
        if entry.shape != shape {
            return Err(ModelError::ShapeMismatch {
                name: name.to_string(),
                expected: shape.to_vec(),
                found: entry.shape.clone(),
            });
        }
        Ok(entry)
    }

    /// Loads a tensor that must exist with exactly `shape`, converted to `dtype` on `device`.
    pub fn get(
        &mut self,
        name: &str,
        shape: &[usize],
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor, ModelError> {
        let entry = self.entry(name, shape)?.clone();
        let tensor = self.load(name, &entry, device, Some(dtype))?;
        self.taken.insert(name.to_string());
        Ok(tensor.to_dtype(dtype)?)
    }

    /// Like [`Checkpoint::get`] for a tensor the architecture allows to be absent.
    pub fn get_optional(
        &mut self,
        name: &str,
        shape: &[usize],
        dtype: DType,
        device: &Device,
    ) -> Result<Option<Tensor>, ModelError> {
        if self.contains(name) {
            self.get(name, shape, dtype, device).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Loads a tensor in the dtype it is stored in, on the CPU (for quantisation).
    pub fn get_stored(&mut self, name: &str, shape: &[usize]) -> Result<Tensor, ModelError> {
        let entry = self.entry(name, shape)?.clone();
        let t = self.load(name, &entry, &Device::Cpu, None)?;
        self.taken.insert(name.to_string());
        Ok(t)
    }

    /// Reads one tensor onto `device` in its stored dtype, refusing it when it holds a NaN or an
    /// infinity, or a value that `target` (the dtype it is about to become) cannot hold.
    fn load(
        &self,
        name: &str,
        entry: &Entry,
        device: &Device,
        target: Option<DType>,
    ) -> Result<Tensor, ModelError> {
        let path = &self.paths[entry.file];
        match &self.backing {
            Backing::Safetensors(maps) => {
                let map = &maps[entry.file];
                let (a, b) = entry.range;
                let bytes = &map[a..b];
                finite::check(&finite::scan_bytes(bytes, entry.dtype), name, target).map_err(
                    |message| ModelError::Checkpoint {
                        path: path.clone(),
                        message,
                    },
                )?;
                let t = Tensor::from_raw_buffer(bytes, entry.dtype, &entry.shape, device)?;
                // The bytes now live in the tensor; let the kernel drop the mapped copy so that
                // peak memory stays near one copy of the weights.
                // SAFETY: the mapping is read-only and private; dropped pages are re-read from the
                // file if touched again.
                #[cfg(unix)]
                unsafe {
                    let _ =
                        map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, a, b - a);
                }
                Ok(t)
            }
            Backing::PyTorch(tables) => {
                let t = tables[entry.file]
                    .get(name)
                    .map_err(|e| ModelError::Checkpoint {
                        path: path.clone(),
                        message: format!(
                            "cannot read tensor `{}`: {}",
                            shown(name),
                            shown(&e.to_string())
                        ),
                    })?;
                let t = t.ok_or_else(|| ModelError::MissingTensor {
                    name: name.to_string(),
                    expected: entry.shape.clone(),
                    unknown: Vec::new(),
                })?;
                finite::check(&finite::scan_tensor(&t)?, name, target).map_err(|message| {
                    ModelError::Checkpoint {
                        path: path.clone(),
                        message,
                    }
                })?;
                Ok(t.to_device(device)?)
            }
        }
    }

    /// Marks a tensor as used without reading it (its stand-in comes from elsewhere, such as
    /// the quantised cache); it must exist with exactly `shape`, as for [`Checkpoint::get`].
    pub fn mark_taken(&mut self, name: &str, shape: &[usize]) -> Result<(), ModelError> {
        self.entry(name, shape)?;
        self.taken.insert(name.to_string());
        Ok(())
    }

    /// Tensors in the checkpoint that nothing has asked for, by name.
    pub fn untaken(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .entries
            .keys()
            .filter(|n| !self.taken.contains(*n))
            .cloned()
            .collect();
        names.sort();
        names
    }

    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// The numbers `i` of the decoder layers that have tensors (`model.layers.{i}.…`).
    pub fn layer_indices(&self) -> BTreeSet<usize> {
        self.entries
            .keys()
            .filter_map(|n| n.strip_prefix("model.layers.")?.split_once('.'))
            .filter_map(|(i, _)| i.parse().ok())
            .collect()
    }
}

/// Every pickled tensor must fit in the bytes of its file: each tensor's extent within its
/// storage, each storage, and all storages together (torch stores them uncompressed). A shape
/// that claims more is refused before anything is allocated for it.
fn check_pickle_sizes<'a>(
    path: &Path,
    file_len: u64,
    infos: impl IntoIterator<Item = (&'a String, &'a candle_core::pickle::TensorInfo)>,
) -> Result<(), ModelError> {
    let refuse = |message: String| ModelError::Checkpoint {
        path: path.to_path_buf(),
        message,
    };
    let mut storages: HashMap<&str, u64> = HashMap::new();
    for (name, info) in infos {
        let size = info.dtype.size_in_bytes();
        let dims = info.layout.shape().dims();
        let extent = dims
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .and_then(|n| n.checked_add(info.layout.start_offset()))
            .and_then(|n| n.checked_mul(size))
            .map(|n| n as u64);
        let storage = info.storage_size.checked_mul(size).map(|n| n as u64);
        match (extent, storage) {
            (Some(e), Some(s)) if e <= file_len && s <= file_len => {
                storages.insert(info.path.as_str(), s);
            }
            _ => {
                return Err(refuse(format!(
                    "tensor `{}` has shape {dims:?} ({}), more than the file's {file_len} bytes",
                    shown(name),
                    extent.map_or("a size that overflows".into(), |e| format!("{e} bytes")),
                )))
            }
        }
    }
    let total = storages.values().fold(0u64, |a, &b| a.saturating_add(b));
    if total > file_len {
        return Err(refuse(format!(
            "its tensors claim {total} bytes of storage, more than the file's {file_len} bytes"
        )));
    }
    Ok(())
}
