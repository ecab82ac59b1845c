//! The actions' closed sets: why a hook ran, how a hook run ended, where an
//! alert stands in the outbox. They belong to [`crate::actions`], which
//! decides them; they are declared here, before the store, because the store
//! records them (and its SQL binds these values instead of spelling them).

crate::spelling::closed_set! {
    /// Why a hook ran.
    pub enum HookAction {
        /// The raising event.
        Run = "run",
        /// The condition cleared: undo the remediation.
        Revert = "revert",
        /// `rblwatch hooks test`.
        Test = "test",
    }
}

crate::spelling::closed_set! {
    /// How a hook run ended, or why it did not happen.
    pub enum HookStatus {
        /// Exit status 0.
        Ok = "ok",
        /// A non-zero exit.
        Failed = "failed",
        /// Killed at its timeout (with its process group).
        Timeout = "timeout",
        /// Could not be started.
        Error = "error",
        /// A dry-run hook: recorded, not run.
        DryRun = "dry_run",
        /// Within the cooldown of the previous run.
        SkippedCooldown = "skipped_cooldown",
        /// Over the per-hour cap.
        SkippedCap = "skipped_cap",
        /// A revert not run: another condition still needs the remediation.
        Kept = "kept",
        /// Started and not finished yet. Written, with the event cursor, in
        /// one transaction before the hook runs, so a crash never runs it twice.
        Running = "running",
        /// The daemon stopped while the hook ran (found `running` at the next start).
        Interrupted = "interrupted",
    }
}

impl HookStatus {
    /// The hook actually executed.
    pub const fn executed(self) -> bool {
        matches!(
            self,
            HookStatus::Ok
                | HookStatus::Failed
                | HookStatus::Timeout
                | HookStatus::Error
                | HookStatus::Running
                | HookStatus::Interrupted
        )
    }

    /// It executed and did not succeed (raises `hook_failed`).
    pub const fn failed(self) -> bool {
        matches!(
            self,
            HookStatus::Failed | HookStatus::Timeout | HookStatus::Error | HookStatus::Interrupted
        )
    }

    /// The statuses of runs that executed ([`HookStatus::executed`]).
    pub fn all_executed() -> impl Iterator<Item = HookStatus> {
        HookStatus::ALL.into_iter().filter(|s| s.executed())
    }
}

crate::spelling::closed_set! {
    /// Where a message stands in the outbox.
    pub enum OutboxStatus {
        /// Waiting for (another) delivery attempt.
        Pending = "pending",
        /// Delivered.
        Sent = "sent",
        /// Given up after `give_up_after`.
        Failed = "failed",
    }
}
