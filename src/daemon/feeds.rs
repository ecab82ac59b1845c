//! Receivers' feeds as daemon jobs: read a DMARC mailbox, store each report
//! once, announce the IPs that send for a monitored domain but are not
//! targets (`unmonitored_sender`), and with `[discover] from = ["dmarc"]` add
//! them to the sweeps. A feed that cannot be read raises `feed_failed` once
//! (then `feed_recovered`); a bad mail is rejected with its reason and counted,
//! and neither stops anything else.

use std::net::IpAddr;
use std::sync::Arc;

use super::{counts_of, restore_counts, Daemon, Mode, Runtime};
use crate::config::{Config, DiscoverFrom, DmarcMailbox};
use crate::event::{Event, EventKind, Subject};
use crate::feeds::dmarc::{self, Limits};
use crate::feeds::mailbox::{self, MailboxError};
use crate::feeds::senders::{senders, window_start, with_discovered, Discovered, SenderStatus};
use crate::store::{self, Store};
use crate::time::now;

/// The discovered IPs kept in the store, added to `cfg` (start-up and reload).
pub async fn load_discovered(store: &Store, cfg: Config) -> anyhow::Result<Config> {
    if cfg.discover.from.is_empty() {
        return Ok(cfg);
    }
    let found: Vec<Discovered> = store
        .call(|c| Ok(store::get_state(c, &store::StateKey::Discovered)?.unwrap_or_default()))
        .await?;
    Ok(with_discovered(cfg, &found))
}

impl Daemon {
    /// Reads the named feed once: new mails only, each report stored once.
    pub async fn read_feed(self: Arc<Self>, name: &str) -> anyhow::Result<()> {
        let rt = self.runtime();
        let Some(feed) = rt.cfg.feeds.iter().find(|f| f.name == name).cloned() else {
            if rt.cfg.postmaster.iter().any(|f| f.name == name) {
                return self.read_postmaster(name).await;
            }
            return Ok(()); // removed by a reload since the tick was sent
        };
        let n = name.to_string();
        let seen = self
            .store
            .call(move |c| store::feed_mail_keys(c, &n))
            .await?;
        let read = match &feed.mailbox {
            DmarcMailbox::Maildir(dir) => {
                let (dir, max_bytes, max) = (dir.clone(), feed.max_mail_bytes, feed.max_mails);
                let job = tokio::task::spawn_blocking(move || {
                    mailbox::read_maildir(&dir, &seen, max_bytes, max)
                });
                match tokio::time::timeout(feed.timeout, job).await {
                    Ok(r) => r?,
                    Err(_) => Err(MailboxError::Timeout(feed.timeout)),
                }
            }
            DmarcMailbox::Imap(conf) => {
                mailbox::read_imap(
                    conf,
                    &seen,
                    feed.max_mail_bytes,
                    feed.max_mails,
                    feed.timeout,
                )
                .await
            }
        };
        let at = now();
        let mails = match read {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(feed = %name, error = %e, "feed failed");
                let (n, why) = (name.to_string(), e.to_string());
                let events = self
                    .store
                    .call(move |c| {
                        let tx = c.transaction()?;
                        let ev = feed_health(&tx, &n, Some(&why), at)?;
                        tx.commit()?;
                        Ok(ev)
                    })
                    .await?;
                self.publish(events);
                return Ok(());
            }
        };
        // unpacking and parsing is CPU work: off the async workers
        let limits = Limits {
            max_xml: feed.max_report_bytes,
            ..Limits::default()
        };
        let parsed: Vec<_> = tokio::task::spawn_blocking(move || {
            mails
                .into_iter()
                .map(|(key, m)| {
                    let r = match m {
                        Ok(raw) => dmarc::from_mail(&raw, &limits),
                        Err(e) => vec![Err(e)],
                    };
                    (key, r)
                })
                .collect()
        })
        .await?;
        let cfg = rt.cfg.clone();
        let n = name.to_string();
        let (events, added) = self
            .store
            .call(move |c| {
                let tx = c.transaction()?;
                let mut events = Vec::new();
                let (mut reports, mut rejected) = (0usize, 0usize);
                for (key, results) in parsed {
                    let (stored, rejects) = store::commit_feed_mail(&tx, &n, &key, at, results)?;
                    reports += stored.len();
                    rejected += rejects.len();
                    for r in &rejects {
                        tracing::warn!(feed = %n, mail = %key, reason = r.kind(), "report rejected: {r}");
                    }
                }
                if reports + rejected > 0 {
                    tracing::info!(feed = %n, reports, rejected, "feed read");
                }
                events.extend(feed_health(&tx, &n, None, at)?);
                let (ev, added) = announce_senders(&tx, &cfg, at)?;
                events.extend(ev);
                tx.commit()?;
                Ok((events, added))
            })
            .await?;
        self.publish(events);
        if added {
            self.rediscover().await?;
        }
        Ok(())
    }

    /// Rebuilds the runtime with the discovered targets, so the next sweep asks about them.
    pub(super) async fn rediscover(&self) -> anyhow::Result<()> {
        let rt = self.runtime();
        let cfg = load_discovered(&self.store, (*rt.cfg).clone()).await?;
        let pairs = cfg.targets.len();
        let (new, _) = Runtime::new(cfg, Mode::Service).await?;
        restore_counts(&new.engine, &counts_of(&rt.engine));
        match self.runtime.write() {
            Ok(mut g) => *g = Arc::new(new),
            Err(p) => *p.into_inner() = Arc::new(new),
        }
        tracing::info!(
            targets = pairs,
            "discovered sending IPs added to the sweeps"
        );
        Ok(())
    }
}

/// Raises `unmonitored_sender` once per (IP, domain) and, with `[discover]`,
/// keeps the new IPs (bounded by `discover.max`). Returns the events and
/// whether the discovered set grew.
fn announce_senders(
    c: &rusqlite::Connection,
    cfg: &Config,
    at: i64,
) -> Result<(Vec<Event>, bool), store::StoreError> {
    let seen = store::dmarc_senders(c, &window_start(cfg, at))?;
    let discover = cfg.discover.from.contains(&DiscoverFrom::Dmarc);
    let mut found: Vec<Discovered> =
        store::get_state(c, &store::StateKey::Discovered)?.unwrap_or_default();
    let mut added = false;
    let mut events = Vec::new();
    for s in senders(cfg, seen) {
        if s.status != SenderStatus::NotMonitored {
            continue;
        }
        let Ok(ip) = s.seen.ip.parse::<IpAddr>() else {
            continue;
        };
        let ip = crate::target::normalise_ip(ip);
        let mut discovered = false;
        if discover && !found.iter().any(|d| d.ip == ip) {
            if found.len() < cfg.discover.max {
                found.push(Discovered {
                    ip,
                    domain: s.seen.domain.clone(),
                    origin: "dmarc".into(),
                    since: at,
                });
                added = true;
                discovered = true;
            } else {
                tracing::warn!(ip = %ip, max = cfg.discover.max, "discover.max reached: sending IP not added to the sweeps");
            }
        }
        let key = store::StateKey::SenderAnnounced {
            ip: ip.to_string(),
            domain: s.seen.domain.clone(),
        };
        if store::get_state::<bool>(c, &key)?.unwrap_or(false) {
            continue;
        }
        store::put_state(c, &key, &true, at)?;
        let summary = if discovered {
            format!(
                "{ip} is sending for {} ({} messages, DMARC pass), not monitored: added to the sweeps",
                s.seen.domain, s.seen.messages
            )
        } else {
            format!(
                "{ip} is sending for {} ({} messages, DMARC pass), not monitored",
                s.seen.domain, s.seen.messages
            )
        };
        let e = Event::new(
            EventKind::UnmonitoredSender,
            at,
            Subject::Target {
                target: ip.to_string(),
            },
            summary,
            serde_json::json!({
                "ip": ip.to_string(), "domain": s.seen.domain, "messages": s.seen.messages,
                "passed": s.seen.passed, "orgs": s.seen.orgs, "origin": "dmarc", "discovered": discovered,
            }),
        );
        events.push(store::insert_event(c, &e)?);
    }
    if added {
        store::put_state(c, &store::StateKey::Discovered, &found, at)?;
    }
    Ok((events, added))
}

/// `feed_failed` on the first failure, `feed_recovered` on the first read after.
pub(super) fn feed_health(
    c: &rusqlite::Connection,
    name: &str,
    why: Option<&str>,
    at: i64,
) -> Result<Vec<Event>, store::StoreError> {
    let key = store::StateKey::FeedFailing(name.to_string());
    let failing: bool = store::get_state(c, &key)?.unwrap_or(false);
    let (kind, summary) = match (why, failing) {
        (Some(why), false) => (
            EventKind::FeedFailed,
            format!("feed {name} cannot be read: {why}"),
        ),
        (None, true) => (EventKind::FeedRecovered, format!("feed {name} reads again")),
        _ => return Ok(vec![]),
    };
    store::put_state(c, &key, &why.is_some(), at)?;
    let e = Event::new(
        kind,
        at,
        Subject::Feed {
            name: name.to_string(),
        },
        summary,
        serde_json::json!({ "feed": name, "why": why.unwrap_or("") }),
    );
    Ok(vec![store::insert_event(c, &e)?])
}
