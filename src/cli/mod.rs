//! The command line. Each subcommand is one function; exit codes follow the
//! usual conventions (0 ok, 1 error, 2 usage; `--nagios` uses 0–3).

mod audit_cmd;
mod check;
mod daemon_cmd;
mod delist_cmd;
mod hooks_cmd;
mod intersect_cmd;
mod lists;
mod man_cmd;
mod probe_cmd;
mod range;
mod senders_cmd;
pub mod text;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigErrors};

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
    /// Write the manual pages (rblwatch.8 and one per subcommand).
    Man(man_cmd::ManArgs),
    /// The outbound ledger of an MTA log file: messages by class and origin, the busiest accounts, bursts.
    Senders(senders_cmd::SendersArgs),
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
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return check::args_refused(e),
    };
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
    if !matches!(&cli.cmd, Command::Check(a) if check::quiet(a, cli.verbose)) {
        init_tracing(cli.verbose);
    }
    // `check` runs on this one thread: its sweep and the DNS drivers then
    // hand answers over without waking another thread (a futex call and a
    // context switch per batch), and no worker is woken to steal work from
    // another (perf, BENCHMARKS.md). One core does ~150k queries/s, far
    // beyond any list's rate; blocking work still goes to the blocking pool.
    let builder = if matches!(cli.cmd, Command::Check(_)) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let rt = match { builder }.enable_all().build() {
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
        Command::Man(a) => man_cmd::run(a),
        Command::Audit(a) => audit_cmd::run(cfg_path.as_deref(), a).await,
        Command::Senders(a) => senders_cmd::run(cfg_path.as_deref(), a),
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

/// `rblwatch config check`: every problem of the file at once, one per
/// line as `file:line: message` (like a compiler), then a count; exit 1 when
/// there is any. The file's own errors come first; when it loads, what can
/// only be checked on a loaded config (templates rendered, the database
/// directory writable) is checked as a whole too.
fn config_check(path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let cfg = match load_config(path, true) {
        Ok(cfg) => cfg,
        Err(e) => {
            return match e.downcast::<ConfigErrors>() {
                Ok(errors) => Ok(report_problems(
                    &errors.first().file,
                    errors.all().iter().map(ToString::to_string).collect(),
                )),
                Err(e) => Err(e),
            }
        }
    };
    let file = cfg.path.display().to_string();
    let mut problems = Vec::new();
    let (lists, warnings) =
        crate::engine::active_lists(&cfg, cfg.catalog(), None).unwrap_or_else(|e| {
            problems.push(format!("{file}: {e}"));
            Default::default()
        });
    for ch in &cfg.actions.channels {
        if let Err(e) = crate::actions::alerts::check_template(ch) {
            problems.push(format!("{e:#}"));
        }
    }
    if let Err(e) = cfg.daemon.check_writable(&cfg.path) {
        problems.push(e.to_string());
    }
    if !problems.is_empty() {
        return Ok(report_problems(&file, problems));
    }
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

/// Prints each problem on its own line, then how many, to stderr; exit 1.
fn report_problems(file: &str, problems: Vec<String>) -> ExitCode {
    for p in &problems {
        eprintln!("{p}");
    }
    let n = problems.len();
    eprintln!(
        "rblwatch: {file}: {n} problem{} found",
        if n == 1 { "" } else { "s" }
    );
    ExitCode::from(1)
}
