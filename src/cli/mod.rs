//! The command line. Each subcommand is one function; exit codes follow the
//! usual conventions (0 ok, 1 error, 2 usage; `--nagios` uses 0–3).

mod audit_cmd;
mod check;
mod daemon_cmd;
mod delist_cmd;
mod hooks_cmd;
mod intersect_cmd;
mod lists;
mod probe_cmd;
pub mod text;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;

/// Keeps outbound mail servers off DNS blacklists.
#[derive(Debug, Parser)]
#[command(name = "rblwatch", version, about)]
pub struct Cli {
    /// Configuration file. Defaults to ./rblwatch.toml when it exists.
    #[arg(long, short = 'C', global = true)]
    pub config: Option<PathBuf>,
    /// More logging (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The command.
    #[command(subcommand)]
    pub cmd: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check IPs, CIDR ranges or domains against the lists now.
    Check(check::CheckArgs),
    /// Show the list catalog, and with --health each list's health.
    Lists(lists::ListsArgs),
    /// Which parts of whole ranges the mirrored lists list (intersection, no queries).
    Intersect(intersect_cmd::IntersectArgs),
    /// Validate or show the configuration.
    Config {
        /// What to do.
        #[command(subcommand)]
        cmd: ConfigCmd,
    },
    /// Run the monitoring daemon.
    Daemon(daemon_cmd::DaemonArgs),
    /// Current state from the database.
    Status(daemon_cmd::StatusArgs),
    /// Listing history of a target from the database.
    History(daemon_cmd::HistoryArgs),
    /// Record that delisting of a listing was requested (the daemon re-checks the pair now).
    Delist(delist_cmd::DelistArgs),
    /// Remediation hooks.
    Hooks {
        /// What to do.
        #[command(subcommand)]
        cmd: hooks_cmd::HooksCmd,
    },
    /// Audit the MTA's settings (read-only): what causes backscatter and listings.
    Audit(audit_cmd::AuditArgs),
    /// Probe a mail server now.
    Probe {
        /// Which probe.
        #[command(subcommand)]
        cmd: probe_cmd::ProbeCmd,
    },
}

/// `rblwatch config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Validate the configuration without running anything.
    Check,
}

/// Entry point used by the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.cmd, Command::Daemon(_)) {
        // `rblwatch lists --all | head`: a closed pipe ends a one-shot command
        // quietly, like any Unix tool, instead of a panic in println!. The daemon
        // keeps SIGPIPE ignored: a hook that closes its stdin must not kill it.
        // SAFETY: resetting a signal disposition before any thread is started.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    if matches!(cli.cmd, Command::Daemon(_)) {
        // before the runtime starts any thread (see daemon::memory)
        crate::daemon::memory::limit_arenas();
    }
    init_tracing(cli.verbose);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rblwatch: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = rt.block_on(run(cli));
    // Do not wait for stray blocking tasks (e.g. a hung hook) at exit.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}

async fn run(cli: Cli) -> ExitCode {
    let cfg_path = cli.config.clone();
    let result = match cli.cmd {
        Command::Check(a) => check::run(cfg_path.as_deref(), a).await,
        Command::Lists(a) => lists::run(cfg_path.as_deref(), a).await,
        Command::Intersect(a) => intersect_cmd::run(cfg_path.as_deref(), a).await,
        Command::Config {
            cmd: ConfigCmd::Check,
        } => config_check(cfg_path.as_deref()),
        Command::Daemon(a) => daemon_cmd::daemon(cfg_path.as_deref(), a).await,
        Command::Status(a) => daemon_cmd::status(cfg_path.as_deref(), a).await,
        Command::History(a) => daemon_cmd::history(cfg_path.as_deref(), a).await,
        Command::Delist(a) => delist_cmd::run(cfg_path.as_deref(), a).await,
        Command::Probe { cmd } => probe_cmd::run(cmd).await,
        Command::Audit(a) => audit_cmd::run(cfg_path.as_deref(), a).await,
        Command::Hooks { cmd } => hooks_cmd::run(cfg_path.as_deref(), cmd).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rblwatch: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "rblwatch=debug,info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// Loads the config: the given path, else ./rblwatch.toml if present, else defaults (when `required` is false).
pub(crate) fn load_config(path: Option<&Path>, required: bool) -> anyhow::Result<Config> {
    let p = match path {
        Some(p) => Some(p.to_path_buf()),
        None => {
            let d = PathBuf::from("rblwatch.toml");
            d.exists().then_some(d)
        }
    };
    let cfg = match p {
        Some(p) => Config::load(&p)?,
        None if required => {
            anyhow::bail!("no configuration: pass --config FILE (see rblwatch.example.toml)")
        }
        None => Config::default_for_cli()?,
    };
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    Ok(cfg)
}

/// The database's directory must exist (or be creatable) and be writable by
/// this user: a read-only /etc is found here, not by the daemon at start.
fn check_database_dir(db: &Path) -> anyhow::Result<()> {
    let dir = match db.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let existing = dir
        .ancestors()
        .find(|d| d.exists())
        .unwrap_or(Path::new("/"));
    let probe = existing.join(format!(".rblwatch-write-test-{}", std::process::id()));
    match std::fs::write(&probe, b"") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => anyhow::bail!(
            "daemon.database: {} is not writable here ({e}): set daemon.database to a writable place, e.g. /var/lib/rblwatch/rblwatch.db (under systemd, a relative path is relative to $STATE_DIRECTORY)",
            existing.display()
        ),
    }
}

fn config_check(path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let cfg = load_config(path, true)?;
    let catalog = cfg.catalog().map_err(anyhow::Error::msg)?;
    let (lists, warnings) = crate::engine::active_lists(&cfg, &catalog, None)?;
    crate::daemon::check_templates(&cfg)?;
    check_database_dir(&cfg.daemon.database)?;
    for w in &warnings {
        println!("warning: {w}");
    }
    let pairs: u128 = cfg.targets.iter().map(|t| t.spec.len()).sum();
    println!(
        "{}: OK ({} targets expanding to {} addresses/domains, {} lists, database {})",
        cfg.path.display(),
        cfg.targets.len(),
        pairs,
        lists.len(),
        cfg.daemon.database.display()
    );
    Ok(ExitCode::SUCCESS)
}
