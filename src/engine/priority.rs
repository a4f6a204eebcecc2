//! Scheduling priority of the compute threads, so that the UI thread wins the CPU whenever it
//! wakes while a forward pass keeps every core busy.

/// Lowers the calling thread's priority by `steps` nice levels (Linux, BSDs), or moves it to
/// the utility QoS class (macOS). Returns whether anything changed; elsewhere it is a no-op.
pub fn lower_current_thread(steps: i32) -> bool {
    if steps <= 0 {
        return false;
    }
    lower(steps)
}

#[cfg(target_os = "linux")]
fn lower(steps: i32) -> bool {
    // On Linux the nice value belongs to each thread, addressed by its thread id.
    // SAFETY: plain system calls on the calling thread's own id.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        *libc::__errno_location() = 0;
        let now = libc::getpriority(libc::PRIO_PROCESS, tid);
        if now == -1 && *libc::__errno_location() != 0 {
            return false;
        }
        libc::setpriority(libc::PRIO_PROCESS, tid, (now + steps).min(19)) == 0
    }
}

#[cfg(target_os = "macos")]
fn lower(_steps: i32) -> bool {
    // Nice values are per process on macOS; the per-thread lever is the QoS class.
    // SAFETY: sets the calling thread's own QoS class.
    unsafe { libc::pthread_set_qos_class_self_np(libc::qos_class_t::QOS_CLASS_UTILITY, 0) == 0 }
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn lower(_steps: i32) -> bool {
    false
}

/// The calling thread's nice value, where there is one (for tests and reports).
#[cfg(target_os = "linux")]
pub fn current_nice() -> Option<i32> {
    // SAFETY: as above.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        *libc::__errno_location() = 0;
        let now = libc::getpriority(libc::PRIO_PROCESS, tid);
        (now != -1 || *libc::__errno_location() == 0).then_some(now)
    }
}

#[cfg(not(target_os = "linux"))]
pub fn current_nice() -> Option<i32> {
    None
}

/// A thread pool for candle's CPU work (its parallel kernels and gemm run on the pool they
/// are called from) whose threads run `nice` steps below the process.
pub fn compute_pool(threads: usize, nice: i32) -> Result<rayon::ThreadPool, String> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("dpa-compute-{i}"))
        .start_handler(move |_| {
            lower_current_thread(nice);
        })
        .build()
        .map_err(|e| e.to_string())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn pool_threads_run_below_the_process() {
        let before = current_nice().unwrap();
        let pool = compute_pool(2, 5).unwrap();
        let inside = pool.install(current_nice).unwrap();
        assert_eq!(inside, (before + 5).min(19));
        assert_eq!(
            current_nice().unwrap(),
            before,
            "the caller keeps its priority"
        );
    }
}
