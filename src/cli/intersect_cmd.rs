//! `rblwatch intersect`: which parts of a range the mirrored lists list.

use std::path::Path;
use std::process::ExitCode;

use crate::engine;
use crate::verdict::Verdict;

/// Arguments of `intersect`.
#[derive(Debug, clap::Args)]
pub struct IntersectArgs {
    /// Ranges (IPv4 up to /8, IPv6 up to /32), e.g. 198.51.96.0/20 2001:db8:1200::/40.
    #[arg(required = true)]
    pub ranges: Vec<String>,
    /// Only these lists (comma-separated ids).
    #[arg(long, value_delimiter = ',')]
    pub lists: Option<Vec<String>>,
    /// Print JSON instead of lines.
    #[arg(long)]
    pub json: bool,
}

/// Checks each range against every mirrored list by intersection (no queries):
/// every listing overlapping it, with the overlapping pieces. Exit 1 when any
/// part is listed or a mirror could not answer.
pub(super) async fn run(cfg_path: Option<&Path>, a: IntersectArgs) -> anyhow::Result<ExitCode> {
    let cfg = super::load_config(cfg_path, false)?;
    let mut nets = Vec::new();
    for r in &a.ranges {
        let n: ipnet::IpNet = r
            .trim()
            .parse()
            .map_err(|e| anyhow::anyhow!("{r:?} is not a CIDR range: {e}"))?;
        nets.push(n.trunc());
    }
    let (engine, _) = engine::from_config(
        &cfg,
        a.lists.as_deref(),
        Some(vec![([127, 0, 0, 1], 53).into()]),
    )
    .await?;
    if engine.lists().iter().all(|l| l.mirror().is_none()) {
        anyhow::bail!(
            "no list is answered from a mirror: set [lists.override.<id>] mirror = \"/path\""
        );
    }
    // loads the mirrors (the DNS lists' health is not needed here)
    for l in engine.lists() {
        if let Some(m) = l.mirror() {
            let m = m.clone();
            tokio::task::spawn_blocking(move || m.refresh()).await?;
        }
    }
    let mut bad = false;
    let mut out = Vec::new();
    for n in &nets {
        for (l, res) in engine.lists().iter().zip(engine.intersect(n)) {
            let Some(res) = res else { continue };
            match res {
                Err(why) => {
                    bad = true;
                    if a.json {
                        out.push(serde_json::json!({"range": n.to_string(), "list": l.def.id, "error": why}));
                    } else {
                        println!("{n} {}: not checked: {why}", l.def.id);
                    }
                }
                Ok(pieces) => {
                    bad |= pieces.iter().any(|(_, v)| !matches!(v, Verdict::Clear));
                    if a.json {
                        let p: Vec<_> = pieces
                            .iter()
                            .map(|(o, v)| serde_json::json!({"range": o.range(), "first": o.first, "last": o.last, "cidrs": o.cidrs, "txt": o.txt, "verdict": v}))
                            .collect();
                        out.push(serde_json::json!({"range": n.to_string(), "list": l.def.id, "listed": p}));
                    } else if pieces.is_empty() {
                        println!("{n} {}: nothing listed", l.def.id);
                    } else {
                        for (o, v) in &pieces {
                            let txt = o
                                .txt
                                .first()
                                .map(|t| {
                                    format!(" \"{}\"", crate::cli::text::terminal_safe(t, 200))
                                })
                                .unwrap_or_default();
                            println!(
                                "{n} {}: {} {}: {}{txt}",
                                l.def.id,
                                o.range(),
                                v.kind().as_str(),
                                v.meaning()
                            );
                        }
                    }
                }
            }
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(if bad {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
