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
                return self
                    .feed_failed(name, e.to_string(), at, |_, _| Ok(()))
                    .await;
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
                let (ev, added) = commit_read(tx, &n, at, |c| announce_senders(c, &cfg, at))?;
                events.extend(ev);
                Ok((events, added))
            })
            .await?;
        self.feed_read(events, added).await
    }

    /// A feed's read failed: `feed_failed` (once, see [`feed_health`]) is
    /// committed with `record`, the feed's own note of the failure, then
    /// published. The caller has logged why.
    pub(super) async fn feed_failed<F>(
        &self,
        name: &str,
        why: String,
        at: i64,
        record: F,
    ) -> anyhow::Result<()>
    where
        F: FnOnce(&rusqlite::Connection, &str) -> Result<(), store::StoreError> + Send + 'static,
    {
        let n = name.to_string();
        let events = self
            .store
            .call(move |c| {
                let tx = c.transaction()?;
                record(&tx, &why)?;
                let ev = feed_health(&tx, &n, Some(&why), at)?;
                tx.commit()?;
                Ok(ev)
            })
            .await?;
        self.publish(events);
        Ok(())
    }

    /// A feed's read committed: its events published and, when it added
    /// sending IPs to the discovered set, the sweeps rebuilt to ask them.
    pub(super) async fn feed_read(&self, events: Vec<Event>, added: bool) -> anyhow::Result<()> {
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
    let mut d = Discovery::start(c, cfg, at, DiscoverFrom::Dmarc)?;
    for s in senders(cfg, seen) {
        if s.status != SenderStatus::NotMonitored {
            continue;
        }
        let Ok(ip) = s.seen.ip.parse::<IpAddr>() else {
            continue;
        };
        let ip = crate::target::normalise_ip(ip);
        d.sender(Unmonitored {
            ip,
            domain: s.seen.domain.clone(),
            announced_as: s.seen.domain.clone(),
            summary: format!(
                "{ip} is sending for {} ({} messages, DMARC pass), not monitored",
                s.seen.domain, s.seen.messages
            ),
            details: serde_json::json!({
                "ip": ip.to_string(), "domain": s.seen.domain, "messages": s.seen.messages,
                "passed": s.seen.passed, "orgs": s.seen.orgs,
            }),
        })?;
    }
    d.finish()
}

/// A sending IP no target covers, as one feed saw it.
pub(super) struct Unmonitored {
    pub(super) ip: IpAddr,
    /// The domain it sends for, as shown.
    pub(super) domain: String,
    /// What it is announced once per (with the IP): the domain, or the feed kind.
    pub(super) announced_as: String,
    /// The event's summary, before ": added to the sweeps".
    pub(super) summary: String,
    /// The event's details (an object); `origin` and `discovered` are added.
    pub(super) details: serde_json::Value,
}

/// The one rule for sending IPs that no target covers, whichever feed saw
/// them: with `[discover] from` naming the feed, each is added to the sweeps
/// (bounded by `discover.max`), and each is announced once as
/// `unmonitored_sender`. One pass over one feed's senders, in the read's
/// transaction.
pub(super) struct Discovery<'c> {
    c: &'c rusqlite::Connection,
    at: i64,
    origin: DiscoverFrom,
    discover: bool,
    max: usize,
    found: Vec<Discovered>,
    added: bool,
    events: Vec<Event>,
}

impl<'c> Discovery<'c> {
    pub(super) fn start(
        c: &'c rusqlite::Connection,
        cfg: &Config,
        at: i64,
        origin: DiscoverFrom,
    ) -> Result<Self, store::StoreError> {
        Ok(Discovery {
            c,
            at,
            origin,
            discover: cfg.discover.from.contains(&origin),
            max: cfg.discover.max,
            found: store::get_state(c, &store::StateKey::Discovered)?.unwrap_or_default(),
            added: false,
            events: Vec::new(),
        })
    }

    pub(super) fn sender(&mut self, s: Unmonitored) -> Result<(), store::StoreError> {
        let ip = s.ip;
        let mut discovered = false;
        if self.discover && !self.found.iter().any(|d| d.ip == ip) {
            if self.found.len() < self.max {
                self.found.push(Discovered {
                    ip,
                    domain: s.domain.clone(),
                    origin: self.origin.as_str().into(),
                    since: self.at,
                });
                self.added = true;
                discovered = true;
            } else {
                tracing::warn!(ip = %ip, max = self.max, "discover.max reached: sending IP not added to the sweeps");
            }
        }
        let key = store::StateKey::SenderAnnounced {
            ip: ip.to_string(),
            domain: s.announced_as,
        };
        if store::get_state::<bool>(self.c, &key)?.unwrap_or(false) {
            return Ok(());
        }
        store::put_state(self.c, &key, &true, self.at)?;
        let mut details = s.details;
        if let Some(o) = details.as_object_mut() {
            o.insert("origin".into(), self.origin.as_str().into());
            o.insert("discovered".into(), discovered.into());
        }
        let summary = if discovered {
            format!("{}: added to the sweeps", s.summary)
        } else {
            s.summary
        };
        let e = Event::new(
            EventKind::UnmonitoredSender,
            self.at,
            Subject::Target {
                target: ip.to_string(),
            },
            summary,
            details,
        );
        self.events.push(store::insert_event(self.c, &e)?);
        Ok(())
    }

    /// The events raised, and whether the discovered set grew (then stored).
    pub(super) fn finish(self) -> Result<(Vec<Event>, bool), store::StoreError> {
        if self.added {
            store::put_state(self.c, &store::StateKey::Discovered, &self.found, self.at)?;
        }
        Ok((self.events, self.added))
    }
}

/// The end of every good feed read's transaction: `feed_recovered` when the
/// feed had failed, the sending IPs it reveals announced (and discovered) by
/// `announce`, then the commit. Returns the events and whether the
/// discovered set grew.
pub(super) fn commit_read<F>(
    tx: rusqlite::Transaction<'_>,
    name: &str,
    at: i64,
    announce: F,
) -> Result<(Vec<Event>, bool), store::StoreError>
where
    F: FnOnce(&rusqlite::Connection) -> Result<(Vec<Event>, bool), store::StoreError>,
{
    let mut events = feed_health(&tx, name, None, at)?;
    let (ev, added) = announce(&tx)?;
    events.extend(ev);
    tx.commit()?;
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
