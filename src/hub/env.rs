//! Hub settings from the environment: the variables huggingface_hub reads, plus
//! `DPA_HUB_TIMEOUT`. Used by the CLI, the explorer and the rest of `hub`.

use std::path::PathBuf;
use std::time::Duration;

use super::DEFAULT_ENDPOINT;

/// Hub settings, normally from the environment (the variables huggingface_hub reads).
#[derive(Clone)]
pub struct HubOptions {
    /// `HF_ENDPOINT`, without a trailing `/`.
    pub endpoint: String,
    /// The hub cache: `HF_HUB_CACHE`, else `$HF_HOME/hub`.
    pub cache_dir: PathBuf,
    /// `HF_TOKEN`, else the token file `huggingface-cli login` writes.
    pub token: Option<String>,
    /// `HF_HUB_OFFLINE`: use the cache only.
    pub offline: bool,
    /// Bytes per ranged request; a download resumes from the last whole chunk.
    pub chunk_size: usize,
    /// Chunks in flight at once.
    pub parallel: usize,
    /// Further attempts at a file after a dropped connection or a server error.
    pub retries: usize,
    /// Wait before the first retry; doubled for each further one.
    pub retry_delay: Duration,
    /// A download that receives nothing for this long is abandoned (and retried).
    pub stall_timeout: Duration,
    /// Limit for the repository listing request.
    pub request_timeout: Duration,
    /// The longest a download waits, over all its retries, without receiving a byte
    /// (`DPA_HUB_TIMEOUT` seconds): then it gives up rather than retrying on.
    pub max_idle: Duration,
}

impl std::fmt::Debug for HubOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubOptions")
            .field("endpoint", &self.endpoint)
            .field("cache_dir", &self.cache_dir)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("offline", &self.offline)
            .field("chunk_size", &self.chunk_size)
            .field("parallel", &self.parallel)
            .field("retries", &self.retries)
            .field("retry_delay", &self.retry_delay)
            .field("stall_timeout", &self.stall_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_idle", &self.max_idle)
            .finish()
    }
}

impl Default for HubOptions {
    /// The public hub and the default cache, no token, online; the environment is not read.
    fn default() -> Self {
        Self::with_cache(default_hf_home(None, home_dir()).join("hub"))
    }
}

impl HubOptions {
    /// The public hub with the given cache directory, no token, online.
    pub fn with_cache(cache_dir: PathBuf) -> Self {
        Self {
            endpoint: DEFAULT_ENDPOINT.to_string(),
            cache_dir,
            token: None,
            offline: false,
            chunk_size: 10_000_000,
            parallel: 4,
            retries: 3,
            retry_delay: Duration::from_secs(1),
            stall_timeout: Duration::from_secs(15),
            request_timeout: Duration::from_secs(20),
            max_idle: Duration::from_secs(DEFAULT_TIMEOUT_S),
        }
    }

    pub fn from_env() -> Self {
        Self::from_vars(|k| std::env::var(k).ok(), home_dir())
    }

    /// [`HubOptions::from_env`] over any variable lookup (empty values count as unset).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>, home: Option<PathBuf>) -> Self {
        let var = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        let expand = |v: String| match (v.strip_prefix("~/"), &home) {
            (Some(rest), Some(h)) => h.join(rest),
            _ => PathBuf::from(v),
        };
        let hf_home = match var("HF_HOME") {
            Some(h) => expand(h),
            None => default_hf_home(var("XDG_CACHE_HOME").map(expand), home.clone()),
        };
        let cache_dir = var("HF_HUB_CACHE")
            .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
            .map(expand)
            .unwrap_or_else(|| hf_home.join("hub"));
        let token = var("HF_TOKEN")
            .or_else(|| var("HUGGING_FACE_HUB_TOKEN"))
            .or_else(|| {
                let path = var("HF_TOKEN_PATH")
                    .map(expand)
                    .unwrap_or_else(|| hf_home.join("token"));
                std::fs::read_to_string(path).ok()
            })
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        let offline = var("HF_HUB_OFFLINE").is_some_and(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        });
        let mut opts = Self::with_cache(cache_dir);
        if let Some(endpoint) = var("HF_ENDPOINT") {
            opts.endpoint = endpoint.trim().trim_end_matches('/').to_string();
        }
        opts.token = token;
        opts.offline = offline;
        if let Some(secs) = var("DPA_HUB_TIMEOUT").and_then(|v| parse_timeout(&v)) {
            opts.set_timeout(secs);
        }
        opts
    }

    /// Bounds every wait on the hub by `secs` seconds: the listing request, and the total
    /// time a download goes without data; a stalled attempt is retried after a quarter of it.
    pub fn set_timeout(&mut self, secs: u64) {
        let total = Duration::from_secs(secs.max(1));
        self.max_idle = total;
        self.request_timeout = total;
        self.stall_timeout = (total / 4).max(Duration::from_secs(1));
    }

    /// The cache folder of one model repository (`models--owner--name`).
    pub fn repo_cache_dir(&self, repo: &str) -> PathBuf {
        self.cache_dir
            .join(format!("models--{}", repo.replace('/', "--")))
    }
}

pub(super) fn home_dir() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf())
}

fn default_hf_home(xdg_cache: Option<PathBuf>, home: Option<PathBuf>) -> PathBuf {
    xdg_cache
        .or_else(|| home.map(|h| h.join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("huggingface")
}

/// The default bound on waiting for a silent hub, in seconds.
pub const DEFAULT_TIMEOUT_S: u64 = 60;

/// Whole seconds, 1 to a day; anything else is ignored (with a log line).
fn parse_timeout(v: &str) -> Option<u64> {
    match v.trim().parse::<u64>() {
        Ok(s) if (1..=86_400).contains(&s) => Some(s),
        _ => {
            tracing::warn!(
                "DPA_HUB_TIMEOUT={v:?} is not a number of seconds from 1 to 86400; ignored"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn environment_is_read_as_huggingface_hub_reads_it() {
        let home = PathBuf::from("/home/u");
        let o = HubOptions::from_vars(vars(&[]), Some(home.clone()));
        assert_eq!(o.endpoint, DEFAULT_ENDPOINT);
        assert_eq!(o.cache_dir, home.join(".cache/huggingface/hub"));
        assert!(o.token.is_none());
        assert!(!o.offline);

        let o = HubOptions::from_vars(
            vars(&[("XDG_CACHE_HOME", "/xdg"), ("HF_HUB_OFFLINE", "0")]),
            Some(home.clone()),
        );
        assert_eq!(o.cache_dir, PathBuf::from("/xdg/huggingface/hub"));
        assert!(!o.offline);

        let o = HubOptions::from_vars(
            vars(&[
                ("HF_HOME", "~/hf"),
                ("HF_ENDPOINT", "http://127.0.0.1:9/"),
                ("HF_TOKEN", " hf_abc\n"),
                ("HF_HUB_OFFLINE", "True"),
            ]),
            Some(home.clone()),
        );
        assert_eq!(o.cache_dir, home.join("hf/hub"));
        assert_eq!(o.endpoint, "http://127.0.0.1:9");
        assert_eq!(o.token.as_deref(), Some("hf_abc"));
        assert!(o.offline);
        assert!(
            !format!("{o:?}").contains("hf_abc"),
            "token must not be logged"
        );

        let hf_home = tempfile::tempdir().unwrap();
        std::fs::write(hf_home.path().join("token"), "hf_from_file\n").unwrap();
        let h = hf_home.path().to_str().unwrap();
        let o = HubOptions::from_vars(
            vars(&[
                ("HF_HOME", h),
                ("HF_HUB_CACHE", "/elsewhere"),
                ("HF_HUB_OFFLINE", "yes"),
            ]),
            None,
        );
        assert_eq!(o.cache_dir, PathBuf::from("/elsewhere"));
        assert_eq!(o.token.as_deref(), Some("hf_from_file"));
        assert!(o.offline);
        let o = HubOptions::from_vars(vars(&[("HF_HOME", h), ("HF_TOKEN", "")]), None);
        assert_eq!(
            o.token.as_deref(),
            Some("hf_from_file"),
            "empty HF_TOKEN is unset"
        );
        assert_eq!(
            o.repo_cache_dir("org/tiny"),
            hf_home.path().join("hub/models--org--tiny")
        );
    }

    #[test]
    fn dpa_hub_timeout_bounds_every_wait() {
        let o = HubOptions::from_vars(vars(&[]), None);
        assert_eq!(o.max_idle, Duration::from_secs(DEFAULT_TIMEOUT_S));
        let o = HubOptions::from_vars(vars(&[("DPA_HUB_TIMEOUT", "8")]), None);
        assert_eq!(
            (o.max_idle, o.request_timeout, o.stall_timeout),
            (
                Duration::from_secs(8),
                Duration::from_secs(8),
                Duration::from_secs(2)
            )
        );
        for bad in ["0", "-3", "1e3", "soon", "86401"] {
            let o = HubOptions::from_vars(vars(&[("DPA_HUB_TIMEOUT", bad)]), None);
            assert_eq!(o.max_idle, Duration::from_secs(DEFAULT_TIMEOUT_S), "{bad}");
        }
    }
}
