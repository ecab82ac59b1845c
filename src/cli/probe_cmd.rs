//! `rblwatch probe smtp <host[:port]> --domain example.com`.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::text::terminal_safe;
use crate::config::{hostname, parse_duration};
use crate::config::{ProbeOpts, StartTls};
use crate::smtp_probe::{self, RndrVerdict};

/// `rblwatch probe …`
#[derive(Debug, Subcommand)]
pub enum ProbeCmd {
    /// Does the server accept mail for nonexistent recipients (backscatter risk)? Never sends DATA.
    Smtp(SmtpArgs),
}

/// Arguments of `rblwatch probe smtp`.
#[derive(Debug, Args)]
pub struct SmtpArgs {
    /// The server, host or host:port (port 25 by default).
    pub server: String,
    /// The protected domain.
    #[arg(long)]
    pub domain: String,
    /// MAIL FROM address. Defaults to postmaster@<domain>.
    #[arg(long = "from")]
    pub mail_from: Option<String>,
    /// Control recipient that must exist. Defaults to postmaster.
    #[arg(long, default_value = "postmaster")]
    pub control: String,
    /// EHLO name. Defaults to this host's name.
    #[arg(long)]
    pub helo: Option<String>,
    /// Timeout of each step.
    #[arg(long, default_value = "10s")]
    pub timeout: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Stay in plain text even when the server offers STARTTLS.
    #[arg(long)]
    pub no_starttls: bool,
}

/// Runs it. Exit 0 rejects-unknown, 1 accepts-unknown, 3 inconclusive, 2 bad input.
pub(super) async fn run(cmd: ProbeCmd) -> anyhow::Result<ExitCode> {
    let ProbeCmd::Smtp(a) = cmd;
    let domain = match crate::target::parse_domain(&a.domain) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("rblwatch: --domain: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let timeout: Duration = match parse_duration(&a.timeout) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("rblwatch: --timeout: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let server = match crate::config::mail::smtp_server(&a.server) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rblwatch: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let o = ProbeOpts {
        server,
        mail_from: a
            .mail_from
            .unwrap_or_else(|| format!("postmaster@{domain}")),
        domain,
        helo: a.helo.unwrap_or_else(hostname),
        control: a.control,
        timeout,
        starttls: if a.no_starttls {
            StartTls::Off
        } else {
            StartTls::Opportunistic
        },
    };
    let r = smtp_probe::probe(&o).await;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        for l in &r.transcript {
            println!("  {}", terminal_safe(l, 300));
        }
        println!("{}: {}", r.verdict.as_str(), terminal_safe(&r.why, 400));
    }
    Ok(ExitCode::from(match r.verdict {
        RndrVerdict::RejectsUnknown => 0,
        RndrVerdict::AcceptsUnknown => 1,
        RndrVerdict::Inconclusive => 3,
    }))
}
