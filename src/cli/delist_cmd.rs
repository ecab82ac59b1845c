//! `rblwatch delist TARGET LIST --note ...`: records that delisting was
//! requested. With the daemon running it goes through the daemon's API (the
//! daemon records it and re-checks the pair at once); otherwise it is written
//! to the database, and the next sweep re-checks the pair.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use super::text::terminal_safe;
use crate::config::{Config, WebAccess};
use crate::store::{self, DelistRequest, DelistVia, NewDelistRequest, Store};
use crate::target::Target;
use crate::time::{fmt_duration, fmt_time, now};

/// Arguments of `rblwatch delist`.
#[derive(Debug, Args)]
pub struct DelistArgs {
    /// The listed target (IP or domain), or a listed part of a range target
    /// (`198.51.104.0/22`, `198.51.100.0-198.51.100.76`), as on the status page.
    pub target: String,
    /// The list's id, as on the status page.
    pub list: String,
    /// What was fixed, a ticket number… (kept with the request).
    #[arg(long, default_value = "")]
    pub note: String,
    /// Who asked. Defaults to $USER.
    #[arg(long)]
    pub by: Option<String>,
    /// Print the recorded request as JSON.
    #[arg(long)]
    pub json: bool,
}

pub(super) async fn run(cfg_path: Option<&Path>, a: DelistArgs) -> anyhow::Result<ExitCode> {
    let cfg = super::load_config(cfg_path, true)?;
    // a single target, or a listed part of a range checked whole (its pair's
    // key as the status page shows it: `198.51.104.0/22`, `a-b`)
    let target = match Target::parse(&a.target) {
        Ok(t) => Named::Single(t),
        Err(e) => match crate::prefixes::piece_of(&a.target, &cfg.targets) {
            Some(p) => Named::Part(p.key),
            None => {
                eprintln!("rblwatch: {e}");
                return Ok(ExitCode::from(2));
            }
        },
    };
    let by =
        a.by.clone()
            .or_else(|| std::env::var("USER").ok())
            .or_else(|| std::env::var("LOGNAME").ok())
            .filter(|b| !b.trim().is_empty())
            .unwrap_or_else(|| "cli".into());
    let (outcome, via_daemon) = match through_daemon(&cfg, &target, &a, &by).await {
        Some(r) => (r?, true),
        None => (directly(&cfg, &target, &a, &by).await?, false),
    };
    let d = match outcome {
        Ok(d) => d,
        Err(why) => {
            eprintln!("rblwatch: {}", terminal_safe(&why, 300));
            return Ok(ExitCode::from(1));
        }
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&d)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "delisting of {} from {} recorded (request #{} by {} at {}); expected gone by {} ({} after the request)",
        d.target,
        d.list,
        d.id,
        terminal_safe(&d.requested_by, 100),
        fmt_time(d.requested_at),
        fmt_time(d.expected_by),
        fmt_duration(std::time::Duration::from_secs(
            (d.expected_by - d.requested_at).max(0) as u64
        )),
    );
    if via_daemon {
        println!(
            "the daemon re-checks the pair now; a reminder follows if it is still listed then"
        );
    } else {
        println!("the daemon was not reachable: the pair is re-checked at the next sweep");
    }
    Ok(ExitCode::SUCCESS)
}

/// What the request names.
enum Named {
    /// A target of its own.
    Single(Target),
    /// A part of a range target, by its pair's key.
    Part(String),
}

impl std::fmt::Display for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Named::Single(t) => t.fmt(f),
            Named::Part(k) => f.write_str(k),
        }
    }
}

/// Through the running daemon's API; `None` when no daemon answers there.
async fn through_daemon(
    cfg: &Config,
    target: &Named,
    a: &DelistArgs,
    by: &str,
) -> Option<anyhow::Result<Result<DelistRequest, String>>> {
    if !cfg.web.enabled {
        return None;
    }
    let mut addr = cfg.web.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .ok()?;
    let mut req = client
        .post(format!("http://{addr}/api/v1/delistings"))
        .json(&serde_json::json!({ "target": target.to_string(), "list": a.list, "by": by, "note": a.note }));
    if let WebAccess::Token(t) = &cfg.web.access {
        req = req.bearer_auth(t.expose());
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) if e.is_connect() => return None,
        Err(e) => return Some(Err(anyhow::anyhow!("the daemon at {addr}: {e}"))),
    };
    let status = resp.status();
    let body = match resp.text().await {
        Ok(b) => b,
        Err(e) => return Some(Err(anyhow::anyhow!("the daemon at {addr}: {e}"))),
    };
    Some(Ok(if status.is_success() {
        match serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| serde_json::from_value::<RequestJson>(v["request"].clone()).ok())
        {
            Some(r) => Ok(r.into()),
            None => {
                return Some(Err(anyhow::anyhow!(
                    "the daemon at {addr} answered {body:?}"
                )))
            }
        }
    } else {
        Err(format!("{} (the daemon answered {status})", body.trim()))
    }))
}

/// Written to the database (no daemon reachable).
async fn directly(
    cfg: &Config,
    target: &Named,
    a: &DelistArgs,
    by: &str,
) -> anyhow::Result<Result<DelistRequest, String>> {
    // (a part was found inside a configured range already)
    if let Named::Single(t) = target {
        if !cfg.targets.iter().any(|c| c.spec.contains(t)) {
            return Ok(Err(format!("{target} is not a monitored target")));
        }
    }
    let (lists, _) = crate::engine::active_lists(cfg, cfg.catalog(), None)?;
    let Some(l) = lists.iter().find(|l| l.def.id == a.list) else {
        return Ok(Err(format!("no list {:?} in use", a.list)));
    };
    let def = l.def.clone();
    let r = NewDelistRequest {
        target: target.to_string(),
        list: def.id.clone(),
        at: now(),
        by: by.chars().filter(|c| !c.is_control()).take(100).collect(),
        via: DelistVia::Cli,
        note: a
            .note
            .chars()
            .filter(|c| !c.is_control() || *c == '\n')
            .take(1000)
            .collect(),
        wait: store::delist_wait(def.expiry),
    };
    let st = Store::open(&cfg.daemon.database)?;
    let done = st
        .call(move |c| {
            store::commit_delist_request(c, &r, |d| {
                crate::daemon::delist_requested_event(d, Some(&def))
            })
        })
        .await?;
    Ok(match done {
        Some((d, _)) => Ok(d),
        None => Err(format!(
            "{target} is not listed on {}: there is nothing to delist",
            a.list
        )),
    })
}

/// A request as the API returns it.
#[derive(Debug, serde::Deserialize)]
struct RequestJson {
    id: i64,
    target: String,
    list: String,
    requested_at: i64,
    requested_by: String,
    via: String,
    note: String,
    listed_since: Option<i64>,
    expected_by: i64,
    reminded_at: Option<i64>,
    delisted_at: Option<i64>,
    time_to_delist: Option<i64>,
}

impl From<RequestJson> for DelistRequest {
    fn from(r: RequestJson) -> Self {
        DelistRequest {
            id: r.id,
            target: r.target,
            list: r.list,
            requested_at: r.requested_at,
            requested_by: r.requested_by,
            via: DelistVia::parse(&r.via).unwrap_or(DelistVia::Api),
            note: r.note,
            listed_since: r.listed_since,
            expected_by: r.expected_by,
            reminded_at: r.reminded_at,
            delisted_at: r.delisted_at,
            time_to_delist: r.time_to_delist,
        }
    }
}
