//! The `inlet` command.

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    inlet_host::cli::main()
}

/// glibc gives each thread that allocates an arena of its own (up to eight per core), and each
/// arena keeps what was freed in it: the connector instances, the runtime's workers and the
/// Parquet encoders of a parallel read spread their buffers over six or more arenas. Two keep
/// the peak lower (lineitem SF1, `--parallel 2`: 222-238 MiB -> 179-191 MiB; CPU within noise).
/// `MALLOC_ARENA_MAX`, when set, still decides.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: `mallopt` only tunes the allocator, and this runs before any other thread exists.
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}
