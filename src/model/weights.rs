//! Checkpoint files: one `model.safetensors`, sharded safetensors with an index, or PyTorch
//! pickles. Safetensors are memory-mapped and each tensor is copied once, straight into the
//! compute dtype; its mapped pages are released as soon as it is loaded.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use memmap2::Mmap;

use super::ModelError;

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

    /// Finds the weights in a model directory, preferring safetensors as transformers does.
    pub fn find(dir: &Path) -> Result<Self, ModelError> {
        let st_index = dir.join("model.safetensors.index.json");
        if st_index.is_file() {
            return Ok(WeightFiles::Safetensors(shards_from_index(&st_index)?));
        }
        let single = dir.join("model.safetensors");
        if single.is_file() {
            return Ok(WeightFiles::Safetensors(vec![single]));
        }
        let pt_index = dir.join("pytorch_model.bin.index.json");
        if pt_index.is_file() {
            return Ok(WeightFiles::PyTorch(shards_from_index(&pt_index)?));
        }
        let pt = dir.join("pytorch_model.bin");
        if pt.is_file() {
            return Ok(WeightFiles::PyTorch(vec![pt]));
        }
        Err(ModelError::MissingFile {
            path: dir.to_path_buf(),
            what: "weights: none of model.safetensors, model.safetensors.index.json, \
                   pytorch_model.bin or pytorch_model.bin.index.json is there"
                .into(),
        })
    }
}

#[derive(serde::Deserialize)]
struct ShardIndex {
    weight_map: BTreeMap<String, String>,
}

/// The shard files an index names, each once, in name order; every one must exist.
pub fn shards_from_index(index: &Path) -> Result<Vec<PathBuf>, ModelError> {
    let text = std::fs::read_to_string(index).map_err(|e| ModelError::io(index, e))?;
    let parsed: ShardIndex = serde_json::from_str(&text).map_err(|e| ModelError::Checkpoint {
        path: index.to_path_buf(),
        message: format!("not a valid shard index: {e}"),
    })?;
    let dir = index.parent().unwrap_or(Path::new("."));
    let names: BTreeSet<&String> = parsed.weight_map.values().collect();
    let mut shards = Vec::with_capacity(names.len());
    for name in names {
        let path = dir.join(name);
        if !path.is_file() {
            return Err(ModelError::MissingFile {
                path,
                what: format!("a weight shard named by {}", index.display()),
            });
        }
        shards.push(path);
    }
    Ok(shards)
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
            let f = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
            // SAFETY: the file is opened read-only; a checkpoint rewritten while it is being read
            // is outside what any loader can defend against (transformers and candle map it too).
            let mmap = unsafe { Mmap::map(&f) }.map_err(|e| ModelError::io(path, e))?;
            let corrupt = |message: String| ModelError::Checkpoint {
                path: path.clone(),
                message,
            };
            // `deserialize` checks that the header is sound and that the data is all there.
            safetensors::SafeTensors::deserialize(&mmap).map_err(|e| {
                corrupt(format!(
                    "not a valid safetensors file (truncated or corrupt): {e}"
                ))
            })?;
            let (header_len, metadata) = safetensors::SafeTensors::read_metadata(&mmap)
                .map_err(|e| corrupt(format!("unreadable safetensors header: {e}")))?;
            let data_start = 8 + header_len;
            for (name, info) in metadata.tensors() {
                let dtype = match info.dtype {
                    safetensors::Dtype::BF16 => DType::BF16,
                    safetensors::Dtype::F16 => DType::F16,
                    safetensors::Dtype::F32 => DType::F32,
                    other => {
                        return Err(corrupt(format!(
                            "tensor `{name}` is stored as {other:?}; only bf16, f16 and f32 weights are supported"
                        )))
                    }
                };
                let (a, b) = info.data_offsets;
                let entry = Entry {
                    file,
                    dtype,
                    shape: info.shape.clone(),
                    range: (data_start + a, data_start + b),
                };
                if entries.insert(name.clone(), entry).is_some() {
                    return Err(corrupt(format!(
                        "tensor `{name}` appears in more than one shard"
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
            let pth = candle_core::pickle::PthTensors::new(path, None).map_err(|e| {
                ModelError::Checkpoint {
                    path: path.clone(),
                    message: format!("not a readable PyTorch checkpoint: {e}"),
                }
            })?;
            for (name, info) in pth.tensor_infos() {
                let entry = Entry {
                    file,
                    dtype: info.dtype,
                    shape: info.layout.shape().dims().to_vec(),
                    range: (0, 0),
                };
                entries.insert(name.clone(), entry);
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
            *bytes.entry(e.dtype).or_default() +=
                e.shape.iter().product::<usize>() * e.dtype.size_in_bytes();
        }
        bytes.into_iter().max_by_key(|(_, n)| *n).map(|(d, _)| d)
    }

    /// Total bytes of all tensors as stored.
    pub fn stored_bytes(&self) -> usize {
        self.entries
            .values()
            .map(|e| e.shape.iter().product::<usize>() * e.dtype.size_in_bytes())
            .sum()
    }

    /// Loads a tensor that must exist with exactly `shape`, converted to `dtype` on `device`.
    pub fn get(
        &mut self,
        name: &str,
        shape: &[usize],
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor, ModelError> {
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
        let entry = entry.clone();
        let tensor = self.load(name, &entry, device)?;
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
        let entry = entry.clone();
        let t = self.load(name, &entry, &Device::Cpu)?;
        self.taken.insert(name.to_string());
        Ok(t)
    }

    fn load(&self, name: &str, entry: &Entry, device: &Device) -> Result<Tensor, ModelError> {
        match &self.backing {
            Backing::Safetensors(maps) => {
                let map = &maps[entry.file];
                let (a, b) = entry.range;
                let t = Tensor::from_raw_buffer(&map[a..b], entry.dtype, &entry.shape, device)?;
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
                        path: self.paths[entry.file].clone(),
                        message: format!("cannot read tensor `{name}`: {e}"),
                    })?;
                let t = t.ok_or_else(|| ModelError::MissingTensor {
                    name: name.to_string(),
                    expected: entry.shape.clone(),
                    unknown: Vec::new(),
                })?;
                Ok(t.to_device(device)?)
            }
        }
    }

    /// Marks a tensor as used without reading it (its stand-in comes from elsewhere, such as
    /// the quantised cache); it must exist with exactly `shape`, as for [`Checkpoint::get`].
    pub fn mark_taken(&mut self, name: &str, shape: &[usize]) -> Result<(), ModelError> {
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
}
