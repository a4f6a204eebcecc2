//! The check, in the background, of the cache bytes a warm load uses in place: each tensor's
//! CRC-32 against the one its file records. A load maps the file and returns at once; on a
//! cold page cache the check reads the file while the first pass runs (both read the same
//! pages once), where checking first would read it all before any work began. Whoever
//! publishes a score waits for the check ([`Integrity::wait_for`]): no number computed from
//! bytes that fail it is ever shown.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use memmap2::{Advice, Mmap};

/// Bytes checked at a time by one reader.
const SPAN: usize = 16 << 20;
/// Threads reading at once: a few reads in flight, most of the time waiting on the disk.
const READERS: usize = 3;

/// One tensor's bytes in the mapped file and the CRC-32 recorded for them.
pub struct Unchecked {
    pub name: String,
    pub start: usize,
    pub len: usize,
    pub crc: u32,
}

/// A mapped cache file's tensors whose bytes are in use and not yet checked.
pub struct Pending {
    pub path: PathBuf,
    pub map: Arc<Mmap>,
    pub tensors: Vec<Unchecked>,
}

/// Why the check failed: the file and the first tensor whose bytes differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub path: PathBuf,
    pub tensor: String,
}

type Outcome = Result<(), Damage>;

/// Whether the weights a model uses in place are the ones written: known now, or once the
/// background check ends. Clones share one check.
#[derive(Clone)]
pub struct Integrity {
    state: Arc<(Mutex<Option<Outcome>>, Condvar)>,
    /// Bytes checked so far, of `total`.
    checked: Arc<AtomicU64>,
    total: u64,
}

impl Integrity {
    /// Nothing to check: every weight was made in this load or checked while it was read.
    pub fn checked() -> Self {
        Self::with_outcome(Some(Ok(())))
    }

    /// A check in the state `outcome` (`None`: never over; tests of those who wait).
    pub(crate) fn with_outcome(outcome: Option<Outcome>) -> Self {
        Self::new(outcome, 0)
    }

    fn new(outcome: Option<Outcome>, total: u64) -> Self {
        Self {
            state: Arc::new((Mutex::new(outcome), Condvar::new())),
            checked: Arc::new(AtomicU64::new(0)),
            total,
        }
    }

    /// Bytes checked so far and bytes to check (both 0 when there was nothing to check).
    pub fn progress(&self) -> (u64, u64) {
        (
            self.checked.load(Ordering::Relaxed).min(self.total),
            self.total,
        )
    }

    /// Starts checking `pending` on a thread of its own.
    pub fn spawn(pending: Pending) -> Self {
        let total = pending.tensors.iter().map(|t| t.len as u64).sum();
        let me = Self::new(None, total);
        let pending = Arc::new(pending);
        let (task, on_thread) = (pending.clone(), me.clone());
        let spawned = std::thread::Builder::new()
            .name("weight-check".into())
            .spawn(move || on_thread.settle(check_or_fail(&task, &on_thread.checked)));
        if let Err(e) = spawned {
            // No thread to spare: check here, before the load returns, as a cold start would.
            tracing::warn!("checking the kept weights before use: {e}");
            me.settle(check_or_fail(&pending, &me.checked));
        }
        me
    }

    /// Records the check's outcome and wakes whoever waits for it.
    fn settle(&self, outcome: Outcome) {
        if let Err(d) = &outcome {
            tracing::warn!(
                "{}: tensor `{}` fails its checksum",
                d.path.display(),
                d.tensor
            );
        }
        let (lock, done) = &*self.state;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
        done.notify_all();
    }

    /// The check's outcome, waiting at most `timeout` for it (`None`: not over yet).
    pub fn wait_for(&self, timeout: Duration) -> Option<Outcome> {
        let (lock, done) = &*self.state;
        let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = done
            .wait_timeout_while(guard, timeout, |o| o.is_none())
            .unwrap_or_else(|e| e.into_inner());
        guard.clone()
    }

    /// The check's outcome, waiting as long as it takes.
    pub fn wait(&self) -> Outcome {
        loop {
            if let Some(o) = self.wait_for(Duration::from_secs(3600)) {
                return o;
            }
        }
    }

    /// Whether the check is over (whatever it found).
    pub fn is_done(&self) -> bool {
        self.wait_for(Duration::ZERO).is_some()
    }
}

/// [`check`]; should it panic, the weights count as unchecked, so that the model is loaded
/// again with checks first rather than a wait that never ends.
fn check_or_fail(pending: &Pending, checked: &AtomicU64) -> Outcome {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(pending, checked)))
        .unwrap_or_else(|_| {
            Err(Damage {
                path: pending.path.clone(),
                tensor: "(the check stopped)".into(),
            })
        })
}

/// Checks the tensors' bytes a span at a time, spans in file order shared among [`READERS`]
/// threads: several reads in flight read a cold file at several times the rate of one (page
/// faults one at a time would read it at a fraction of the disk's rate).
fn check(pending: &Pending, checked: &AtomicU64) -> Outcome {
    let map = &pending.map;
    let damage = |t: &Unchecked| Damage {
        path: pending.path.clone(),
        tensor: t.name.clone(),
    };
    let mut order: Vec<&Unchecked> = pending.tensors.iter().collect();
    order.sort_by_key(|t| t.start);
    if let Some(t) = order
        .iter()
        .find(|t| t.start.checked_add(t.len).is_none_or(|end| end > map.len()))
    {
        return Err(damage(t));
    }
    let spans_of = |t: &Unchecked| t.len.div_ceil(SPAN).max(1);
    let spans: Vec<(usize, usize)> = order
        .iter()
        .flat_map(|t| (0..spans_of(t)).map(|i| (t.start + i * SPAN, SPAN.min(t.len - i * SPAN))))
        .collect();
    let sums: Vec<OnceLock<crc32fast::Hasher>> = spans.iter().map(|_| OnceLock::new()).collect();
    let next = AtomicUsize::new(0);
    let work = || {
        loop {
            let k = next.fetch_add(1, Ordering::Relaxed);
            let Some(&(at, len)) = spans.get(k) else {
                break;
            };
            // Only a hint: a failure costs speed, never correctness.
            let _ = map.advise_range(Advice::WillNeed, at, len);
            let mut crc = crc32fast::Hasher::new();
            crc.update(&map[at..at + len]);
            let _ = sums[k].set(crc);
            checked.fetch_add(len as u64, Ordering::Relaxed);
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..READERS {
            // A reader that cannot start leaves its spans to the others.
            let _ = std::thread::Builder::new().spawn_scoped(scope, work);
        }
        work();
    });
    let mut sums = sums.into_iter();
    for t in order {
        let mut crc = crc32fast::Hasher::new();
        for sum in sums.by_ref().take(spans_of(t)) {
            crc.combine(&sum.into_inner().unwrap_or_default());
        }
        if crc.finalize() != t.crc {
            return Err(damage(t));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn pending(bytes: &[u8], tensors: Vec<Unchecked>) -> Pending {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        // SAFETY: a temporary file of this test's own, not written after this point.
        let map = unsafe { Mmap::map(f.as_file()) }.unwrap();
        Pending {
            path: f.path().to_path_buf(),
            map: Arc::new(map),
            tensors,
        }
    }

    fn tensor(name: &str, bytes: &[u8], start: usize, len: usize) -> Unchecked {
        Unchecked {
            name: name.into(),
            start,
            len,
            crc: crc32fast::hash(&bytes[start..start + len]),
        }
    }

    #[test]
    fn good_bytes_pass_and_a_changed_byte_names_its_tensor() {
        // Longer than a span, so that the read-ahead and the span loop both run.
        let bytes: Vec<u8> = (0..SPAN * 2 + 777).map(|i| (i * 7 % 251) as u8).collect();
        let split = SPAN + 5;
        let tensors = || {
            vec![
                tensor("b", &bytes, split, bytes.len() - split),
                tensor("a", &bytes, 0, split),
                tensor("empty", &bytes, split, 0),
            ]
        };
        let good = Integrity::spawn(pending(&bytes, tensors()));
        assert_eq!(good.wait(), Ok(()));
        assert!(good.is_done());
        let all = bytes.len() as u64;
        assert_eq!(good.progress(), (all, all), "every byte counted once");

        for at in [0, split - 1, split, bytes.len() - 1] {
            let mut changed = bytes.clone();
            changed[at] ^= 1;
            let p = pending(&changed, tensors());
            let path = p.path.clone();
            let name = if at < split { "a" } else { "b" };
            assert_eq!(
                Integrity::spawn(p).wait(),
                Err(Damage {
                    path,
                    tensor: name.into()
                }),
                "byte {at}"
            );
        }
    }

    #[test]
    fn a_range_past_the_file_fails() {
        let bytes = vec![3u8; 100];
        let mut t = tensor("t", &bytes, 0, 100);
        t.len = 101;
        assert!(Integrity::spawn(pending(&bytes, vec![t])).wait().is_err());
    }

    #[test]
    fn waiting_briefly_on_a_check_that_is_not_over_says_so() {
        let state = Integrity::with_outcome(None);
        assert_eq!(state.wait_for(Duration::from_millis(1)), None);
        assert!(!state.is_done());
        assert_eq!(Integrity::checked().wait_for(Duration::ZERO), Some(Ok(())));
    }
}
