//! Microsoft SNDS as a daemon job: fetch the IP status export and the data
//! export of the last few days (yesterday first: SNDS's data lags a day),
//! store them per IP and day (a re-fetch replaces a day: idempotent), and
//! announce the IPs SNDS sees sending that no target covers
//! (`unmonitored_sender`; added to the sweeps with `[discover] from =
//! ["snds"]`). The joined verdict reads the stored refusals at the next
//! assessment. Any failure (timeout, key refused, 429, a body over the cap,
//! an export not in SNDS's format) stores nothing, raises `feed_failed` once
//! (then `feed_recovered`) and stops nothing else; a 429's Retry-After is
//! waited out before the next request.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::feeds::{commit_read, Discovery, Unmonitored};
use super::Daemon;
use crate::config::{Config, DiscoverFrom, SndsConf};
use crate::event::Event;
use crate::feeds::senders::{day_of, window_start};
use crate::feeds::snds::fetch::{self, Export, FetchError};
use crate::feeds::snds::{self, DayRow, IpStatus};
use crate::store;
use crate::target::Target;
use crate::time::now;

/// Per feed, when a 429 allows the next request (unix seconds). In memory:
/// a restart asks again, at most once, and hears the 429 again.
static RETRY_AT: Mutex<BTreeMap<String, i64>> = Mutex::new(BTreeMap::new());

fn retry_at(feed: &str) -> Option<i64> {
    match RETRY_AT.lock() {
        Ok(m) => m.get(feed).copied(),
        Err(p) => p.into_inner().get(feed).copied(),
    }
}

fn set_retry_at(feed: &str, at: Option<i64>) {
    let mut m = match RETRY_AT.lock() {
        Ok(m) => m,
        Err(p) => p.into_inner(),
    };
    match at {
        Some(t) => m.insert(feed.to_string(), t),
        None => m.remove(feed),
    };
}

type Fetched = (Vec<IpStatus>, Vec<(String, Vec<DayRow>)>);

/// Both exports: the IP status, then each day's data (a day with no data is no rows).
async fn fetch_all(conf: &SndsConf, days: &[String]) -> Result<Fetched, FetchError> {
    let client = fetch::client(conf)?;
    let body = fetch::get(&client, conf, Export::IpStatus, None).await?;
    let status = parse(body, |b| snds::parse_ip_status(&b), "IP status").await?;
    let mut out = Vec::new();
    for day in days {
        let date = snds::date_param(day);
        let body = fetch::get(&client, conf, Export::Data, date.as_deref()).await?;
        out.push((
            day.clone(),
            parse(body, |b| snds::parse_data(&b), "data").await?,
        ));
    }
    Ok((status, out))
}

/// Parses a body off the async workers.
async fn parse<T: Send + 'static>(
    body: Vec<u8>,
    f: impl FnOnce(Vec<u8>) -> Result<T, snds::CsvError> + Send + 'static,
    export: &'static str,
) -> Result<T, FetchError> {
    match tokio::task::spawn_blocking(move || f(body)).await {
        Ok(r) => r.map_err(|e| FetchError::Format {
            export,
            why: e.to_string(),
        }),
        Err(e) => Err(FetchError::Format {
            export,
            why: format!("parser stopped: {e}"),
        }),
    }
}

impl Daemon {
    /// Reads the named SNDS feed once.
    pub async fn read_snds(self: Arc<Self>, name: &str) -> anyhow::Result<()> {
        let rt = self.runtime();
        let Some(conf) = rt.cfg.snds.iter().find(|f| f.name == name).cloned() else {
            return Ok(()); // removed by a reload since the tick was sent
        };
        let at = now();
        if let Some(t) = retry_at(name).filter(|t| *t > at) {
            tracing::debug!(feed = %name, retry_in = t - at, "SNDS asked us to wait (429): not fetched");
            return Ok(());
        }
        let days: Vec<String> = (1..=i64::from(conf.days))
            .map(|d| day_of(at - d * 86_400))
            .collect();
        let fetched = fetch_all(&conf, &days).await;
        let at = now();
        let (status, rows) = match fetched {
            Ok(f) => {
                set_retry_at(name, None);
                f
            }
            Err(e) => {
                if let FetchError::RateLimited(after) = &e {
                    let wait = after.unwrap_or(Duration::from_secs(3600));
                    set_retry_at(name, Some(at + wait.as_secs() as i64));
                }
                // the error's words never hold the URL (nor the key in it)
                tracing::warn!(feed = %name, kind = e.kind(), error = %e, "feed failed");
                return self
                    .feed_failed(name, e.to_string(), at, |_, _| Ok(()))
                    .await;
            }
        };
        let cfg = rt.cfg.clone();
        let n = name.to_string();
        let (events, added) = self
            .store
            .call(move |c| {
                let tx = c.transaction()?;
                store::commit_snds(&tx, &n, at, &status, &rows)?;
                let day_rows: Vec<usize> = rows.iter().map(|(_, r)| r.len()).collect();
                tracing::info!(
                    feed = %n,
                    ranges = status.len(),
                    blocked = status.iter().filter(|s| s.blocked).count(),
                    rows = ?day_rows,
                    "SNDS read"
                );
                commit_read(tx, &n, at, |c| announce_snds_senders(c, &cfg, at))
            })
            .await?;
        self.feed_read(events, added).await
    }
}

/// Raises `unmonitored_sender` once per IP SNDS sees sending (within
/// `[discover] window`) that no target covers, and with `[discover] from =
/// ["snds"]` keeps it (bounded by `discover.max`). Returns the events and
/// whether the discovered set grew.
fn announce_snds_senders(
    c: &rusqlite::Connection,
    cfg: &Config,
    at: i64,
) -> Result<(Vec<Event>, bool), store::StoreError> {
    let seen = store::snds_senders(c, &window_start(cfg, at))?;
    let mut d = Discovery::start(c, cfg, at, DiscoverFrom::Snds)?;
    for (ip, recipients, last_day, from_domain) in seen {
        let Ok(ip) = ip.parse::<IpAddr>() else {
            continue;
        };
        let ip = crate::target::normalise_ip(ip);
        if cfg.targets.iter().any(|t| t.spec.contains(&Target::Ip(ip))) {
            continue;
        }
        let domain = if from_domain.is_empty() {
            "an unknown domain".to_string()
        } else {
            snds::clean_text(&from_domain)
        };
        d.sender(Unmonitored {
            ip,
            domain: domain.clone(),
            announced_as: "snds".into(),
            summary: format!(
                "{ip} is sending to Microsoft ({recipients} recipients in SNDS, last on {last_day}, as {domain}), not monitored"
            ),
            details: serde_json::json!({
                "ip": ip.to_string(), "domain": domain, "messages": recipients, "last_day": last_day,
            }),
        })?;
    }
    d.finish()
}
