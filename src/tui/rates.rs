//! How fast this machine scored with a model before, so that a start can say how long the
//! first score will take. One small JSON file in the data directory, keyed by the model as
//! named and the device and mode asked for; written atomically, and a broken one is ignored
//! (it holds only a timing, nothing the user made).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The largest rates file that is read at all.
const MAX_BYTES: u64 = 1 << 20;
/// Entries kept: the most recently measured ones.
const MAX_ENTRIES: usize = 64;
/// Template tokens around a pair besides its text (DPA's card prompt is about 40).
const TEMPLATE_TOKENS: usize = 48;

/// One measurement: input tokens per second of computing (not cached), and when.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub tokens_per_s: f64,
    /// Seconds since the Unix epoch.
    pub measured: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateBook {
    #[serde(default)]
    rates: BTreeMap<String, Rate>,
}

/// The key of a model as the user asked for it.
pub fn key(model: &str, device: &str, dtype: &str) -> String {
    format!("{model} · {device} · {dtype}")
}

impl RateBook {
    /// The book in `path`; empty when it is missing, too large or not a rates file.
    pub fn load(path: Option<&Path>) -> Self {
        let read = || -> Option<Self> {
            let p = path?;
            if std::fs::metadata(p).ok()?.len() > MAX_BYTES {
                return None;
            }
            let book: Self = serde_json::from_slice(&std::fs::read(p).ok()?).ok()?;
            // Only numbers that can time anything.
            let rates = book
                .rates
                .into_iter()
                .filter(|(_, r)| r.tokens_per_s.is_finite() && r.tokens_per_s > 0.0)
                .collect();
            Some(Self { rates })
        };
        read().unwrap_or_default()
    }

    pub fn get(&self, key: &str) -> Option<Rate> {
        self.rates.get(key).copied()
    }

    /// Records `tokens` scored in `elapsed`; a run too short to time says nothing.
    pub fn record(&mut self, key: &str, tokens: usize, elapsed: Duration, now: u64) -> bool {
        let secs = elapsed.as_secs_f64();
        if tokens == 0 || secs < 0.05 {
            return false;
        }
        let measured = tokens as f64 / secs;
        // Later runs refine the figure; a first one stands alone.
        let tokens_per_s = match self.rates.get(key) {
            Some(old) => 0.5 * old.tokens_per_s + 0.5 * measured,
            None => measured,
        };
        self.rates.insert(
            key.to_string(),
            Rate {
                tokens_per_s,
                measured: now,
            },
        );
        while self.rates.len() > MAX_ENTRIES {
            let oldest = self
                .rates
                .iter()
                .min_by_key(|(_, r)| r.measured)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => self.rates.remove(&k),
                None => break,
            };
        }
        true
    }

    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let mut json = serde_json::to_vec_pretty(self)?;
        json.push(b'\n');
        super::session::write_atomic(path, &json)
    }
}

/// Where the rates file lives beside the autosave.
pub fn path_beside(autosave: Option<&Path>) -> Option<PathBuf> {
    Some(autosave?.parent()?.join("rates.json"))
}

/// What the first score of `pairs` inputs of `chars` characters in all will take at `rate`:
/// the estimate and the tokens it assumes (about four characters a token, plus the template).
pub fn first_score(rate: Rate, chars: usize, pairs: usize) -> (Duration, usize) {
    let tokens = chars.div_ceil(4) + TEMPLATE_TOKENS * pairs;
    let secs = tokens as f64 / rate.tokens_per_s;
    (Duration::from_secs_f64(secs.min(86_400.0)), tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_kept_refined_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rates.json");
        let mut book = RateBook::load(Some(&path));
        assert!(book.get("m").is_none());
        assert!(!book.record("m", 100, Duration::from_millis(10), 1));
        assert!(book.record("m", 100, Duration::from_secs(2), 1));
        assert_eq!(book.get("m").unwrap().tokens_per_s, 50.0);
        book.record("m", 300, Duration::from_secs(2), 2);
        assert_eq!(book.get("m").unwrap().tokens_per_s, 100.0);
        for i in 0..100 {
            book.record(&format!("k{i}"), 10, Duration::from_secs(1), 10 + i);
        }
        assert_eq!(book.rates.len(), MAX_ENTRIES);
        assert!(book.get("m").is_none(), "the oldest goes first");
        book.save(&path).unwrap();
        assert_eq!(RateBook::load(Some(&path)), book);
    }

    #[test]
    fn a_broken_or_hostile_file_is_an_empty_book() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rates.json");
        for body in [
            "oops",
            r#"{"rates":{"m":{"tokens_per_s":-1,"measured":0}}}"#,
            r#"{"rates":{"m":{"tokens_per_s":0,"measured":0}}}"#,
        ] {
            std::fs::write(&path, body).unwrap();
            assert!(RateBook::load(Some(&path)).get("m").is_none(), "{body}");
        }
        std::fs::write(&path, vec![b' '; (MAX_BYTES + 1) as usize]).unwrap();
        assert_eq!(RateBook::load(Some(&path)), RateBook::default());
    }

    #[test]
    fn the_first_score_is_timed_from_the_rate() {
        let rate = Rate {
            tokens_per_s: 52.0,
            measured: 0,
        };
        let (d, tokens) = first_score(rate, 1000, 1);
        assert_eq!(tokens, 250 + TEMPLATE_TOKENS);
        assert!((d.as_secs_f64() - 298.0 / 52.0).abs() < 1e-9);
    }
}
