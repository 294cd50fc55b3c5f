//! The allocator policy vane runs with (mimalloc, the binary's global
//! allocator): one place for the binary and the benchmarks that must
//! measure what the binary would hold.

/// Makes mimalloc give memory back promptly: an agent's footprint matters
/// more than the last percent of allocation speed (see bench/RESULTS.md).
pub fn tune() {
    // Indices of `mi_option_t` in the bundled mimalloc v3 header.
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    const ALLOW_THP: libmimalloc_sys::mi_option_t = 43;
    // SAFETY: setting options and the process's THP flag has no
    // preconditions; both only change memory policy.
    unsafe {
        // Transparent huge pages turn a few KiB of use into 2 MiB of RSS;
        // the allocator's first arena exists already, so tell the kernel too.
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        libmimalloc_sys::mi_option_set(ALLOW_THP, 0);
        // Freed pages go back after half a second, not at once: returning
        // them at once made a listener fault them in again for every batch
        // (0.90 s of CPU per million events ingested against 0.6 s), for a
        // few MiB more at 10,000 jobs (bench/RESULTS.md).
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 500);
    }
}
