//! Hook runs: every run, skip and dry run, with its output tail.

use rusqlite::{params, Connection};

use super::{json, parse_json, Result};
use crate::event::EventKind;
use crate::runs::{HookAction, HookStatus};
use crate::spelling::sql_list;
use serde::Serialize;

/// A recorded hook run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HookRun {
    /// Id (0 before insert).
    pub id: i64,
    /// Hook name.
    pub hook: String,
    /// Why it ran.
    pub action: HookAction,
    /// The event that triggered it.
    pub event_id: Option<i64>,
    /// Its kind.
    pub event_kind: Option<EventKind>,
    /// Start (unix seconds).
    pub started_at: i64,
    /// Duration.
    pub duration_ms: i64,
    /// How it ended.
    pub status: HookStatus,
    /// Exit code, if it exited.
    pub exit_code: Option<i32>,
    /// The command.
    pub argv: Vec<String>,
    /// Last 64 KiB of stdout (untrusted).
    pub stdout: String,
    /// Last 64 KiB of stderr (untrusted).
    pub stderr: String,
    /// The condition the run raises or clears (`ndr_spike:mx.ndr_generated:mx`).
    pub condition: Option<String>,
}

/// Records a hook run.
pub fn insert_hook_run(c: &Connection, r: &HookRun) -> Result<i64> {
    c.execute(
        "INSERT INTO hook_runs (hook, action, event_id, event_kind, started_at, duration_ms, status, exit_code, argv, stdout, stderr, condition)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![r.hook, r.action, r.event_id, r.event_kind, r.started_at, r.duration_ms, r.status, r.exit_code, json(&r.argv), r.stdout, r.stderr, r.condition],
    )?;
    Ok(c.last_insert_rowid())
}

/// Completes a run recorded as `running`.
pub fn finish_hook_run(c: &Connection, r: &HookRun) -> Result<()> {
    c.execute(
        "UPDATE hook_runs SET duration_ms = ?2, status = ?3, exit_code = ?4, stdout = ?5, stderr = ?6 WHERE id = ?1",
        params![r.id, r.duration_ms, r.status, r.exit_code, r.stdout, r.stderr],
    )?;
    Ok(())
}

/// Runs left `running` by a daemon that stopped, now marked `interrupted`.
pub fn interrupt_running_hooks(c: &Connection) -> Result<Vec<HookRun>> {
    let runs: Vec<HookRun> = select_runs(
        c,
        "WHERE status = ?1 ORDER BY id",
        params![HookStatus::Running],
    )?;
    c.execute(
        "UPDATE hook_runs SET status = ?2, stderr = stderr || ?1 WHERE status = ?3",
        params![
            "\n[rblwatch: the daemon stopped while this hook ran; it was not run again]",
            HookStatus::Interrupted,
            HookStatus::Running
        ],
    )?;
    Ok(runs
        .into_iter()
        .map(|mut r| {
            r.status = HookStatus::Interrupted;
            r
        })
        .collect())
}

const RUN_COLS: &str = "SELECT id, hook, action, event_id, event_kind, started_at, duration_ms, status, exit_code, argv, stdout, stderr, condition FROM hook_runs";

fn select_runs(c: &Connection, tail: &str, p: impl rusqlite::Params) -> Result<Vec<HookRun>> {
    let mut st = c.prepare_cached(&format!("{RUN_COLS} {tail}"))?;
    let rows = st.query_map(p, |r| {
        Ok(HookRun {
            id: r.get(0)?,
            hook: r.get(1)?,
            action: r.get(2)?,
            event_id: r.get(3)?,
            event_kind: r.get(4)?,
            started_at: r.get(5)?,
            duration_ms: r.get(6)?,
            status: r.get(7)?,
            exit_code: r.get(8)?,
            argv: parse_json(&r.get::<_, String>(9)?),
            stdout: r.get(10)?,
            stderr: r.get(11)?,
            condition: r.get(12)?,
        })
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// Hook runs, newest first (optionally of one hook).
pub fn hook_runs(
    c: &Connection,
    hook: Option<&str>,
    limit: u32,
    offset: u32,
) -> Result<Vec<HookRun>> {
    select_runs(
        c,
        "WHERE (?1 IS NULL OR hook = ?1) ORDER BY id DESC LIMIT ?2 OFFSET ?3",
        params![hook, limit, offset],
    )
}

/// Runs of `hook` that actually executed since `since` (for the per-hour cap and the cooldown).
pub fn hook_runs_since(c: &Connection, hook: &str, since: i64) -> Result<(i64, Option<i64>)> {
    let executed: Vec<HookStatus> = HookStatus::all_executed().collect();
    Ok(c.query_row(
        &format!(
            "SELECT COUNT(*), MAX(started_at) FROM hook_runs WHERE hook = ?1 AND started_at >= ?2
             AND status IN ({})",
            sql_list(&executed, HookStatus::as_str)
        ),
        params![hook, since],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}
