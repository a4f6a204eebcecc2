//! The user's own direction presets, kept in a JSON file in the config directory.

use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::preference::Preset;

#[derive(Debug, Default, Serialize, Deserialize)]
struct PresetFile {
    presets: Vec<Preset>,
}

/// Presets the user saved; `path: None` keeps them in memory only.
#[derive(Debug, Default)]
pub struct UserPresets {
    pub path: Option<PathBuf>,
    pub list: Vec<Preset>,
    /// Why the file could not be read, to show once.
    pub error: Option<String>,
}

impl UserPresets {
    /// Reads the presets file; a missing file is an empty list, a broken one is reported and
    /// left alone (not overwritten until the user saves a preset).
    pub fn load(path: Option<PathBuf>) -> Self {
        let Some(p) = path.clone() else {
            return Self::default();
        };
        let read = || -> anyhow::Result<Vec<Preset>> {
            if !p.exists() {
                return Ok(Vec::new());
            }
            let bytes =
                std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
            let f: PresetFile = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a presets file", p.display()))?;
            Ok(f.presets)
        };
        match read() {
            Ok(list) => Self {
                path,
                list,
                error: None,
            },
            Err(e) => Self {
                path,
                list: Vec::new(),
                error: Some(format!("{e:#}")),
            },
        }
    }

    /// Adds a preset, replacing one of the same name.
    pub fn upsert(&mut self, preset: Preset) {
        match self.list.iter_mut().find(|p| p.name == preset.name) {
            Some(p) => *p = preset,
            None => self.list.push(preset),
        }
    }

    pub fn save(&self) -> anyhow::Result<()> {
        let Some(p) = &self.path else {
            return Ok(());
        };
        let f = PresetFile {
            presets: self.list.clone(),
        };
        let mut json = serde_json::to_vec_pretty(&f)?;
        json.push(b'\n');
        super::session::write_atomic(p, &json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preference::Direction;

    #[test]
    fn presets_persist_and_replace_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cfg/presets.json");
        let mut p = UserPresets::load(Some(path.clone()));
        assert!(p.list.is_empty() && p.error.is_none());
        p.upsert(Preset {
            name: "terse".into(),
            direction: Direction::angle(-30.0),
        });
        p.upsert(Preset {
            name: "terse".into(),
            direction: Direction::Weights {
                weights: vec![("correctness".into(), 1.0), ("verbosity".into(), -0.5)],
            },
        });
        p.save().unwrap();
        let again = UserPresets::load(Some(path));
        assert_eq!(again.list.len(), 1);
        assert!(matches!(again.list[0].direction, Direction::Weights { .. }));
    }

    #[test]
    fn a_broken_file_is_reported_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("presets.json");
        std::fs::write(&path, "oops").unwrap();
        let p = UserPresets::load(Some(path.clone()));
        assert!(p.error.unwrap().contains("not a presets file"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "oops");
    }
}
