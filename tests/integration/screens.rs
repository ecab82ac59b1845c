//! The pages in a real headless Chromium, in every verdict state, at a
//! desktop (1280 px) and a phone (390 px) width: screenshots land in
//! `test-artifacts/`, and the tests check the verdict, that nothing scrolls
//! sideways, the chart axes, and that remote text stays inert.
//!
//! Each state is a real SQLite database written through the store's own
//! functions and served over real HTTP by the real router; the daemon behind
//! the pages is a fixed [`Live`] (the states where listings hurt mail or the
//! resolver is unusable come from the daemon, not from the database).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rblwatch::evaluator::{ListingDetails, PairState};
use rblwatch::event::{Event, EventKind, Subject};
use rblwatch::health::ListHealth;
use rblwatch::store::{self, PairUpdate, PeriodChange, SweepCommit};
use rblwatch::web::{Impact, Live, ResolverHealth, ResolverStatus, Snapshot};

use crate::web::Browser;

/// The TXT record an attacker controls (also used by the rbldnsd fixture).
const EVIL_TXT: &str =
    "<script>window.pwned=1</script><img src=x onerror=\"document.title='pwned'\"><b>bold</b>";

const OPERATORS: [(&str, usize); 12] = [
    ("spamhaus", 5),
    ("spamcop", 1),
    ("barracudacentral", 2),
    ("uceprotect", 3),
    ("mailspike", 4),
    ("spamrats", 4),
    ("spameatingmonkey", 4),
    ("dronebl", 2),
    ("psbl", 1),
    ("nordspam", 3),
    ("surbl", 5),
    ("abusix", 6),
];

/// 40 lists over 12 operators; each operator's last list is a domain list.
fn catalog(dir: &Path) -> Vec<String> {
    let mut text = String::new();
    let mut ids = Vec::new();
    for (op, n) in OPERATORS {
        for i in 0..n {
            let id = format!("{op}-{}", ["zen", "bl", "xbl", "dbl", "rep", "all"][i % 6]);
            let kind = if i + 1 == n && n > 2 {
                "domain"
            } else {
                "ipv4"
            };
            text.push_str(&format!(
                "[[list]]\nid = \"{id}\"\nname = \"{} list {i}\"\nzone = \"l{i}.{op}.test\"\nkind = \"{kind}\"\ndelist = \"https://{op}.test/remove?q={{target}}\"\n",
                op.to_uppercase()
            ));
            if op == "spamcop" {
                text.push_str("expiry = \"24h\"\nexpiry_note = \"listings drop automatically about 24 hours after reports stop\"\n");
            }
            text.push('\n');
            ids.push(id);
        }
    }
    std::fs::write(dir.join("lists.toml"), text).unwrap();
    ids
}

/// The daemon as the pages see it: fixed answers.
struct FixedLive {
    snapshot: Snapshot,
    resolver: Option<ResolverHealth>,
    impact: HashMap<(String, String), Impact>,
}

impl Live for FixedLive {
    fn snapshot(&self) -> Snapshot {
        self.snapshot.clone()
    }
    fn store_version(&self) -> u64 {
        1
    }
    fn write_health(&self) -> store::WriteHealth {
        store::WriteHealth {
            last_commit: rblwatch::time::now(),
            failing: None,
            dead: false,
            lost: None,
        }
    }
    fn source_failures(&self) -> Vec<(String, u64)> {
        Vec::new()
    }
    fn check_now(&self) -> bool {
        false
    }
    fn resolver(&self) -> Option<ResolverHealth> {
        self.resolver.clone()
    }
    fn impact(&self, target: &str, list: &str, _since: i64) -> Impact {
        self.impact
            .get(&(target.to_string(), list.to_string()))
            .copied()
            .unwrap_or(Impact::Unknown)
    }
}

/// A status page serving one state; stopped on drop.
struct Site {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AllClear,
    ListedRejecting,
    ListedNoImpact,
    CannotTell,
    BackscatterRisk,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::AllClear => "all_clear",
            State::ListedRejecting => "listed_rejecting",
            State::ListedNoImpact => "listed_no_impact",
            State::CannotTell => "cannot_tell",
            State::BackscatterRisk => "backscatter_risk",
        }
    }
}

fn details(list: &str, txt: &str) -> Arc<ListingDetails> {
    Arc::new(ListingDetails {
        codes: vec!["127.0.0.2".parse().unwrap()],
        meanings: vec![format!("listed by {list}")],
        txt: vec![txt.to_string()],
        delist: None,
        zone: String::new(),
        list_name: list.to_string(),
    })
}

/// Builds the database and serves it.
fn site(state: State) -> Site {
    site_with(state, None)
}

/// The same, with the daemon's diagnosis of the resolver.
fn site_with(state: State, resolver: Option<ResolverHealth>) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let lists_dir = dir.path().join("lists.d");
    std::fs::create_dir(&lists_dir).unwrap();
    let ids = catalog(&lists_dir);
    let maillog = dir.path().join("mail.log");
    std::fs::write(&maillog, "").unwrap();
    // few targets for the all-clear state (lists become the rows), a pool of 32 otherwise (every target a row)
    let targets = if state == State::AllClear {
        "[[targets]]\ntarget = \"192.0.2.1\"\nlabel = \"mx1 <outbound>\"\n\n[[targets]]\ntarget = \"192.0.2.2\"\nlabel = \"mx2\"\n\n[[targets]]\ntarget = \"example.com\"\n"
    } else {
        "[[targets]]\ntarget = \"192.0.2.1\"\nlabel = \"mx1 <outbound>\"\n\n[[targets]]\ntarget = \"198.51.100.0/27\"\nlabel = \"outbound pool\"\n\n[[targets]]\ntarget = \"example.com\"\n"
    };
    let cfg_text = format!(
        r#"[resolver]
nameservers = ["127.0.0.1:9"]

[lists]
dirs = [{lists:?}]
use = [{use_}]

{targets}
[[sources]]
name = "mx"
kind = "postfix"
command = ["true"]

[[sources]]
name = "mxlog"
kind = "postfix_log"
path = {maillog:?}

[[sources]]
name = "fleet"
kind = "postfix"
command = ["true"]

[[sources]]
name = "load"
kind = "command"
command = ["true"]

[[spikes]]
metric = "mx.queue_depth"
kind = "queue_spike"
above = 60

[[spikes]]
metric = "mxlog.ndr_generated"
kind = "ndr_spike"
above = 25

[daemon]
database = "rblwatch.db"

[web]
refresh = "0s"
"#,
        lists = lists_dir.display().to_string(),
        use_ = ids
            .iter()
            .map(|i| format!("{i:?}"))
            .collect::<Vec<_>>()
            .join(", "),
        maillog = maillog.display().to_string(),
    );
    let cfg_path = dir.path().join("rblwatch.toml");
    std::fs::write(&cfg_path, cfg_text).unwrap();
    let cfg = rblwatch::config::Config::load(&cfg_path).unwrap();
    let db_path = cfg.daemon.database.clone();
    populate(state, &db_path, &ids);
    // what the daemon keeps of its live diagnosis, for readers without it (rblwatch status)
    persist_live(state, &db_path, resolver.as_ref());

    let mut impact = HashMap::new();
    if state == State::ListedRejecting {
        impact.insert(
            ("192.0.2.1".to_string(), "spamhaus-zen".to_string()),
            Impact::Rejecting,
        );
    }
    if state == State::ListedNoImpact {
        impact.insert(
            ("192.0.2.1".to_string(), "spamhaus-zen".to_string()),
            Impact::NoneSeen,
        );
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let (engine, _) = rblwatch::engine::from_config(&cfg, None, None)
                .await
                .unwrap();
            let live = Arc::new(FixedLive {
                snapshot: Snapshot {
                    cfg: Arc::new(cfg),
                    engine: Arc::new(engine),
                },
                resolver,
                impact,
            });
            let state = rblwatch::web::state(live, &db_path).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            ready_tx.send(()).unwrap();
            rblwatch::web::serve(listener, state, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
    });
    ready_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    Site {
        base,
        stop: Some(stop),
        thread: Some(thread),
        _dir: dir,
    }
}

/// Stores the daemon's diagnosis of the resolver and the receivers' impact as
/// the daemon would (the `state` table), matching what [`FixedLive`] answers.
fn persist_live(state: State, db: &Path, resolver: Option<&ResolverHealth>) {
    use rblwatch::impact::{Assessment, ImpactState, ListingImpact};
    let c = store::open_connection(db).unwrap();
    let now = rblwatch::time::now();
    if let Some(r) = resolver {
        store::put_state(&c, &store::StateKey::ResolverHealth, r, now).unwrap();
    }
    let cited = |impact| ListingImpact {
        target: "192.0.2.1".into(),
        list: "spamhaus-zen".into(),
        list_name: "SPAMHAUS list 0".into(),
        impact,
        severity: rblwatch::event::Severity::Critical,
        receivers: vec!["microsoft".into()],
        count: 3,
        text: "Microsoft refuses mail citing spamhaus-zen".into(),
        replies: vec![],
        delist: None,
    };
    let listings = match state {
        State::ListedRejecting => vec![cited(ImpactState::Rejecting)],
        State::ListedNoImpact => vec![],
        _ => return,
    };
    let a = Assessment {
        at: now,
        window_secs: 3600,
        threshold: 1,
        listings,
        listed: 1,
        receivers: vec![],
        backscatter: vec![],
        receivers_omitted: 0,
    };
    store::put_state(&c, &store::StateKey::ImpactAssessment, &a, now).unwrap();
}

/// Issue 19: the overview, `/api/v1/status`, `/metrics` (`rblwatch_verdict`)
/// and `rblwatch status --json` are views of one status model and give the
/// same headline verdict for the same database, in every verdict state.
#[test]
fn the_page_the_api_metrics_and_the_cli_give_one_verdict_in_every_state() {
    let unusable = ResolverHealth {
        status: ResolverStatus::Unusable,
        why: "every query REFUSED by 203.0.113.53".into(),
        fix: "run your own recursive resolver".into(),
    };
    let cases = [
        (State::AllClear, None),
        (State::ListedRejecting, None),
        (State::ListedNoImpact, None),
        (State::CannotTell, None),
        (State::BackscatterRisk, None),
        (State::AllClear, Some(unusable)),
    ];
    for (state, resolver) in cases {
        let expected = if resolver.is_some() {
            "cannot_tell"
        } else {
            state.name()
        };
        let s = site_with(state, resolver);
        let port: u16 = s.base.rsplit(':').next().unwrap().parse().unwrap();
        let api = crate::util::http_json(port, "/api/v1/status");
        assert_eq!(api["verdict"]["kind"], expected, "API in {state:?}");
        let (_, page) = crate::util::http_get(port, "/");
        let text = api["verdict"]["text"]
            .as_str()
            .unwrap()
            .replace('\'', "&#x27;");
        assert!(page.contains(&text), "page in {state:?}: no {text:?}");
        let (_, metrics) = crate::util::http_get(port, "/metrics");
        let on: Vec<&str> = metrics
            .lines()
            .filter(|l| l.starts_with("rblwatch_verdict{") && l.ends_with(" 1"))
            .collect();
        assert_eq!(
            on,
            vec![format!("rblwatch_verdict{{kind=\"{expected}\"}} 1").as_str()],
            "/metrics in {state:?}"
        );
        let cfg = s._dir.path().join("rblwatch.toml");
        let o = crate::util::rblwatch(&["status", "--json", "-C", cfg.to_str().unwrap()]);
        assert!(o.status.success(), "{}", crate::util::stderr(&o));
        let cli: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            cli["verdict"]["kind"], expected,
            "rblwatch status in {state:?}"
        );
        assert_eq!(cli["verdict"]["text"], api["verdict"]["text"], "{state:?}");
        // issue 22: what to do follows each listing's delisting state (spamcop-zen's was requested)
        if matches!(state, State::ListedRejecting | State::ListedNoImpact) {
            let todo: Vec<String> = api["verdict"]["todo"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["text"].as_str().unwrap().to_string())
                .collect();
            assert!(
                !todo
                    .iter()
                    .any(|t| t.contains("request delisting from") && t.contains("spamcop-zen")),
                "{state:?}: {todo:?}"
            );
            assert!(
                todo.iter().any(|t| t.contains("request delisting from")
                    && t.contains("spamhaus-zen")
                    && t.contains("uceprotect-zen")),
                "{state:?}: every listing not yet requested is named: {todo:?}"
            );
            assert!(
                todo.iter()
                    .any(|t| t.contains("198.51.100.7") && t.contains("mailspike-zen")),
                "{state:?}: {todo:?}"
            );
            assert!(
                // requested 30 hours ago, the list's usual time 24 hours: a follow-up, not a new request
                todo.iter()
                    .any(|t| t.starts_with("Follow up with spamcop-zen for 192.0.2.1")),
                "{state:?}: {todo:?}"
            );
            assert_eq!(cli["verdict"]["todo"], api["verdict"]["todo"]);
            let page_todo = page.replace("&#x27;", "'").replace("&quot;", "\"");
            assert!(
                page_todo.contains("Follow up with spamcop-zen for 192.0.2.1"),
                "{state:?}"
            );
        }
    }
}

/// Writes the state's history through the store's functions.
fn populate(state: State, db: &Path, ids: &[String]) {
    let mut c = store::open_connection(db).unwrap();
    let now = rblwatch::time::now();
    let (h, d) = (3600, 86_400);
    let dead = |id: &str| ListHealth::Dead {
        why: format!("{id}: 127.0.0.2 is not listed (NXDOMAIN)"),
    };
    let health: Vec<(String, ListHealth)> = ids
        .iter()
        .map(|id| {
            let hl = match state {
                State::CannotTell => dead(id),
                _ if id == "psbl-zen" => dead(id),
                _ if id == "dronebl-bl" => ListHealth::Blocked {
                    why: "127.255.255.254: query through a public resolver".into(),
                },
                _ => ListHealth::Healthy,
            };
            (id.clone(), hl)
        })
        .collect();
    let mut pairs = Vec::new();
    let mut periods = Vec::new();
    let mut events = Vec::new();
    let mut listed = |t: &str, l: &str, since: i64, txt: &str, st: PairState| {
        let det = details(l, txt);
        pairs.push(PairUpdate {
            target: t.into(),
            list: l.into(),
            state: st,
            since,
            details: det.clone(),
        });
        if st.is_listed() {
            periods.push(PeriodChange::Open {
                target: t.into(),
                list: l.into(),
                at: since,
                details: det,
                baseline: false,
            });
        }
    };
    if matches!(state, State::ListedRejecting | State::ListedNoImpact) {
        listed(
            "192.0.2.1",
            "spamhaus-zen",
            now - 5 * h,
            "Listed in SBL: see https://www.spamhaus.test/sbl/query/SBL1",
            PairState::Listed,
        );
        listed(
            "192.0.2.1",
            "spamcop-zen",
            now - 2 * d,
            EVIL_TXT,
            PairState::Listed,
        );
        listed(
            "192.0.2.1",
            "uceprotect-zen",
            now - 20 * h,
            "Net 192.0.2.0/24 listed in UCEPROTECT level 1",
            PairState::Clearing { seen: 1 },
        );
        listed(
            "198.51.100.7",
            "mailspike-zen",
            now - 9 * h,
            "Mailspike: bad reputation",
            PairState::Listed,
        );
        listed(
            "198.51.100.7",
            "abusix-zen",
            now - 3 * h,
            "abusix: spam trap hit",
            PairState::Listed,
        );
        listed(
            "198.51.100.9",
            "spamrats-zen",
            now - h,
            "RATS-Spam",
            PairState::Suspected { seen: 1 },
        );
        // .10 beside .9: text order would put it first
        listed(
            "198.51.100.10",
            "spamrats-zen",
            now - h,
            "RATS-Spam",
            PairState::Suspected { seen: 1 },
        );
        events.push(Event::new(
            EventKind::Listed,
            now - 5 * h,
            Subject::pair("192.0.2.1", "spamhaus-zen"),
            format!("192.0.2.1 is listed on SPAMHAUS list 0 ({EVIL_TXT})"),
            serde_json::json!({}),
        ));
    }
    if matches!(state, State::ListedRejecting | State::ListedNoImpact) {
        // an old listing, over: a closed period on the timeline
        let old = details("spamhaus-zen", "old");
        let s = store::begin_sweep(&c, now - 19 * d).unwrap();
        store::commit_sweep(
            &mut c,
            &SweepCommit {
                sweep_id: s,
                finished_at: now - 19 * d,
                periods: vec![
                    PeriodChange::Open {
                        target: "192.0.2.1".into(),
                        list: "barracudacentral-zen".into(),
                        at: now - 20 * d,
                        details: old,
                        baseline: false,
                    },
                    PeriodChange::Close {
                        target: "192.0.2.1".into(),
                        list: "barracudacentral-zen".into(),
                        at: now - 18 * d,
                    },
                ],
                ..Default::default()
            },
        )
        .unwrap();
    }
    let sweep = store::begin_sweep(&c, now - 120).unwrap();
    store::commit_sweep(
        &mut c,
        &SweepCommit {
            sweep_id: sweep,
            finished_at: now - 100,
            duration_ms: 2400,
            counts: store::SweepCounts {
                targets: 66,
                pairs: 2500,
                listed: pairs.len() as i64,
                clear: 2400,
                errors: 40,
                unknown: 3,
                lists_unhealthy: 2,
            },
            pairs,
            periods,
            health,
            events,
            baselined: vec![],
        },
    )
    .unwrap();
    if matches!(state, State::ListedRejecting | State::ListedNoImpact) {
        store::insert_delist_request(
            &c,
            &store::NewDelistRequest {
                target: "192.0.2.1".into(),
                list: "spamcop-zen".into(),
                at: now - 30 * h,
                by: "alice <img src=x onerror=\"document.title='pwned'\">".into(),
                via: store::DelistVia::Web,
                note: "relay closed, <b>ticket 7</b>".into(),
                wait: Duration::from_secs(86_400),
            },
        )
        .unwrap();
    }
    // mail telemetry: a day of samples every 10 minutes, a queue spike and an NDR spike (still on in the backscatter state)
    for i in 0..144 {
        let at = now - d + i * 600;
        let bump = if (60..75).contains(&i) { 80.0 } else { 0.0 };
        let ndr = if i > 130 { 40.0 } else { (i % 7) as f64 };
        for (src, metric, v) in [
            ("mx", "queue_depth", 12.0 + (i % 5) as f64 + bump),
            ("mx", "queue_active", 3.0 + (i % 3) as f64),
            ("mx", "queue_deferred", 8.0 + bump / 2.0),
            ("mx", "queue_bounces", 1.0 + bump / 4.0),
            ("mx", "queue_oldest_age_seconds", 600.0 + (i * 30) as f64),
            ("mxlog", "ndr_generated", ndr),
            ("mxlog", "rcpt_rejected_unknown", (i % 4) as f64),
        ] {
            store::insert_sample(&c, src, metric, at, v).unwrap();
        }
        // a fleet's twelve queues on one chart, and a command's one number
        for q in 0..12 {
            let v = (q * 3 + (i % 5)) as f64;
            store::insert_sample(&c, "fleet", &format!("queue_mx{q:02}"), at, v).unwrap();
        }
        store::insert_sample(&c, "load", "value", at, (i % 9) as f64).unwrap();
    }
    let metric = |s: &str, m: &str| Subject::Metric {
        source: s.into(),
        metric: m.into(),
    };
    for (kind, at, s, m) in [
        (
            EventKind::QueueSpike,
            now - d + 60 * 600,
            "mx",
            "queue_depth",
        ),
        (
            EventKind::QueueSpikeCleared,
            now - d + 76 * 600,
            "mx",
            "queue_depth",
        ),
        (
            EventKind::NdrSpike,
            now - d + 131 * 600,
            "mxlog",
            "ndr_generated",
        ),
    ]
    .into_iter()
    .chain(
        // the bounce spike is over but in the backscatter state
        (state != State::BackscatterRisk).then_some((
            EventKind::NdrSpikeCleared,
            now - 60,
            "mxlog",
            "ndr_generated",
        )),
    ) {
        store::insert_event(
            &c,
            &Event::new(
                kind,
                at,
                metric(s, m),
                format!("{kind} on {s}.{m}"),
                serde_json::json!({}),
            ),
        )
        .unwrap();
    }
    if state == State::BackscatterRisk {
        let report = rblwatch::smtp_probe::ProbeReport {
            verdict: rblwatch::smtp_probe::RndrVerdict::AcceptsUnknown,
            catch_all_suspected: false,
            why: "250 2.1.5 Ok for a random recipient <script>window.pwned=1</script>".into(),
            server: "mx1.example.com:25".into(),
            domain: "example.com".into(),
            random_rcpt: "nouser-1234@example.com".into(),
            random_reply: None,
            control_reply: None,
            transcript: vec![],
            tls: None,
        };
        store::insert_probe(&c, now - 300, &report).unwrap();
    }
}

fn artifacts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("test-artifacts")
}

/// Loads a page at a width, screenshots it, and checks nothing scrolls sideways.
fn visit(br: &Browser, url: &str, width: u32, shot: &str) -> String {
    br.viewport(width, 900);
    br.goto(url);
    let dims = br.script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth, window.innerWidth]",
    );
    let (scroll, client) = (dims[0].as_i64().unwrap(), dims[1].as_i64().unwrap());
    // (the client width is the viewport less a vertical scroll bar, if any)
    assert_eq!(
        dims[2].as_i64(),
        Some(i64::from(width)),
        "{url}: the viewport is not {width} px: {dims}"
    );
    br.full_screenshot(&artifacts().join(shot));
    assert!(
        scroll <= client,
        "{url} at {width} px scrolls sideways: content {scroll} px wide (see test-artifacts/{shot})"
    );
    br.text()
}

/// Nothing on the page lies beyond the viewport's right edge (a table's
/// cells included, even inside a box that scrolls: a column off-screen is
/// lost on a phone); only the targets × lists matrix may scroll in its box.
/// And every chart's text is at least 11 px as rendered (its font size
/// times the SVG's scale).
fn fits(br: &Browser, url: &str, width: u32) {
    let out = br.script(
        "const w = document.documentElement.clientWidth; \
         return [...document.querySelectorAll('body *')].filter(e => !e.closest('.matrix-wrap, head, title, script, style')) \
           .filter(e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.right > w + 1; }) \
           .slice(0, 5).map(e => e.tagName + '.' + (typeof e.className === 'string' ? e.className : e.className.baseVal) + ' ' + Math.round(e.getBoundingClientRect().right) + ': ' + (e.textContent || '').slice(0, 60))",
    );
    assert_eq!(
        out,
        serde_json::json!([]),
        "{url} at {width} px: cut off at the right edge"
    );
    let small = br.script(
        "return [...document.querySelectorAll('svg text')].filter(t => t.getBoundingClientRect().width > 0) \
           .map(t => [t.textContent, parseFloat(getComputedStyle(t).fontSize) * t.ownerSVGElement.getScreenCTM().a]) \
           .filter(x => x[1] < 11)",
    );
    assert_eq!(
        small,
        serde_json::json!([]),
        "{url} at {width} px: chart text under 11 px"
    );
}

/// Remote text on the page stayed text: no script ran, no element was made of it.
fn inert(br: &Browser, title: &str) {
    assert_eq!(br.script("return document.title").as_str(), Some(title));
    assert_eq!(
        br.script("return typeof window.pwned"),
        serde_json::json!("undefined")
    );
    assert_eq!(
        br.script("return document.querySelectorAll('main script, main img, td.txt *, .request b img').length"),
        serde_json::json!(0)
    );
}

/// The status-page issue, points 1 and 6: the overview in every verdict state, both widths.
#[test]
fn the_overview_in_every_verdict_state_at_desktop_and_phone_width() {
    let br = Browser::start();
    for (state, headline) in [
        (State::AllClear, "All clear"),
        (
            State::ListedRejecting,
            "Listed and rejecting: 1 listing is costing mail",
        ),
        (State::ListedNoImpact, "Listed, no impact seen: 5 listings"),
        (State::CannotTell, "Can't tell"),
        (State::BackscatterRisk, "Backscatter risk"),
    ] {
        let s = site(state);
        for width in [1280, 390] {
            let text = visit(
                &br,
                &format!("{}/", s.base),
                width,
                &format!("overview-{}-{width}.png", state.name()),
            );
            assert_eq!(
                br.script("return document.getElementById('verdict-text').innerText")
                    .as_str(),
                Some(headline),
                "{state:?} at {width}"
            );
            let class = br.script("return document.getElementById('verdict').className");
            assert!(
                class
                    .as_str()
                    .unwrap()
                    .contains(&format!("verdict-{}", state.name())),
                "{class}"
            );
            assert!(!text.contains("targets clear"), "{state:?}: {text}");
            if state == State::BackscatterRisk {
                assert!(
                    text.contains(
                        "mx1.example.com:25 accepts mail for unknown recipients of example.com"
                    ) && text.contains("bounce (NDR) spike on mxlog.ndr_generated"),
                    "{text}"
                );
            }
            inert(&br, "Overview · rblwatch");
            fits(&br, "/", width);
        }
        // the matrix: unchecked pairs look unlike clear ones; 40 lists fit a desktop screen
        br.viewport(1280, 900);
        br.goto(&format!("{}/", s.base));
        let count = |css: &str| {
            br.script(&format!("return document.querySelectorAll('{css}').length"))
                .as_i64()
                .unwrap()
        };
        match state {
            State::AllClear => {
                assert!(
                    count("table.matrix.by-lists") == 1,
                    "few targets: lists are the rows"
                );
                assert_eq!(
                    count("table.matrix tr.group"),
                    12,
                    "lists grouped by operator"
                );
                assert!(count("td.cell-unchecked") > 0 && count("td.cell-clear") > 0);
                assert_eq!(count("td.cell-listed"), 0);
            }
            State::CannotTell => {
                assert_eq!(
                    count("td.cell-clear"),
                    0,
                    "no pair is clear when no list answers usably"
                );
                assert!(count("td.cell-unchecked") > 100);
                let text = br.text();
                assert!(
                    text.contains("none of the 40 lists answers usably"),
                    "{text}"
                );
            }
            _ => {
                assert_eq!(count("table.matrix.by-targets"), 1);
                assert_eq!(
                    count("table.matrix th.op"),
                    12,
                    "columns grouped by operator"
                );
                assert_eq!(count("table.matrix th.lcol"), 40);
                let wrap = br.script("const w = document.querySelector('.matrix-wrap'); return [w.scrollWidth, w.clientWidth]");
                assert!(
                    wrap[0].as_i64() <= wrap[1].as_i64(),
                    "the 40-list matrix overflows at 1280 px: {wrap}"
                );
                let header = br.script(
                    "return getComputedStyle(document.querySelector('.matrix thead th')).position",
                );
                assert_eq!(header.as_str(), Some("sticky"));
                assert!(
                    count("td.cell-unchecked") > 0
                        && count("td.cell-clear") > 0
                        && count("td.cell-na") > 0
                );
                assert_eq!(count("svg.spark"), 20, "a sparkline per mail metric");
                // every link on the page leads somewhere: spike events link to the mail page, not /target/<metric>
                assert!(count("table.events a[href=\"/mail\"]") >= 2);
                let links: Vec<String> = serde_json::from_value(br.script(
                    "return [...new Set([...document.querySelectorAll('a[href^=\"/\"]')].map(a => a.getAttribute('href').split('#')[0]))]",
                ))
                .unwrap();
                assert!(links.len() > 20, "{links:?}");
                for l in links {
                    let status = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap()
                        .block_on(async {
                            reqwest::get(format!("{}{l}", s.base))
                                .await
                                .unwrap()
                                .status()
                        });
                    assert_eq!(status.as_u16(), 200, "{l}");
                }
            }
        }
    }
}

/// "Can't tell" also comes from the daemon's diagnosis of the resolver (issue 14 fills it in).
#[test]
fn an_unusable_resolver_makes_the_verdict_cant_tell() {
    let br = Browser::start();
    let s = site_with(
        State::AllClear,
        Some(ResolverHealth {
            status: ResolverStatus::Unusable,
            why: "every query REFUSED by 203.0.113.53 <public resolver>".into(),
            fix: "run your own recursive resolver".into(),
        }),
    );
    let text = visit(
        &br,
        &format!("{}/", s.base),
        1280,
        "overview-cannot_tell-resolver-1280.png",
    );
    assert_eq!(
        br.script("return document.getElementById('verdict-text').innerText")
            .as_str(),
        Some("Can't tell")
    );
    assert!(
        text.contains(
            "the resolver is unusable: every query REFUSED by 203.0.113.53 <public resolver>"
        ),
        "{text}"
    );
    inert(&br, "Overview · rblwatch");
}

/// The status-page issue, points 2, 3 and 6: target, mail and lists pages at both widths.
#[test]
fn target_mail_and_lists_pages_at_desktop_and_phone_width() {
    let br = Browser::start();
    let s = site(State::ListedRejecting);
    for width in [1280, 390] {
        // the target page: listings with delisting, every list, the timeline
        let text = visit(
            &br,
            &format!("{}/target/192.0.2.1", s.base),
            width,
            &format!("target-{width}.png"),
        );
        inert(&br, "192.0.2.1 · rblwatch");
        assert!(text.contains("Listed on 3 of"), "{text}");
        assert!(
            text.contains(EVIL_TXT),
            "the TXT reason is shown as text: {text}"
        );
        assert!(text.contains("listings drop automatically about 24 hours after reports stop"));
        assert!(
            text.contains("relay closed, <b>ticket 7</b>") && text.contains("overdue"),
            "{text}"
        );
        assert!(
            text.contains("unchecked"),
            "a dead list's pair is unchecked: {text}"
        );
        let count = |css: &str| {
            br.script(&format!("return document.querySelectorAll('{css}').length"))
                .as_i64()
                .unwrap()
        };
        assert_eq!(
            count("form.delist button"),
            3,
            "a delisting button per listing"
        );
        assert_eq!(count("form.delist input[name=csrf]"), 3);
        let timeline: Vec<String> = serde_json::from_value(br.script(
            "return [...document.querySelectorAll('figure.timeline svg text')].filter(t => t.getBoundingClientRect().width > 0).map(t => t.textContent)",
        ))
        .unwrap();
        assert!(timeline.iter().any(|t| t == "time (UTC)"), "{timeline:?}");
        assert!(
            timeline.iter().any(|t| t.contains(" → still listed")),
            "{timeline:?}"
        );
        assert!(
            timeline
                .iter()
                .filter(|t| t.contains(" → ") && !t.contains("still"))
                .count()
                == 1,
            "{timeline:?}"
        );
        assert!(
            timeline
                .iter()
                .any(|t| t.len() == 6 && t.starts_with(char::is_alphabetic)),
            "date ticks: {timeline:?}"
        );

        // the mail page: one chart per source and unit, axes, thresholds, spike windows
        visit(
            &br,
            &format!("{}/mail", s.base),
            width,
            &format!("mail-{width}.png"),
        );
        inert(&br, "Mail · rblwatch");
        assert_eq!(
            count("figure svg.chart.wide"),
            5,
            "mx messages, mx seconds, mxlog per read interval, fleet messages, load"
        );
        assert_eq!(
            count("figure svg.chart.narrow"),
            5,
            "each chart drawn for phones too"
        );
        let labels: Vec<String> = serde_json::from_value(br.script(
            "return [...document.querySelectorAll('figure svg text')].filter(t => t.getBoundingClientRect().width > 0).map(t => t.textContent)",
        ))
        .unwrap();
        for l in [
            "messages",
            "seconds",
            "per read interval",
            "time (UTC)",
            "threshold 60",
            "threshold 25",
        ] {
            assert!(labels.iter().any(|x| x == l), "{l} missing: {labels:?}");
        }
        assert!(
            labels
                .iter()
                .filter(|x| x.len() == 5 && x.as_bytes()[2] == b':')
                .count()
                >= 3 * 5, // three a chart at either width
            "hour ticks: {labels:?}"
        );
        assert_eq!(count("svg.chart.wide rect.spike"), 2, "two spike windows");
        assert_eq!(
            count("figure#mx-messages svg.chart.wide polyline.series"),
            4,
            "four queue figures on one chart"
        );
        // issue 22: twelve series of one source, twelve colours (lines and legend)
        let strokes: Vec<String> = serde_json::from_value(br.script(
            "return [...document.querySelectorAll('figure#fleet-messages svg.chart.wide polyline.series')].map(p => p.getAttribute('stroke'))",
        ))
        .unwrap();
        let distinct: std::collections::HashSet<&String> = strokes.iter().collect();
        assert_eq!((strokes.len(), distinct.len()), (12, 12), "{strokes:?}");
        let swatches: Vec<String> = serde_json::from_value(br.script(
            "return [...document.querySelectorAll('figure#fleet-messages .chart-legend svg rect')].map(r => r.getAttribute('fill'))",
        ))
        .unwrap();
        assert_eq!(swatches, strokes, "the legend's colours are the lines'");
        // a command's one number is charted under the source's name, not "value: value"
        let caption =
            br.script("return document.querySelector('figure#load-load figcaption').innerText");
        assert_eq!(caption.as_str(), Some("load · load"), "{caption}");
        assert!(!br.text().contains("value: value"));
        // ranges down to an hour; a day of data opens at 24 h
        let ranges: Vec<String> = serde_json::from_value(br.script(
            "return [...document.querySelectorAll('.ranges a')].map(a => a.textContent + (a.classList.contains('current') ? '*' : ''))",
        ))
        .unwrap();
        assert_eq!(ranges, ["1h", "6h", "24h*", "7d", "30d"]);

        // the lists page
        let text = visit(
            &br,
            &format!("{}/lists", s.base),
            width,
            &format!("lists-{width}.png"),
        );
        inert(&br, "Lists · rblwatch");
        assert!(
            text.contains("38 of 40 usable") && text.contains("blocked"),
            "{text}"
        );
    }
}

/// Issue 22 point 1: every page at a phone's width (390 px) and a desktop's
/// (1280 px): nothing scrolls sideways or is cut off (tables become stacked
/// cards), chart text is at least 11 px, targets sort as addresses.
#[test]
fn every_page_fits_a_phone_and_a_desktop() {
    let br = Browser::start();
    let s = site(State::ListedRejecting);
    let pages = [
        "/",
        "/target/192.0.2.1",
        "/receivers",
        "/lists",
        "/events",
        "/hooks",
        "/alerts",
        "/mail",
        "/audit",
        "/accounts",
        "/list/spamhaus-zen",
        "/targets",
    ];
    for width in [390, 1280] {
        for page in pages {
            let shot = format!(
                "page{}-{width}.png",
                page.replace('/', "-").trim_end_matches('-')
            );
            visit(&br, &format!("{}{page}", s.base), width, &shot);
            fits(&br, page, width);
        }
        // the listings keep their impact and delisting state on a phone, labelled
        br.goto(&format!("{}/", s.base));
        let text = br.script("return document.querySelector('table.listings').innerText");
        let text = text.as_str().unwrap_or_default();
        assert!(text.contains("rejecting mail"), "{text}");
        assert!(text.contains("requested"), "{text}");
        if width == 390 {
            // each cell on its own line, named by its column (generated content)
            let labels = br.script(
                "return [...document.querySelector('table.listings tbody tr').cells].map(c => getComputedStyle(c, '::before').content)",
            );
            assert_eq!(
                labels,
                serde_json::json!([
                    "none",
                    "none",
                    "\"Since: \"",
                    "\"Impact: \"",
                    "\"Delisting: \""
                ]),
            );
        }
    }
    // the matrix's rows: 198.51.100.7 (2 listings), then .9 before .10 and so on (not .10 before .9)
    br.viewport(1280, 900);
    br.goto(&format!("{}/", s.base));
    let rows: Vec<String> = serde_json::from_value(br.script(
        "return [...document.querySelectorAll('table.matrix tbody th a')].map(a => a.textContent)",
    ))
    .unwrap();
    let i = |t: &str| rows.iter().position(|r| r == t).unwrap_or(usize::MAX);
    assert!(i("198.51.100.8") < i("198.51.100.11"), "{rows:?}");
    assert!(i("198.51.100.9") < i("198.51.100.10"), "{rows:?}");
}
