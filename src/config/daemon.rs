//! `[daemon]`: the database, the schedule of sweeps and health checks, the
//! state machine's confirmation counts and retention.

use std::path::PathBuf;
use std::time::Duration;

use super::ctx::{ConfigError, Ctx};
use super::raw::RawDaemon;
use super::schedule::Schedule;

/// Daemon settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonConf {
    /// SQLite database file. Defaults to `rblwatch.db`. A relative path is
    /// relative to `$STATE_DIRECTORY` when systemd sets it (`StateDirectory=`),
    /// else to the config file's directory.
    pub database: PathBuf,
    /// When DNSBL sweeps run. Defaults to every 30 min (at least 1 s apart).
    pub sweep: Schedule,
    /// When list health is re-checked. Defaults to every 30 min (and always before a sweep uses a list).
    pub health: Schedule,
    /// Spread a sweep's queries over the interval instead of bursting. Defaults to true for sweeps of over 4,096 pairs.
    pub spread: bool,
    /// Consecutive listed answers that confirm a listing. Defaults to 2 (1 to 100).
    pub confirm_listed: u32,
    /// Consecutive clear answers that confirm a delisting. Defaults to 2 (1 to 100).
    pub confirm_clear: u32,
    /// Days of events and listing periods kept. Defaults to 400.
    pub retention_days: u32,
    /// Days of raw samples kept (hourly roll-ups are kept for `retention_days`). Defaults to 30.
    pub sample_retention_days: u32,
    /// The line of `daemon.database` in the file (none when defaulted), so a
    /// check made later ([`DaemonConf::check_writable`]) can point at it.
    pub database_line: Option<usize>,
    /// Random /64s asked of each DNS list per sweep for an IPv6 prefix target,
    /// besides the /64s known to send. Defaults to 16 (0 to 256).
    pub prefix_sample: u32,
}

impl DaemonConf {
    /// The database's directory must exist (or be creatable) and be writable
    /// by this user: a read-only /etc is found by `config check`, not by the
    /// daemon at start. Not part of loading: `rblwatch status` reads the
    /// database as another user. `file` is the config file, for the message.
    pub fn check_writable(&self, file: &std::path::Path) -> Result<(), ConfigError> {
        probe_writable(&self.database).map_err(|(existing, e)| ConfigError {
            file: file.display().to_string(),
            line: self.database_line,
            msg: format!(
                "daemon.database: {} is not writable here ({e}): set daemon.database to a writable place, e.g. /var/lib/rblwatch/rblwatch.db (under systemd, a relative path is relative to $STATE_DIRECTORY)",
                existing.display()
            ),
        })
    }
}

/// The one writability test of a database's directory, for `config check`
/// and the daemon's start alike: a file can be created in the nearest
/// existing ancestor of its directory. On failure, that directory and why.
pub fn probe_writable(db: &std::path::Path) -> Result<(), (std::path::PathBuf, std::io::Error)> {
    let dir = match db.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let existing = dir
        .ancestors()
        .find(|d| d.exists())
        .unwrap_or(std::path::Path::new("/"))
        .to_path_buf();
    let probe = existing.join(format!(".rblwatch-write-test-{}", std::process::id()));
    match std::fs::write(&probe, b"") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err((existing, e)),
    }
}

pub(super) fn validate(d: &RawDaemon, cx: &Ctx<'_>) -> DaemonConf {
    let half_hour = Duration::from_secs(1800);
    let second = Duration::from_secs(1);
    let database = database_path(
        d.database.as_ref().map_or("rblwatch.db", |s| s.get_ref()),
        cx,
    );
    let database_line = d.database.as_ref().map(|s| cx.line(s.span().start));
    if database.is_dir() {
        cx.report_at(
            database_line,
            format!(
                "daemon.database: {} is a directory: name the database file, e.g. {}",
                database.display(),
                database.join("rblwatch.db").display()
            ),
        );
    }
    DaemonConf {
        database,
        database_line,
        sweep: cx.schedule(&d.sweep, "daemon.sweep", half_hour, second),
        health: cx.schedule(&d.health, "daemon.health", half_hour, second),
        spread: d.spread.unwrap_or(true),
        confirm_listed: cx.int(&d.confirm_listed, "daemon.confirm_listed", 2, 1, 100) as u32,
        confirm_clear: cx.int(&d.confirm_clear, "daemon.confirm_clear", 2, 1, 100) as u32,
        retention_days: cx.int(&d.retention_days, "daemon.retention_days", 400, 1, 36_500) as u32,
        sample_retention_days: cx.int(
            &d.sample_retention_days,
            "daemon.sample_retention_days",
            30,
            1,
            36_500,
        ) as u32,
        prefix_sample: cx.int(&d.prefix_sample, "daemon.prefix_sample", 16, 0, 256) as u32,
    }
}

/// Where the database goes: an absolute path as given; a relative one under
/// systemd's `$STATE_DIRECTORY` (so a config in a read-only /etc works), else
/// beside the config file.
fn database_path(p: &str, cx: &Ctx<'_>) -> PathBuf {
    let path = std::path::Path::new(p);
    if path.is_absolute() {
        return path.to_path_buf();
    }
    match std::env::var_os("STATE_DIRECTORY") {
        // systemd passes a colon-separated list when several directories are set
        Some(dirs) if !dirs.is_empty() => {
            let first = dirs
                .to_string_lossy()
                .split(':')
                .next()
                .unwrap_or("")
                .to_string();
            PathBuf::from(first).join(path)
        }
        _ => cx.path(p),
    }
}
