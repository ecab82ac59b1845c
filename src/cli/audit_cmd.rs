//! `rblwatch audit [--json] [--name NAME] [--mta postfix|exim -- COMMAND...]`:
//! the read-only MTA posture audit, once.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::text::terminal_safe;
use crate::audit::{self, AuditReport};
use crate::config::{parse_duration, AuditConf, AuditMta, Schedule};
use crate::event::Severity;

/// Arguments of `rblwatch audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Only the configured audits with these names (repeatable). Default: every
    /// `[[audits]]`; without any, the local Postfix (`postconf`) and Exim
    /// (`exim4` or `exim`) found on PATH.
    #[arg(long = "name")]
    pub names: Vec<String>,
    /// Audit this MTA with the command given after `--` instead of the configured audits.
    #[arg(long, value_enum)]
    pub mta: Option<MtaArg>,
    /// Time allowed for each command.
    #[arg(long, default_value = "20s")]
    pub timeout: String,
    /// With --mta: the command the audit's arguments are appended to, e.g.
    /// `-- postconf -c /etc/postfix-out` or `-- exim4 -C /etc/exim4/exim4.conf`.
    #[arg(last = true)]
    pub command: Vec<String>,
}

/// `--mta`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MtaArg {
    /// Postfix (postconf).
    Postfix,
    /// Exim (exim -bP).
    Exim,
}

/// Runs it. Exit 0: no finding worse than info; 1: warnings or critical
/// findings; 2: bad input; 3: an audit could not read the settings.
pub(super) async fn run(cfg_path: Option<&Path>, a: AuditArgs) -> anyhow::Result<ExitCode> {
    let timeout: Duration = match parse_duration(&a.timeout) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("rblwatch: --timeout: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let audits: Vec<AuditConf> = match a.mta {
        Some(m) => {
            let mta = match m {
                MtaArg::Postfix => AuditMta::Postfix,
                MtaArg::Exim => AuditMta::Exim,
            };
            vec![AuditConf {
                name: mta.as_str().into(),
                mta,
                command: if a.command.is_empty() {
                    mta.default_command()
                } else {
                    a.command.clone()
                },
                interval: Schedule::Every(Duration::from_secs(3600)),
                timeout,
            }]
        }
        None => {
            if !a.command.is_empty() {
                eprintln!("rblwatch: a command after `--` needs --mta postfix|exim");
                return Ok(ExitCode::from(2));
            }
            let cfg = super::load_config(cfg_path, false)?;
            let mut v = if cfg.audits.is_empty() {
                detected(timeout)
            } else {
                cfg.audits.clone()
            };
            if !a.names.is_empty() {
                for n in &a.names {
                    if !v.iter().any(|x| &x.name == n) {
                        eprintln!("rblwatch: no audit named {n:?}");
                        return Ok(ExitCode::from(2));
                    }
                }
                v.retain(|x| a.names.contains(&x.name));
            }
            v
        }
    };
    if audits.is_empty() {
        eprintln!("rblwatch: nothing to audit: no [[audits]] configured and neither postconf nor exim found on PATH (use --mta)");
        return Ok(ExitCode::from(2));
    }
    let mut reports = Vec::new();
    for conf in &audits {
        reports.push(audit::run(conf).await);
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        for r in &reports {
            print_report(r);
        }
    }
    let code = if reports.iter().any(|r| !r.ok) {
        3
    } else if reports
        .iter()
        .any(|r| r.count_at_least(Severity::Warning) > 0)
    {
        1
    } else {
        0
    };
    Ok(ExitCode::from(code))
}

/// The MTAs found on PATH.
fn detected(timeout: Duration) -> Vec<AuditConf> {
    let mut v = Vec::new();
    let mk = |mta: AuditMta, prog: &str| AuditConf {
        name: mta.as_str().into(),
        mta,
        command: vec![prog.to_string()],
        interval: Schedule::Every(Duration::from_secs(3600)),
        timeout,
    };
    if crate::config::actions::program_exists("postconf") {
        v.push(mk(AuditMta::Postfix, "postconf"));
    }
    for prog in ["exim4", "exim"] {
        if crate::config::actions::program_exists(prog) {
            v.push(mk(AuditMta::Exim, prog));
            break;
        }
    }
    v
}

fn print_report(r: &AuditReport) {
    let safe = |s: &str| terminal_safe(s, 2000);
    let version = r
        .version
        .as_deref()
        .map(|v| format!(" {}", safe(v)))
        .unwrap_or_default();
    if let Some(e) = &r.error {
        println!(
            "{} ({}{version}): could not read the settings: {}",
            r.name,
            r.mta.as_str(),
            safe(e)
        );
        return;
    }
    let n = |s: Severity| r.findings.iter().filter(|f| f.severity == s).count();
    println!(
        "{} ({}{version}): {} checks, {} critical, {} warning, {} info",
        r.name,
        r.mta.as_str(),
        r.checks.len(),
        n(Severity::Critical),
        n(Severity::Warning),
        n(Severity::Info)
    );
    for f in &r.findings {
        println!(
            "  {} {}: {}",
            f.severity.as_str().to_uppercase(),
            f.check,
            f.title
        );
        println!("    seen: {}", safe(&f.evidence));
        println!("    why:  {}", f.why);
        println!("    fix:  {}", safe(&f.fix));
    }
}
