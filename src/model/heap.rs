//! The C heap between forward passes. glibc serves every allocation above its mmap threshold
//! (which it raises by itself to at most 32 MiB) with a fresh mapping, so the activations of
//! a long input (`[512, 28672]` f32 is 59 MB) are mapped, zero-filled page by page and
//! unmapped again on every pass: a tenth of a 512-token pass went to page faults. Once the
//! weights are in, the threshold is raised so such buffers are reused from the heap; it is
//! raised only then, so that a load's transient buffers still go back to the system and the
//! memory after a load stays the weights'.

/// Largest buffer reused from the heap (a 4,096-token input's larger ones are still mapped).
const REUSE_UP_TO: usize = 256 << 20;

/// Keeps buffers of up to [`REUSE_UP_TO`] bytes in the heap for the next pass.
pub fn keep_pass_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is safe to call at any time.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, REUSE_UP_TO as libc::c_int);
        // Freed memory at the heap's top stays for the next pass instead of being returned.
        libc::mallopt(libc::M_TRIM_THRESHOLD, (2 * REUSE_UP_TO) as libc::c_int);
    }
}
