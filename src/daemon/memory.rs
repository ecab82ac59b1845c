//! Hands memory the daemon no longer uses back to the kernel, once a minute.
//!
//! glibc's malloc keeps what a thread frees in that thread's arena for reuse.
//! A daemon that runs for months, with bursts on changing threads (a sweep's
//! answers, a page built on a blocking thread, SQLite's caches refilling),
//! then shows RSS creeping up although its live heap is flat: heaptrack over
//! 16 minutes of the soak found about 1 MB more live heap, while anonymous
//! RSS grew by 2 MB. `malloc_trim(0)` returns every whole free page in every
//! arena (`MADV_DONTNEED`), which keeps RSS at what the daemon really uses,
//! and the daemon keeps to two arenas ([`limit_arenas`]).
//! `scripts/bench-soak.sh` measures the result.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often free memory is handed back.
const EVERY: Duration = Duration::from_secs(60);

/// Starts the minutely release; it ends with `stop`.
pub(super) fn start(stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {
                    // it walks every arena under its lock: not on an async worker
                    let _ = tokio::task::spawn_blocking(release).await;
                }
            }
        }
    })
}

/// Malloc arenas the daemon may use. glibc gives each thread that allocates
/// under contention an arena of its own, up to 8 per core; tokio's blocking
/// pool starts and ends threads all day, so under load arenas multiplied and
/// each kept its own free memory (the soak saw a 600 KB step in RSS while the
/// machine was busy, with no more live data). Two arenas serve a daemon that
/// spends its time waiting on DNS and SQLite.
const ARENAS: i32 = 2;

/// Caps malloc's arenas at [`ARENAS`]; call before any thread starts
/// (glibc only; elsewhere a no-op).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn limit_arenas() {
    // SAFETY: mallopt only sets a malloc parameter; it is called from main
    // before the runtime starts any thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
    }
}

/// Caps malloc's arenas (glibc only; elsewhere a no-op).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit_arenas() {}

/// Returns free pages to the kernel (glibc only; elsewhere a no-op).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(super) fn release() {
    // SAFETY: malloc_trim takes a padding size and only walks glibc's own
    // arenas, taking each arena's lock; it frees nothing that is in use.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Returns free pages to the kernel (glibc only; elsewhere a no-op).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(super) fn release() {}

#[cfg(test)]
mod tests {
    #[test]
    fn release_runs_with_live_allocations() {
        let keep: Vec<Vec<u8>> = (0..64).map(|i| vec![i as u8; 64 << 10]).collect();
        drop((0..64).map(|_| vec![0u8; 64 << 10]).collect::<Vec<_>>());
        super::release();
        assert!(keep
            .iter()
            .enumerate()
            .all(|(i, v)| v.iter().all(|b| *b == i as u8)));
    }
}
