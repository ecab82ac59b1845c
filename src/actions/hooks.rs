//! Remediation hooks: run the postmaster's scripts on events, safely.
//!
//! * argv is passed as is (no shell); the event goes in as JSON on stdin and
//!   `RBLWATCH_*` environment variables, so TXT records and other remote text
//!   never reach a command line;
//! * the environment is cleared (the daemon's secrets stay in the daemon),
//!   except `PATH`, `HOME`, `LANG` and the hook's own `env`;
//! * each run gets its own process group, killed whole at the timeout;
//! * only the last 64 KiB of stdout and stderr are kept, read as the hook
//!   writes so a chatty hook never blocks on a full pipe;
//! * cooldown, a per-hour cap and dry-run are decided by [`gate`] (pure).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::{HookConf, HookMode};
use crate::event::{Event, Subject};
use crate::runs::HookStatus;

/// Bytes of stdout/stderr kept per run.
pub const OUTPUT_TAIL: usize = 64 * 1024;

/// The condition an event raises or clears, e.g. `ndr_spike:mxlog.ndr_generated`.
///
/// The format is the one stored by earlier versions (`kind:target:list`, with
/// a metric's full name as "target" and its source as "list"), so a
/// remediation put in place before an upgrade is still reverted after it.
pub fn condition_key(e: &Event) -> String {
    let raise = e.kind.clears().unwrap_or(e.kind);
    let (a, b) = match &e.subject {
        Subject::Pair { target, list } => (target.clone(), list.clone()),
        Subject::List { id } => (String::new(), id.clone()),
        Subject::Metric { source, metric } => (format!("{source}.{metric}"), source.clone()),
        Subject::Probe { server, domain } => (domain.clone(), server.clone()),
        Subject::Hook { name }
        | Subject::Channel { name }
        | Subject::Source { name }
        | Subject::Feed { name } => (String::new(), name.clone()),
        Subject::Resolver { servers } => (String::new(), servers.clone()),
        Subject::Receiver { id } => (String::new(), id.clone()),
        Subject::Target { target } => (target.clone(), String::new()),
        Subject::Audit { name, check } => (check.clone(), name.clone()),
        Subject::Account {
            source,
            origin,
            account,
        } => (format!("{origin}:{account}"), source.clone()),
        Subject::SenderClass { source, class } => (class.clone(), source.clone()),
        Subject::None => (String::new(), String::new()),
    };
    format!("{}:{a}:{b}", raise.as_str())
}

/// What to do about a run request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Run it.
    Run,
    /// Record it as a dry run.
    DryRun,
    /// Within the cooldown of the previous run.
    Cooldown,
    /// Over the per-hour cap.
    Cap,
    /// A revert not run: another condition still needs the remediation in place.
    Kept,
}

/// Decides whether a triggered run happens (pure): `runs_last_hour` and `last_run` count real runs.
pub fn gate(h: &HookConf, now: i64, runs_last_hour: i64, last_run: Option<i64>) -> Gate {
    if let Some(last) = last_run {
        if now - last < h.cooldown.as_secs() as i64 {
            return Gate::Cooldown;
        }
    }
    if runs_last_hour >= i64::from(h.max_per_hour) {
        return Gate::Cap;
    }
    match h.mode {
        HookMode::Live => Gate::Run,
        HookMode::DryRun => Gate::DryRun,
    }
}

/// The result of executing a command.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    /// ok | failed | timeout | error.
    pub status: HookStatus,
    /// Exit code.
    pub exit_code: Option<i32>,
    /// Wall time.
    pub duration: Duration,
    /// Last 64 KiB of stdout.
    pub stdout: String,
    /// Last 64 KiB of stderr.
    pub stderr: String,
}

/// The environment a hook sees for `e`.
pub fn event_env(
    e: &Event,
    action: &str,
    extra: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut v = vec![
        ("RBLWATCH_ACTION".to_string(), action.to_string()),
        ("RBLWATCH_EVENT".into(), e.kind.as_str().into()),
        ("RBLWATCH_EVENT_ID".into(), e.id.to_string()),
        ("RBLWATCH_SEVERITY".into(), e.severity.as_str().into()),
        ("RBLWATCH_AT".into(), e.at.to_string()),
        ("RBLWATCH_SUBJECT".into(), e.subject.kind_name().into()),
    ];
    // One variable per field of the subject, so a script never parses a compound name.
    let (target, list) = match &e.subject {
        // Before subjects were typed, spikes and probes put their metric or domain in
        // RBLWATCH_TARGET and their source or server in RBLWATCH_LIST; scripts rely on it.
        Subject::Metric { source, metric } => (format!("{source}.{metric}"), source.clone()),
        Subject::Probe { server, domain } => (domain.clone(), server.clone()),
        s => (
            s.target().unwrap_or_default().to_string(),
            s.list().unwrap_or_default().to_string(),
        ),
    };
    v.push(("RBLWATCH_TARGET".into(), target));
    v.push(("RBLWATCH_LIST".into(), list));
    let fields: Vec<(&str, &str)> = match &e.subject {
        Subject::Metric { source, metric } => vec![("SOURCE", source), ("METRIC", metric)],
        Subject::Probe { server, domain } => vec![("SERVER", server), ("DOMAIN", domain)],
        Subject::Hook { name } => vec![("HOOK", name)],
        Subject::Receiver { id } => vec![("RECEIVER", id)],
        Subject::Audit { name, check } => vec![("AUDIT", name), ("CHECK", check)],
        // the account is attacker-influenced text: one variable, data only, never argv
        Subject::Account {
            source,
            origin,
            account,
        } => vec![("SOURCE", source), ("ORIGIN", origin), ("ACCOUNT", account)],
        Subject::SenderClass { source, class } => vec![("SOURCE", source), ("CLASS", class)],
        _ => vec![],
    };
    for (k, val) in fields {
        v.push((format!("RBLWATCH_{k}"), val.to_string()));
    }
    let extra: Vec<(String, String)> = v
        .into_iter()
        .chain(extra.iter().map(|(k, val)| (k.clone(), val.clone())))
        .collect();
    crate::process::base_env(&extra)
}

/// Runs argv with `stdin_json` on stdin and exactly `env`, killing its process group at `timeout`.
pub async fn execute(
    argv: &[String],
    stdin_json: &str,
    env: &[(String, String)],
    timeout: Duration,
) -> Execution {
    use crate::process::{self, Ending, Limit};
    let started = std::time::Instant::now();
    let f = match process::run(
        argv,
        env,
        Some(stdin_json.as_bytes().to_vec()),
        timeout,
        Limit::Tail(OUTPUT_TAIL),
    )
    .await
    {
        Ok(f) => f,
        Err(e) => {
            return Execution {
                status: HookStatus::Error,
                exit_code: None,
                duration: started.elapsed(),
                stdout: String::new(),
                stderr: format!(
                    "cannot run {}: {e}",
                    argv.first().map_or("", String::as_str)
                ),
            }
        }
    };
    let mut stdout = String::from_utf8_lossy(&f.stdout).into_owned();
    if f.stdout_dropped > 0 {
        stdout = format!("[... {} earlier bytes dropped]\n{stdout}", f.stdout_dropped);
    }
    let (status, exit_code, stderr) = match f.ending {
        Ending::Exited { success, code } => (
            if success {
                HookStatus::Ok
            } else {
                HookStatus::Failed
            },
            code,
            f.stderr,
        ),
        Ending::TimedOut | Ending::TooMuchOutput => (
            HookStatus::Timeout,
            None,
            format!("{}\n[killed after {timeout:?}]", f.stderr),
        ),
    };
    Execution {
        status,
        exit_code,
        duration: f.duration,
        stdout,
        stderr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventKind, Severity};

    fn hook() -> HookConf {
        HookConf {
            name: "h".into(),
            on: vec![EventKind::NdrSpike],
            targets: vec![],
            lists: vec![],
            min_severity: Severity::Info,
            command: vec!["true".into()],
            revert: None,
            timeout: Duration::from_secs(5),
            cooldown: Duration::from_secs(600),
            max_per_hour: 2,
            mode: HookMode::Live,
            env: BTreeMap::new(),
            max_event_age: Duration::from_secs(3600),
        }
    }

    #[test]
    fn cooldown_cap_and_dry_run() {
        let h = hook();
        assert_eq!(gate(&h, 1000, 0, None), Gate::Run);
        assert_eq!(gate(&h, 1000, 1, Some(900)), Gate::Cooldown);
        assert_eq!(gate(&h, 2000, 1, Some(900)), Gate::Run);
        assert_eq!(gate(&h, 2000, 2, Some(900)), Gate::Cap);
        assert_eq!(
            gate(
                &HookConf {
                    mode: HookMode::DryRun,
                    ..h
                },
                1000,
                0,
                None
            ),
            Gate::DryRun
        );
    }

    #[test]
    fn conditions_pair_raise_and_clear() {
        let subject = Subject::Metric {
            source: "mx".into(),
            metric: "ndr".into(),
        };
        let a = Event::new(
            EventKind::NdrSpike,
            1,
            subject,
            "x".into(),
            serde_json::json!({}),
        );
        let mut b = a.clone();
        b.kind = EventKind::NdrSpikeCleared;
        assert_eq!(condition_key(&a), condition_key(&b));
        // the format stored by earlier versions, so reverts survive an upgrade
        assert_eq!(condition_key(&a), "ndr_spike:mx.ndr:mx");
        assert_eq!(EventKind::Delisted.clears(), Some(EventKind::Listed));
        assert_eq!(EventKind::Listed.clears(), None);
    }

    #[tokio::test]
    async fn stdin_env_output_tail_and_timeout() {
        let env = vec![
            ("PATH".to_string(), "/usr/bin:/bin".to_string()),
            ("RBLWATCH_EVENT".to_string(), "ndr_spike".to_string()),
        ];
        let e = execute(
            &[
                "sh".into(),
                "-c".into(),
                "cat; echo \" $RBLWATCH_EVENT\"; echo err >&2".into(),
            ],
            "{\"a\":1}",
            &env,
            Duration::from_secs(5),
        )
        .await;
        assert_eq!((e.status, e.exit_code), (HookStatus::Ok, Some(0)));
        assert_eq!(e.stdout, "{\"a\":1} ndr_spike\n");
        assert_eq!(e.stderr, "err\n");
        let e = execute(
            &["sh".into(), "-c".into(), "exit 3".into()],
            "",
            &env,
            Duration::from_secs(5),
        )
        .await;
        assert_eq!((e.status, e.exit_code), (HookStatus::Failed, Some(3)));
        // 3 MB of output: only the tail is kept
        let e = execute(
            &[
                "sh".into(),
                "-c".into(),
                "head -c 3000000 /dev/zero | tr '\\\\0' x; echo END".into(),
            ],
            "",
            &env,
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(e.status, HookStatus::Ok);
        assert!(
            e.stdout.len() < OUTPUT_TAIL + 100
                && e.stdout.ends_with("END\n")
                && e.stdout.starts_with("[... "),
            "{}",
            e.stdout.len()
        );
        // a hang, with a child that also hangs: both killed at the timeout
        let t = std::time::Instant::now();
        let e = execute(
            &["sh".into(), "-c".into(), "sleep 60 & sleep 60".into()],
            "",
            &env,
            Duration::from_millis(300),
        )
        .await;
        assert_eq!(e.status, HookStatus::Timeout);
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    }
}
