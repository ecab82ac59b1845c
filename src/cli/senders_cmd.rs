//! `rblwatch senders LOG [--mta postfix|exim] [--json]`: the outbound ledger of
//! a log file, once: messages by class and origin, the busiest accounts with
//! their recipients and refusals, and the bursts `[senders]` would raise if the
//! whole file were one window. Memory stays bounded whatever the file's size
//! (the ledger's and the tally's caps), which is what BENCHMARKS.md measures.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use super::text::terminal_safe;
use crate::catalog::Catalog;
use crate::config::{Config, SendersConf};
use crate::mail::ledger::{ClassRules, Fact, Ledger, LedgerConf, LogMta};
use crate::replies::ReplyCatalog;
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
    // the config's rules and catalogs were read and checked with it
    let (s, rules, replies, catalog) = match cfg {
        Some(p) => {
            let c = Config::load(p)?;
            let rules = (**c.class_rules()).clone();
            let (replies, catalog) = (c.replies().clone(), c.catalog().clone());
            (c.senders, rules, replies, catalog)
        }
        None => (
            SendersConf::default(),
            ClassRules::shipped()?,
            Arc::new(ReplyCatalog::shipped()?),
            Arc::new(Catalog::shipped()?),
        ),
    };
    let conf = LedgerConf {
        mynetworks: s.mynetworks.clone(),
        rules,
    };
    let mut read = Read {
        ledger: Ledger::new(match a.mta {
            MtaArg::Postfix => LogMta::Postfix,
            MtaArg::Exim => LogMta::Exim,
        }),
        tally: Tally::new(s.max_accounts),
        lines: 0,
        done: 0,
        by_origin: BTreeMap::new(),
    };
    let f =
        std::fs::File::open(&a.log).with_context(|| format!("cannot open {}", a.log.display()))?;
    read.all(
        BufReader::with_capacity(1 << 20, f),
        &conf,
        &replies,
        &catalog,
    )?;
    // the whole log is one window
    let bc = BurstConf {
        window: i64::MAX / 4,
        ..BurstConf::of(&s)
    };
    let (_, bursts) = senders::evaluate(&bc, SendersState::default(), &read.tally, 0);
    let mut top: Vec<(&String, &senders::AccountTally)> = read.tally.accounts.iter().collect();
    top.sort_by(|x, y| y.1.messages.cmp(&x.1.messages).then_with(|| x.0.cmp(y.0)));
    top.truncate(a.top);
    if a.json {
        read.print_json(&top, &bursts)?;
    } else {
        read.print_text(&top, &bursts);
    }
    Ok(ExitCode::SUCCESS)
}

/// One pass over a log: the ledger, its tally and the counts shown.
struct Read {
    ledger: Ledger,
    tally: Tally,
    lines: u64,
    done: u64,
    by_origin: BTreeMap<&'static str, u64>,
}

impl Read {
    /// Reads every line, in bounded memory.
    fn all(
        &mut self,
        mut r: impl BufRead,
        conf: &LedgerConf,
        replies: &ReplyCatalog,
        catalog: &Catalog,
    ) -> anyhow::Result<()> {
        let mut buf = Vec::with_capacity(4096);
        loop {
            buf.clear();
            if r.read_until(b'\n', &mut buf)? == 0 {
                return Ok(());
            }
            self.lines += 1;
            let line = String::from_utf8_lossy(&buf);
            let (tally, by_origin, done) = (&mut self.tally, &mut self.by_origin, &mut self.done);
            self.ledger.line(conf, &line, &mut |f| {
                match &f {
                    Fact::Queued { origin, .. } => {
                        *by_origin.entry(origin.as_str()).or_default() += 1
                    }
                    Fact::Done(_) => *done += 1,
                    Fact::Delivery { .. } => {}
                }
                let who = f.refused_by(replies, catalog);
                tally.add(&f, who.as_deref());
            });
        }
    }

    fn classes(&self) -> BTreeMap<&'static str, u64> {
        self.tally
            .classes
            .iter()
            .map(|(c, t)| (c.as_str(), t.messages))
            .collect()
    }

    fn print_json(
        &self,
        top: &[(&String, &senders::AccountTally)],
        bursts: &[BurstChange],
    ) -> anyhow::Result<()> {
        let top_json: Vec<serde_json::Value> = top
            .iter()
            .map(|(k, t)| {
                serde_json::json!({"account": k, "messages": t.messages, "refusals": t.refusals,
                    "refused_by": t.refused_by.iter().map(|(w, (n, _))| (w.clone(), *n)).collect::<BTreeMap<_, _>>()})
            })
            .collect();
        let v = serde_json::json!({
            "lines": self.lines, "messages_done": self.done, "open_messages": self.ledger.open_messages(),
            "evicted_messages": self.ledger.evicted, "accounts_kept": self.tally.accounts.len(),
            "by_class": self.classes(), "by_origin": self.by_origin, "top_accounts": top_json, "bursts": bursts,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        Ok(())
    }

    fn print_text(&self, top: &[(&String, &senders::AccountTally)], bursts: &[BurstChange]) {
        let joined = |m: &BTreeMap<&str, u64>| {
            m.iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "{} lines, {} messages done, {} still queued; by class: {}; by origin: {}",
            self.lines,
            self.done,
            self.ledger.open_messages(),
            joined(&self.classes()),
            joined(&self.by_origin)
        );
        for (k, t) in top {
            println!(
                "{:>8} messages {:>6} refusals  {}",
                t.messages,
                t.refusals,
                terminal_safe(k, 200)
            );
        }
        for b in bursts {
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
}
