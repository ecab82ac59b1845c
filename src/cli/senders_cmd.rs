//! `rblwatch senders LOG [--mta postfix|exim] [--json]`: the outbound ledger of
//! a log file, once: messages by class and origin, the busiest accounts with
//! their recipients and refusals, and the bursts `[senders]` would raise if the
//! whole file were one window. Memory stays bounded whatever the file's size
//! (the ledger's and the tally's caps), which is what BENCHMARKS.md measures.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::text::terminal_safe;
use crate::config::{Config, SendersConf};
use crate::mail::ledger::{ClassRules, Fact, Ledger, LedgerConf, LogMta};
use crate::senders::{self, BurstChange, BurstConf, SendersState, Tally};

/// Arguments of `rblwatch senders`.
#[derive(Debug, Args)]
pub struct SendersArgs {
    /// The MTA log to read (Postfix maillog or Exim mainlog), from its start.
    pub log: PathBuf,
    /// Which MTA wrote it.
    #[arg(long, value_enum, default_value = "postfix")]
    pub mta: MtaArg,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Accounts shown.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
}

/// `--mta`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MtaArg {
    /// Postfix.
    Postfix,
    /// Exim.
    Exim,
}

/// Runs `rblwatch senders`.
pub(super) fn run(cfg: Option<&Path>, a: SendersArgs) -> anyhow::Result<ExitCode> {
    // the config's rules were read and checked with it
    let (s, rules) = match cfg {
        Some(p) => {
            let c = Config::load(p)?;
            let rules = (**c.class_rules()).clone();
            (c.senders, rules)
        }
        None => (SendersConf::default(), ClassRules::shipped()?),
    };
    let conf = LedgerConf {
        mynetworks: s.mynetworks.clone(),
        rules,
    };
    let mut ledger = Ledger::new(match a.mta {
        MtaArg::Postfix => LogMta::Postfix,
        MtaArg::Exim => LogMta::Exim,
    });
    let mut tally = Tally::new(s.max_accounts);
    let f =
        std::fs::File::open(&a.log).with_context(|| format!("cannot open {}", a.log.display()))?;
    let mut r = BufReader::with_capacity(1 << 20, f);
    let mut buf = Vec::with_capacity(4096);
    let (mut lines, mut done) = (0u64, 0u64);
    let mut by_origin: BTreeMap<&'static str, u64> = BTreeMap::new();
    loop {
        buf.clear();
        if r.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        lines += 1;
        let line = String::from_utf8_lossy(&buf);
        ledger.line(&conf, &line, &mut |f| {
            match &f {
                Fact::Queued { origin, .. } => *by_origin.entry(origin.as_str()).or_default() += 1,
                Fact::Done(_) => done += 1,
                Fact::Delivery { .. } => {}
            }
            let who = match &f {
                Fact::Delivery {
                    remote: true,
                    result,
                    ..
                } if result.reply.is_some()
                    && matches!(
                        result.status,
                        crate::mail::delivery::DeliveryStatus::Bounced
                            | crate::mail::delivery::DeliveryStatus::Deferred
                    ) =>
                {
                    result.relay_host.clone()
                }
                _ => None,
            };
            tally.add(&f, who.as_deref());
        });
    }
    let bc = BurstConf {
        window: i64::MAX / 4,
        account_messages: s.account_messages,
        account_recipients: s.account_recipients,
        automated_messages: s.automated_messages,
        factor: s.factor,
        clear_after: s.clear_after,
        max_accounts: s.max_accounts,
    };
    let mut top: Vec<(&String, &senders::AccountTally)> = tally.accounts.iter().collect();
    top.sort_by(|x, y| y.1.messages.cmp(&x.1.messages).then_with(|| x.0.cmp(y.0)));
    top.truncate(a.top);
    let classes: BTreeMap<&str, u64> = tally
        .classes
        .iter()
        .map(|(c, t)| (c.as_str(), t.messages))
        .collect();
    let top_json: Vec<serde_json::Value> = top
        .iter()
        .map(|(k, t)| {
            serde_json::json!({"account": k, "messages": t.messages, "refusals": t.refusals,
                "refused_by": t.refused_by.iter().map(|(w, (n, _))| (w.clone(), *n)).collect::<BTreeMap<_, _>>()})
        })
        .collect();
    let (_, bursts) = senders::evaluate(&bc, SendersState::default(), &tally, 0);
    if a.json {
        let v = serde_json::json!({
            "lines": lines, "messages_done": done, "open_messages": ledger.open_messages(),
            "evicted_messages": ledger.evicted, "accounts_kept": tally.accounts.len(),
            "by_class": classes, "by_origin": by_origin, "top_accounts": top_json, "bursts": bursts,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{lines} lines, {done} messages done, {} still queued; by class: {}; by origin: {}",
            ledger.open_messages(),
            classes
                .iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            by_origin
                .iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for (k, t) in &top {
            println!(
                "{:>8} messages {:>6} refusals  {}",
                t.messages,
                t.refusals,
                terminal_safe(k, 200)
            );
        }
        for b in &bursts {
            match b {
                BurstChange::AccountBurst { key, triggers, .. } => {
                    println!(
                        "burst: {} ({})",
                        terminal_safe(key, 200),
                        triggers.join("; ")
                    )
                }
                BurstChange::AutomatedBurst {
                    class, messages, ..
                } => println!("burst: {} mail, {messages} messages", class.as_str()),
                _ => {}
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
