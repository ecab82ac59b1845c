//! systemd's notification protocol (`Type=notify`): `READY=1` once the first
//! health check is done, `STATUS=` with the last sweep and listings,
//! `RELOADING=1`/`READY=1` around a reload, `STOPPING=1`, and `WATCHDOG=1`
//! pings when the unit sets `WatchdogSec`. Without `NOTIFY_SOCKET` (not under
//! systemd) every call is a no-op.

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

/// Sends notifications to the service manager.
#[derive(Debug)]
pub(super) struct Notifier {
    enabled: bool,
}

impl Notifier {
    /// Starts the watchdog pings (at half the unit's `WatchdogSec`) until `stop`.
    pub(super) fn start(stop: CancellationToken) -> Self {
        let enabled = std::env::var_os("NOTIFY_SOCKET").is_some();
        if let Some(every) = sd_notify::watchdog_enabled() {
            let half = every / 2;
            tracing::info!(
                interval_ms = half.as_millis() as u64,
                "systemd watchdog pings enabled"
            );
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(half);
                loop {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        _ = tick.tick() => send(&[NotifyState::Watchdog]),
                    }
                }
            });
        }
        Notifier { enabled }
    }

    /// `READY=1` and a status line.
    pub(super) fn ready(&self, status: &str) {
        if self.enabled {
            send(&[NotifyState::Ready, NotifyState::Status(status)]);
        }
    }

    /// A new status line.
    pub(super) fn status(&self, status: &str) {
        if self.enabled {
            send(&[NotifyState::Status(status)]);
        }
    }

    /// `RELOADING=1` (with the monotonic time systemd 253+ wants).
    pub(super) fn reloading(&self) {
        if self.enabled {
            match NotifyState::monotonic_usec_now() {
                Ok(t) => send(&[NotifyState::Reloading, t]),
                Err(_) => send(&[NotifyState::Reloading]),
            }
        }
    }

    /// `STOPPING=1`.
    pub(super) fn stopping(&self) {
        if self.enabled {
            send(&[NotifyState::Stopping]);
        }
    }
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify the service manager");
    }
}
