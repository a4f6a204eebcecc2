//! Files shipped inside the binary: the random-weight demo models and their tokenizers.

use std::path::{Path, PathBuf};

/// Which demo model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Demo {
    /// DPA's shape: Mistral, ten attributes.
    Dpa,
    /// ArmoRM's shape: Llama 3 with its tokenizer and template, 19 objectives and gating.
    Armo,
}

impl Demo {
    /// How the model is named on screen: random weights, so its scores mean nothing.
    pub fn title(self) -> &'static str {
        match self {
            Demo::Dpa => "demo (assets/demo)",
            Demo::Armo => "demo armo (assets/demo-armo)",
        }
    }

    fn files(self) -> (&'static str, &'static [(&'static str, &'static [u8])]) {
        match self {
            Demo::Dpa => ("demo", &DEMO_FILES),
            Demo::Armo => ("demo-armo", &ARMO_FILES),
        }
    }
}

const ARMO_FILES: [(&str, &[u8]); 4] = [
    (
        "config.json",
        include_bytes!("../assets/demo-armo/config.json"),
    ),
    (
        "tokenizer.json",
        include_bytes!("../assets/demo-armo/tokenizer.json"),
    ),
    (
        "tokenizer_config.json",
        include_bytes!("../assets/demo-armo/tokenizer_config.json"),
    ),
    (
        "model.safetensors",
        include_bytes!("../assets/demo-armo/model.safetensors"),
    ),
];

const DEMO_FILES: [(&str, &[u8]); 3] = [
    ("config.json", include_bytes!("../assets/demo/config.json")),
    (
        "tokenizer.json",
        include_bytes!("../assets/demo/tokenizer.json"),
    ),
    (
        "model.safetensors",
        include_bytes!("../assets/demo/model.safetensors"),
    ),
];

/// A directory holding a demo model: the source tree's copy when it is there, else the
/// embedded files written once under `cache_root`.
pub fn demo_dir(cache_root: &Path, demo: Demo) -> std::io::Result<PathBuf> {
    let (name, files) = demo.files();
    let in_tree = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets")
        .join(name);
    if in_tree.join("model.safetensors").is_file() {
        return Ok(in_tree);
    }
    let dir = cache_root.join(format!("{name}-{}", env!("CARGO_PKG_VERSION")));
    std::fs::create_dir_all(&dir)?;
    for &(name, bytes) in files {
        let path = dir.join(name);
        let fresh = std::fs::metadata(&path)
            .map(|m| m.len() == bytes.len() as u64)
            .unwrap_or(false);
        if !fresh {
            // Write beside under this process's own name, then rename, so neither a crash nor
            // a second explorer starting at the same time leaves a half file in place.
            let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
            let written = std::fs::File::create(&tmp)
                .and_then(|mut f| {
                    std::io::Write::write_all(&mut f, bytes).and_then(|()| f.sync_all())
                })
                .and_then(|()| std::fs::rename(&tmp, &path));
            if let Err(e) = written {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        }
    }
    Ok(dir)
}

/// Where dpa-explorer keeps its own files (demo copy, logs, quantised weights).
pub fn cache_root() -> PathBuf {
    directories::ProjectDirs::from("", "", "dpa-explorer")
        .map(|d| d.cache_dir().to_path_buf())
        .unwrap_or_else(|| std::env::temp_dir().join("dpa-explorer"))
}

/// Where quantised weights made at a first load are kept for later starts.
pub fn quant_cache() -> PathBuf {
    cache_root().join("quantized")
}

/// Where dpa-explorer keeps its settings (user presets).
pub fn config_root() -> PathBuf {
    directories::ProjectDirs::from("", "", "dpa-explorer")
        .map(|d| d.config_dir().to_path_buf())
        .unwrap_or_else(|| std::env::temp_dir().join("dpa-explorer-config"))
}

/// Where dpa-explorer keeps the user's own data (the explorer's autosave).
pub fn data_root() -> PathBuf {
    directories::ProjectDirs::from("", "", "dpa-explorer")
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(|| std::env::temp_dir().join("dpa-explorer-data"))
}
