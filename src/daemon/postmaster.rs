//! Google Postmaster Tools as a daemon job: read every domain's compliance
//! status and daily figures, store them per domain and day, and announce a
//! Gmail spam rate at or over Google's thresholds (`gmail_spam_rate`, then
//! `gmail_spam_rate_cleared`). A read that fails raises `feed_failed` once
//! (then `feed_recovered`), like every feed; a 429 defers the feed until its
//! Retry-After has passed. Nothing else waits on it.

use std::sync::Arc;

use super::feeds::feed_health;
use super::Daemon;
use crate::event::Event;
use crate::feeds::postmaster::client::{self, Outcome};
use crate::feeds::postmaster::{spam_event, standing, LastRead, SpamStanding, STANDING_DAYS};
use crate::store;
use crate::time::now;

impl Daemon {
    /// Reads the named Postmaster Tools feed once.
    pub async fn read_postmaster(self: Arc<Self>, name: &str) -> anyhow::Result<()> {
        let rt = self.runtime();
        let Some(conf) = rt.cfg.postmaster.iter().find(|f| f.name == name).cloned() else {
            return Ok(()); // removed by a reload since the tick was sent
        };
        let at = now();
        let today = chrono::DateTime::from_timestamp(at, 0)
            .unwrap_or_default()
            .date_naive();
        let since = today
            .checked_sub_days(chrono::Days::new(STANDING_DAYS))
            .unwrap_or(today)
            .to_string();
        let n = name.to_string();
        let read = match client::read(&conf, today, at).await {
            Ok(Outcome::Deferred { until }) => {
                tracing::debug!(feed = %name, wait = until - at, "Postmaster Tools asked to wait (429): not asked until then");
                return Ok(());
            }
            Ok(Outcome::Read(r)) => r,
            Err(e) => {
                tracing::warn!(feed = %name, error = %e, "feed failed");
                // the feed's last read says why, on /gmail
                let key = store::StateKey::PostmasterRead(n);
                return self
                    .feed_failed(name, e.to_string(), at, move |c, why| {
                        let last = LastRead {
                            at,
                            error: Some(why.to_string()),
                        };
                        store::put_state(c, &key, &last, at)
                    })
                    .await;
            }
        };
        for r in &read {
            let quiet = r.days.iter().filter(|d| d.is_empty()).count();
            tracing::info!(
                feed = %name, domain = %r.domain, days = r.days.len(), quiet,
                needs_work = ?r.compliance.needs_work(),
                "Postmaster Tools read ({quiet} day(s) without figures: not enough volume)"
            );
        }
        let domains = conf.domains.clone();
        let events = self
            .store
            .call(move |c| {
                let tx = c.transaction()?;
                store::put_postmaster(&tx, &n, at, &read)?;
                let last = LastRead { at, error: None };
                store::put_state(&tx, &store::StateKey::PostmasterRead(n.clone()), &last, at)?;
                let mut events: Vec<Event> = feed_health(&tx, &n, None, at)?;
                for d in &domains {
                    let days = store::postmaster_days(&tx, d, &since)?;
                    // no figure within the window: not enough volume, nothing to announce
                    let Some(now) = standing(d, &days) else {
                        continue;
                    };
                    let key = store::StateKey::GmailSpam(d.clone());
                    let last: Option<SpamStanding> = store::get_state(&tx, &key)?;
                    if let Some(e) = spam_event(&n, last.as_ref(), &now, at) {
                        events.push(store::insert_event(&tx, &e)?);
                    }
                    store::put_state(&tx, &key, &now, at)?;
                }
                tx.commit()?;
                Ok(events)
            })
            .await?;
        self.publish(events);
        Ok(())
    }
}
