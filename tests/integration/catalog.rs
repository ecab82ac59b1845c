//! Every shipped list against a private rbldnsd that answers its test points
//! the way the operator documents: each must read `healthy`. Then every
//! documented error code of every list, served on both test points, must read
//! `blocked` with the cause named in words.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use rblwatch::catalog::{
    parse_file, Catalog, CodeMatch, CodeVerdict, ErrorCause, ListDef, ListKind, ReturnCode,
    Undocumented,
};
use rblwatch::dns::{ClientConfig, DnsClient};
use rblwatch::engine::{ActiveList, Engine, EngineOpts};
use rblwatch::health::ListHealth;
use rblwatch::target::{RangePolicy, Target, TargetSpec};
use rblwatch::verdict::{Verdict, VerdictKind};

use crate::util::Rbldnsd;

/// The key configured for key-only lists (DQS, Abusix): their zone is the key template with it.
const TEST_KEY: &str = "testkey";

/// What a list's positive test points answer, where it is not plain 127.0.0.2.
///
/// Operator-documented: ZEN answers SBL, XBL and PBL at once; suomispam .99 and blocklist.de .15
/// (dnsbl-facts.md); DBL 127.0.1.2; DNSWL 127.0.10.0 (category 10, "special cases"); Scientific Spam's RHSBL
/// 127.0.1.2; URIBL's test.uribl.com 127.0.0.14; Abusix dynamic .11 and .12, dblack 127.0.1.1-3. Assumed from
/// the only code the list documents: AuthBL 127.0.0.20, ZRD 127.0.2.2, XBL .4, PBL .10, Abusix exploit .4 (its
/// subset authbl documents .4 for every test point). SURBL's FAQ: multi's test points answer every list bit,
/// 127.0.0.254. A strict list (only its documented codes count) answers its first listing code where 127.0.0.2
/// is not one of them.
fn positive_answers(def: &ListDef) -> Vec<String> {
    let v: Vec<&str> = match def.id.as_str() {
        "spamhaus-zen" => vec!["127.0.0.2", "127.0.0.4", "127.0.0.10"],
        "suomispam" => vec!["127.0.0.99"],
        "blocklist-de" => vec!["127.0.0.15"],
        "spamhaus-dbl" | "scientificspam-rhsbl" => vec!["127.0.1.2"],
        "spamhaus-zrd" => vec!["127.0.2.2"],
        "spamhaus-authbl" => vec!["127.0.0.20"],
        "spamhaus-xbl" | "abusix-exploit" => vec!["127.0.0.4"],
        "spamhaus-pbl" => vec!["127.0.0.10"],
        "abusix-dynamic" => vec!["127.0.0.11", "127.0.0.12"],
        "abusix-dblack" => vec!["127.0.1.1", "127.0.1.2", "127.0.1.3"],
        "dnswl" => vec!["127.0.10.0"],
        "surbl-multi" => vec!["127.0.0.254"],
        "uribl-multi" => vec!["127.0.0.14"],
        _ => vec![],
    };
    if !v.is_empty() {
        return v.into_iter().map(str::to_string).collect();
    }
    let two: Ipv4Addr = "127.0.0.2".parse().unwrap();
    if def.undocumented == Undocumented::Error && def.lookup_row(two).is_none() {
        if let Some(r) = def
            .returns
            .iter()
            .find(|r| matches!(r.verdict, CodeVerdict::Listed | CodeVerdict::Allowed))
        {
            return vec![code_for(def, r).to_string()];
        }
    }
    vec!["127.0.0.2".into()]
}

/// The zone a list is queried on in this test (the key template with the test key for key-only lists).
fn served_zone(def: &ListDef) -> String {
    match (&def.policy.key_template, def.policy.requires_key) {
        (Some(t), true) => t.replace("{key}", TEST_KEY),
        _ => def.zone.clone(),
    }
}

const HEAD: &str = "$SOA 60 ns.test hostmaster.test 0 600 60 3600 10\n$TTL 10\n";

/// Builds the zone files and rbldnsd arguments of the lists under test.
struct Zones {
    files: Vec<(String, String)>,
    args: Vec<String>,
    n: usize,
}

/// One conformance question: a target the private zone answers with `code`, and what the row says.
struct Case {
    target: Target,
    code: Ipv4Addr,
    /// The row's verdict, or `None` for the undocumented code.
    row: Option<(CodeVerdict, String)>,
}

impl Zones {
    fn file(&mut self, content: String) -> String {
        self.n += 1;
        let name = format!("z{:04}", self.n);
        self.files.push((name.clone(), content));
        name
    }

    /// Serves every positive test point of `def` with `answers` (one dataset per answer, so each
    /// point answers all of them); the negative points stay NXDOMAIN.
    fn serve_points(&mut self, def: &ListDef, zone: &str, answers: &[String]) {
        for a in answers {
            let (mut v4, mut v6, mut names) = (String::new(), String::new(), String::new());
            for t in &def.test_points.listed {
                match t {
                    Target::Ip(IpAddr::V4(ip)) => v4.push_str(&format!("{ip} :{a}:test point\n")),
                    Target::Ip(IpAddr::V6(ip)) => {
                        // rbldnsd answers IPv4-mapped names (::ffff:7f00:2) from its IPv4 datasets
                        if let Some(m) = ip.to_ipv4_mapped() {
                            v4.push_str(&format!("{m} :{a}:test point\n"));
                        }
                        v6.push_str(&format!("{ip} :{a}:test point\n"));
                    }
                    Target::Domain(d) => names.push_str(&format!("{d} :{a}:test point\n")),
                }
            }
            for (data, kind) in [(v4, "ip4trie"), (v6, "ip6trie"), (names, "dnset")] {
                if !data.is_empty() {
                    let f = self.file(format!("{HEAD}{data}"));
                    self.args.push(format!("{zone}:{kind}:{f}"));
                }
            }
        }
    }

    /// Serves one target per documented non-error code and one for an undocumented code.
    fn serve_codes(&mut self, def: &ListDef, zone: &str) -> Vec<Case> {
        let mut cases = Vec::new();
        let rows = def
            .returns
            .iter()
            .filter(|r| r.verdict != CodeVerdict::Error);
        let mut codes: Vec<(Ipv4Addr, Option<(CodeVerdict, String)>)> = rows
            .map(|r| (code_for(def, r), Some((r.verdict, r.meaning.clone()))))
            .collect();
        match undocumented_code(def) {
            Some(c) => codes.push((c, None)),
            None => eprintln!(
                "{}: every 127/8 code is documented; no undocumented case",
                def.id
            ),
        }
        let mut data = String::new();
        for (k, (code, row)) in codes.into_iter().enumerate() {
            let target = match def.kind {
                ListKind::Ipv4 | ListKind::Ip => Target::Ip(IpAddr::V4(Ipv4Addr::new(
                    10,
                    77,
                    (k / 250) as u8,
                    (k % 250 + 1) as u8,
                ))),
                ListKind::Ipv6 => Target::Ip(format!("2001:db8:77::{:x}", k + 1).parse().unwrap()),
                ListKind::Domain => Target::Domain(format!("c{k}.conformance.example")),
            };
            data.push_str(&format!("{target} :{code}:conformance\n"));
            cases.push(Case { target, code, row });
        }
        let kind = match def.kind {
            ListKind::Ipv4 | ListKind::Ip => "ip4trie",
            ListKind::Ipv6 => "ip6trie",
            ListKind::Domain => "dnset",
        };
        let f = self.file(format!("{HEAD}{data}"));
        self.args.push(format!("{zone}:{kind}:{f}"));
        cases
    }

    /// Answers `code` for every name of `zone` (used for the error codes).
    fn serve_everything(&mut self, def: &ListDef, zone: &str, code: &str) {
        match def.kind {
            ListKind::Domain => {
                let empty = self.file(HEAD.to_string());
                let acl = self.file(format!("127.0.0.0/8 :{code}:error\n"));
                self.args.push(format!("{zone}:dnset:{empty}"));
                self.args.push(format!("{zone}:acl:{acl}"));
            }
            _ => {
                let f = self.file(format!("{HEAD}0.0.0.0/0 :{code}:error\n"));
                self.args.push(format!("{zone}:ip4trie:{f}"));
                let f = self.file(format!("{HEAD}::/0 :{code}:error\n"));
                self.args.push(format!("{zone}:ip6trie:{f}"));
            }
        }
    }
}

/// A code inside 127.0.0.0/8 the list's table does not document, if there is one.
fn undocumented_code(def: &ListDef) -> Option<Ipv4Addr> {
    let near = (0..4u8).flat_map(|b| (0..=255u8).map(move |c| Ipv4Addr::new(127, 0, b, c)));
    let far = (0..=255u8).map(|c| Ipv4Addr::new(127, 1, 0, c));
    near.chain(far).find(|c| def.lookup_row(*c).is_none())
}

/// An answer code that the table maps to `row` (the first such code of the row's range or bits).
fn code_for(def: &ListDef, row: &ReturnCode) -> Ipv4Addr {
    let candidates: Vec<Ipv4Addr> = match row.code {
        CodeMatch::Exact(a) => vec![a],
        CodeMatch::Range(lo, hi) => (u32::from(lo)..=u32::from(hi))
            .map(Ipv4Addr::from)
            .collect(),
        CodeMatch::Bits(_) => (1..=255u8).map(|o| Ipv4Addr::new(127, 0, 0, o)).collect(),
        CodeMatch::Last(v) => (0..=255u8).map(|x| Ipv4Addr::new(127, 0, x, v)).collect(),
    };
    candidates
        .into_iter()
        .find(|c| def.lookup_row(*c) == Some(row))
        .unwrap_or_else(|| panic!("{}: no code reaches row {}", def.id, row.code))
}

/// Words the health text must contain for each cause.
fn words(cause: ErrorCause) -> &'static str {
    match cause {
        ErrorCause::PublicResolver => "public resolver",
        ErrorCause::OverQuota => "quota",
        ErrorCause::InvalidKey => "key",
        ErrorCause::ZoneTypo => "zone name",
        ErrorCause::WrongQuery => "wrong query",
        ErrorCause::Unregistered => "unregistered",
        ErrorCause::Blocked => ": blocked: ",
    }
}

async fn engine(rbl: &Rbldnsd, lists: Vec<ActiveList>) -> Engine {
    let mut cc = ClientConfig::new(vec![rbl.addr().parse().unwrap()]);
    cc.timeout = Duration::from_millis(800);
    cc.retries = 1;
    Engine::new(
        DnsClient::new(&cc).await.unwrap(),
        lists,
        EngineOpts {
            concurrency: 32,
            ..EngineOpts::default()
        },
    )
}

#[tokio::test]
async fn every_shipped_list_is_healthy_and_every_error_code_reads_blocked() {
    let started = Instant::now();
    let cat = Catalog::shipped().unwrap();
    let live: Vec<&ListDef> = cat.iter().filter(|l| l.retired.is_none()).collect();
    assert!(live.len() >= 60, "only {} operating lists", live.len());

    let mut z = Zones {
        files: vec![],
        args: vec![],
        n: 0,
    };
    // 1. Each list on its own zone, answering its test points as documented, every documented
    //    code and one undocumented code.
    let mut healthy_lists = Vec::new();
    let mut cases = Vec::new();
    for def in &live {
        let zone = served_zone(def);
        z.serve_points(def, &zone, &positive_answers(def));
        cases.push(z.serve_codes(def, &zone));
        let key = def.policy.requires_key.then_some(TEST_KEY);
        healthy_lists.push(ActiveList::new(Arc::new((*def).clone()), key, None));
    }
    // 2. One zone per documented error code, answering that code for every name.
    let mut error_lists = Vec::new();
    let mut error_cases = Vec::new();
    for def in &live {
        for row in def
            .returns
            .iter()
            .filter(|r| r.verdict == CodeVerdict::Error)
        {
            let cause = row.cause.expect("error rows carry a cause");
            let code = code_for(def, row);
            let mut d = (*def).clone();
            d.zone = format!("e{}.errors.test", error_cases.len());
            d.policy.key_template = None;
            d.policy.requires_key = false;
            d.policy.max_qps = None;
            z.serve_everything(&d, &d.zone.clone(), &code.to_string());
            error_cases.push((def.id.clone(), code, cause));
            error_lists.push(ActiveList::new(Arc::new(d), None, None));
        }
    }
    let rbl = Rbldnsd::start_with(&z.files, &z.args);

    let e = engine(&rbl, healthy_lists).await;
    let report = e.check().await;
    let mut bad = String::new();
    for ((l, h), v6) in e.lists().iter().zip(&report.lists).zip(&report.ipv6_down) {
        if !h.is_healthy() {
            let _ = writeln!(bad, "  {}: {} ({})", l.def.id, h.name(), h.why());
        }
        if let Some(why) = v6 {
            let _ = writeln!(bad, "  {}: IPv6 claim not proven ({why})", l.def.id);
        }
    }
    assert!(
        bad.is_empty(),
        "lists not healthy against their documented test points:\n{bad}"
    );

    // Every documented code reads as its row says; the undocumented one is never silently a listing
    // on a strict list, and shows its raw code everywhere.
    let mut asked = 0;
    for (li, list_cases) in cases.iter().enumerate() {
        let def = &e.lists()[li].def;
        for c in list_cases {
            let v = e.query(li, &c.target).await;
            asked += 1;
            let ok = match &c.row {
                Some((CodeVerdict::Listed, m)) => {
                    v.kind() == VerdictKind::Listed && v.meaning().contains(m.as_str())
                }
                Some((CodeVerdict::Allowed, m)) => {
                    v.kind() == VerdictKind::Allowed && v.meaning().contains(m.as_str())
                }
                Some((CodeVerdict::Ignore, _)) => v.kind() == VerdictKind::Clear,
                Some((CodeVerdict::Error, _)) => unreachable!("error rows are served below"),
                None => match def.undocumented {
                    Undocumented::Error => {
                        v.kind() == VerdictKind::ListError
                            && v.meaning().contains("not a code this list documents")
                            && v.meaning().contains(&c.code.to_string())
                    }
                    Undocumented::Listed => {
                        matches!(v.kind(), VerdictKind::Listed | VerdictKind::Allowed)
                            && v.meaning()
                                .contains(&format!("undocumented code {}", c.code))
                    }
                },
            };
            if !ok {
                let _ = writeln!(
                    bad,
                    "  {} answering {} for {}: {} ({})",
                    def.id,
                    c.code,
                    c.target,
                    v.kind().as_str(),
                    v.meaning()
                );
            }
        }
    }
    assert!(
        bad.is_empty(),
        "codes not read as the operator documents:\n{bad}"
    );

    // Every cause the catalog uses is exercised at least once.
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let e = engine(&rbl, error_lists).await;
    let health = e.check_health().await;
    let mut bad = String::new();
    for ((id, code, cause), h) in error_cases.iter().zip(&health) {
        *seen.entry(cause.label()).or_default() += 1;
        let ok = matches!(h, ListHealth::Blocked { .. })
            && h.why().contains(words(*cause))
            && h.why().contains(&code.to_string())
            && h.why().contains(cause.advice());
        if !ok {
            let _ = writeln!(
                bad,
                "  {id} answering {code} ({cause}): {} ({})",
                h.name(),
                h.why()
            );
        }
    }
    assert!(
        bad.is_empty(),
        "error codes not read as blocked with their cause:\n{bad}"
    );
    for c in [
        ErrorCause::PublicResolver,
        ErrorCause::OverQuota,
        ErrorCause::InvalidKey,
        ErrorCause::ZoneTypo,
        ErrorCause::WrongQuery,
        ErrorCause::Unregistered,
        ErrorCause::Blocked,
    ] {
        assert!(
            seen.contains_key(c.label()),
            "no shipped error row has cause {c}: {seen:?}"
        );
    }
    eprintln!(
        "{} lists healthy, {asked} codes read as documented, {} error codes blocked, in {:?}",
        live.len(),
        error_cases.len(),
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

/// One list of a test's own, read by the catalog parser.
fn own_list(text: &str) -> ListDef {
    parse_file("own.toml", text).unwrap().remove(0)
}

#[tokio::test]
async fn an_ipv6_claim_without_ipv6_data_never_reads_clear() {
    // The zone holds names, not addresses: 2.0.0.127 and 192.0.2.9 are listed, but no IPv6 name is,
    // as on a list that holds no IPv6 data while its catalog entry says `kind = "ip"`.
    let mut z = Zones {
        files: vec![],
        args: vec![],
        n: 0,
    };
    let f = z.file(format!(
        "{HEAD}2.0.0.127 :127.0.0.2:test point\n9.2.0.192 :127.0.0.2:spam\n"
    ));
    z.args.push(format!("v6less.test:dnset:{f}"));
    let rbl = Rbldnsd::start_with(&z.files, &z.args);
    let def = own_list(
        "[[list]]\nid = \"v6less\"\nzone = \"v6less.test\"\nkind = \"ip\"\nreturns = [{ code = \"127.0.0.2\", meaning = \"spam\" }]\n",
    );
    let e = engine(&rbl, vec![ActiveList::new(Arc::new(def), None, None)]).await;
    let report = e.check().await;
    assert!(report.lists[0].is_healthy(), "{:?}", report.lists[0]);
    let why = report.ipv6_down[0]
        .as_deref()
        .expect("the IPv6 claim must fail");
    assert!(why.contains("IPv6") && why.contains("IPv4 only"), "{why}");
    let specs: Vec<TargetSpec> = ["192.0.2.9", "2001:db8::9"]
        .iter()
        .map(|t| TargetSpec::parse(t, RangePolicy::Normal).unwrap())
        .collect();
    let outcomes: Vec<_> = e.sweep(&specs, &report.lists).collect().await;
    let verdict = |t: &str| {
        outcomes
            .iter()
            .find(|o| o.target.to_string() == t)
            .map(|o| o.verdict.clone())
            .unwrap_or_else(|| panic!("no outcome for {t}"))
    };
    assert_eq!(verdict("192.0.2.9").kind(), VerdictKind::Listed);
    match verdict("2001:db8::9") {
        Verdict::Unknown { why } => assert!(why.contains("IPv6"), "{why}"),
        other => panic!("an IPv6 target on an IPv4-only list read {other:?}"),
    }

    // `lists --health` says so too.
    let dir = tempfile::tempdir().unwrap();
    let lists = dir.path().join("lists");
    std::fs::create_dir(&lists).unwrap();
    std::fs::write(
        lists.join("own.toml"),
        "[[list]]\nid = \"v6less\"\nzone = \"v6less.test\"\nkind = \"ip\"\nreturns = [{ code = \"127.0.0.2\", meaning = \"spam\" }]\nsources = [\"https://example.net/\"]\n",
    )
    .unwrap();
    let cfg = dir.path().join("rblwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[resolver]\nnameservers = [\"{}\"]\ntimeout = \"800ms\"\n[lists]\ndirs = [{:?}]\nuse = [\"v6less\"]\n",
            rbl.addr(),
            lists.display().to_string()
        ),
    )
    .unwrap();
    let o = crate::util::rblwatch(&["lists", "--health", "-C", cfg.to_str().unwrap()]);
    let out = crate::util::stdout(&o);
    assert!(
        out.contains("v6less") && out.contains("IPv6 targets unchecked"),
        "{out}\n{}",
        crate::util::stderr(&o)
    );
}

#[tokio::test]
async fn an_undocumented_code_on_a_strict_list_is_never_a_listing() {
    let cat = Catalog::shipped().unwrap();
    let zen = cat.get("spamhaus-zen").unwrap().clone();
    assert_eq!(zen.undocumented, Undocumented::Error);
    let mut strict = zen.clone();
    strict.zone = "strict.test".into();
    let mut lax = zen;
    lax.id = "lax".into();
    lax.zone = "lax.test".into();
    lax.undocumented = Undocumented::Listed;
    let mut z = Zones {
        files: vec![],
        args: vec![],
        n: 0,
    };
    for zone in ["strict.test", "lax.test"] {
        let f = z.file(format!(
            "{HEAD}127.0.0.2 :127.0.0.2:test point\n192.0.2.77 :127.0.0.77:odd\n192.0.2.78 :127.0.0.4:xbl\n"
        ));
        z.args.push(format!("{zone}:ip4trie:{f}"));
    }
    let rbl = Rbldnsd::start_with(&z.files, &z.args);
    let e = engine(
        &rbl,
        vec![
            ActiveList::new(Arc::new(strict), None, None),
            ActiveList::new(Arc::new(lax), None, None),
        ],
    )
    .await;
    let report = e.check().await;
    assert!(report.lists.iter().all(|h| h.is_healthy()), "{report:?}");
    let t = Target::parse("192.0.2.77").unwrap();
    let v = e.query(0, &t).await;
    assert_eq!(v.kind(), VerdictKind::ListError, "{v:?}");
    assert_eq!(
        v.meaning(),
        "127.0.0.77: blocked: not a code this list documents"
    );
    let v = e.query(1, &t).await;
    assert_eq!(v.kind(), VerdictKind::Listed, "{v:?}");
    assert_eq!(v.meaning(), "listed (undocumented code 127.0.0.77)");
    // a documented code is still a listing on the strict list
    let v = e.query(0, &Target::parse("192.0.2.78").unwrap()).await;
    assert_eq!(v.kind(), VerdictKind::Listed, "{v:?}");
}

#[tokio::test]
async fn a_key_not_entitled_to_one_zone_is_named() {
    // The key answers on ZEN's DQS zone; the DBL's DQS zone is not served, so the server
    // REFUSES it, as Spamhaus does for a zone the key does not cover.
    let cat = Catalog::shipped().unwrap();
    let zen = cat.get("spamhaus-zen").unwrap().clone();
    let dbl = cat.get("spamhaus-dbl").unwrap().clone();
    let mut z = Zones {
        files: vec![],
        args: vec![],
        n: 0,
    };
    let zone = zen
        .policy
        .key_template
        .as_deref()
        .unwrap()
        .replace("{key}", TEST_KEY);
    z.serve_points(&zen, &zone, &positive_answers(&zen));
    let rbl = Rbldnsd::start_with(&z.files, &z.args);
    let e = engine(
        &rbl,
        vec![
            ActiveList::new(Arc::new(zen), Some(TEST_KEY), None),
            ActiveList::new(Arc::new(dbl.clone()), Some(TEST_KEY), None),
        ],
    )
    .await;
    let report = e.check().await;
    assert!(report.lists[0].is_healthy(), "{:?}", report.lists[0]);
    let h = &report.lists[1];
    assert_eq!(h.name(), "blocked", "{h:?}");
    assert!(
        h.why().contains("the key may not cover this zone")
            && h.why().contains("spamhaus-zen")
            && h.why().contains("https://portal.spamhaus.com/")
            && h.why().contains(": invalid key: "),
        "{h:?}"
    );
    assert!(!h.why().contains(TEST_KEY), "the key leaked: {h:?}");
    // With no other zone of the key answering, nothing says the key is the cause.
    let e = engine(
        &rbl,
        vec![ActiveList::new(Arc::new(dbl), Some(TEST_KEY), None)],
    )
    .await;
    let report = e.check().await;
    assert_eq!(report.lists[0].name(), "blocked");
    assert!(
        !report.lists[0].why().contains("may not cover"),
        "{:?}",
        report.lists[0]
    );
}

#[test]
fn an_undocumented_code_raises_list_unknown_code_once() {
    let mut z = Zones {
        files: vec![],
        args: vec![],
        n: 0,
    };
    let f = z.file(format!(
        "{HEAD}127.0.0.2 :127.0.0.2:test point\n192.0.2.77 :127.0.0.77:odd\n"
    ));
    z.args.push(format!("odd.test:ip4trie:{f}"));
    let rbl = Rbldnsd::start_with(&z.files, &z.args);
    let dir = tempfile::tempdir().unwrap();
    let lists = dir.path().join("lists");
    std::fs::create_dir(&lists).unwrap();
    std::fs::write(
        lists.join("own.toml"),
        "[[list]]\nid = \"odd\"\nzone = \"odd.test\"\nkind = \"ipv4\"\nreturns = [{ code = \"127.0.0.2\", meaning = \"spam\" }]\n",
    )
    .unwrap();
    let cfg = dir.path().join("rblwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[resolver]\nnameservers = [\"{}\"]\ntimeout = \"800ms\"\n[lists]\ndirs = [{:?}]\nuse = [\"odd\"]\n[[targets]]\ntarget = \"192.0.2.77\"\n[daemon]\ndatabase = \"rblwatch.db\"\n[web]\nlisten = \"127.0.0.1:{}\"\n",
            rbl.addr(),
            lists.display().to_string(),
            crate::util::free_tcp_port()
        ),
    )
    .unwrap();
    crate::util::once(&cfg);
    crate::util::once(&cfg);
    let c = rusqlite::Connection::open(dir.path().join("rblwatch.db")).unwrap();
    let rows: Vec<(String, String)> = c
        .prepare("SELECT summary, severity FROM events WHERE kind = 'list_unknown_code'")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        rows.len(),
        1,
        "one event per list and code, over two sweeps: {rows:?}"
    );
    assert!(
        rows[0].0.contains("odd") && rows[0].0.contains("127.0.0.77"),
        "{rows:?}"
    );
    assert_eq!(rows[0].1, "warning");
}

#[tokio::test]
async fn a_key_not_entitled_to_one_zone_is_named_through_a_real_resolver() {
    // Spamhaus answers REFUSED for a DQS zone the key does not cover; a recursive resolver
    // (unbound here) turns that into SERVFAIL. The key's ZEN zone answers through the same
    // resolver, so the DBL must read "the key may not cover this zone" with the portal link,
    // never network advice.
    use crate::lab::{dig, DnsLab, DnsLabSpec};
    let cat = Catalog::shipped().unwrap();
    let zen = cat.get("spamhaus-zen").unwrap().clone();
    let dbl = cat.get("spamhaus-dbl").unwrap().clone();
    let keyed = |d: &ListDef| {
        d.policy
            .key_template
            .as_deref()
            .unwrap()
            .replace("{key}", TEST_KEY)
    };
    let (zen_zone, dbl_zone) = (keyed(&zen), keyed(&dbl));
    let lab = DnsLab::start(
        DnsLabSpec::new()
            .list(&zen_zone, 1, &[])
            .list(&dbl_zone, 1, &[])
            .recursor(),
    );
    // The DBL's DQS zone is delegated to a server that does not serve it: it REFUSES, as
    // Spamhaus does for a zone the key is not entitled to.
    let IpAddr::V4(zen_ns) = lab.server(&zen_zone, 0).ip() else {
        unreachable!()
    };
    lab.set_delegation(&dbl_zone, &[zen_ns]);
    let name = format!("dbltest.com.{dbl_zone}");
    let out = dig(&[&format!("@{zen_ns}"), &name, "A"]);
    assert!(out.contains("status: REFUSED"), "{out}");
    let rec = lab.recursor();
    let out = dig(&["+time=8", &format!("@{}", rec.ip()), &name, "A"]);
    assert!(out.contains("status: SERVFAIL"), "{out}");

    let mut cc = ClientConfig::new(vec![rec]);
    cc.timeout = Duration::from_secs(8);
    cc.retries = 0;
    let e = Engine::new(
        DnsClient::new(&cc).await.unwrap(),
        vec![
            ActiveList::new(Arc::new(zen), Some(TEST_KEY), None),
            ActiveList::new(Arc::new(dbl.clone()), Some(TEST_KEY), None),
        ],
        EngineOpts::default(),
    );
    let report = e.check().await;
    assert!(report.lists[0].is_healthy(), "{:?}", report.lists[0]);
    let h = &report.lists[1];
    assert_eq!(h.name(), "blocked", "{h:?}");
    assert!(
        h.why().contains("SERVFAIL")
            && h.why().contains("the key may not cover this zone")
            && h.why().contains("spamhaus-zen")
            && h.why().contains("https://portal.spamhaus.com/")
            && h.why().contains(": invalid key: "),
        "{h:?}"
    );
    assert!(!h.why().contains(TEST_KEY), "the key leaked: {h:?}");

    // Alone, the same SERVFAIL says nothing about the key: the list is unreachable.
    let e = Engine::new(
        DnsClient::new(&cc).await.unwrap(),
        vec![ActiveList::new(Arc::new(dbl), Some(TEST_KEY), None)],
        EngineOpts::default(),
    );
    let report = e.check().await;
    assert_eq!(
        report.lists[0].name(),
        "unreachable",
        "{:?}",
        report.lists[0]
    );
    assert!(
        !report.lists[0].why().contains("may not cover"),
        "{:?}",
        report.lists[0]
    );
}

#[test]
fn an_ipv6_claim_that_fails_its_test_points_is_shown_on_the_web_page() {
    // As in an_ipv6_claim_without_ipv6_data_never_reads_clear: a `kind = "ip"` list whose zone
    // holds no IPv6 data. The daemon's list page says its IPv6 targets are unchecked, treated as
    // IPv4-only this cycle, with the reason; the IPv6 target's page says why it is unchecked.
    let mut z = Zones {
        files: vec![],
        args: vec![],
        n: 0,
    };
    let f = z.file(format!(
        "{HEAD}2.0.0.127 :127.0.0.2:test point\n9.2.0.192 :127.0.0.2:spam\n"
    ));
    z.args.push(format!("v6less.test:dnset:{f}"));
    let rbl = Rbldnsd::start_with(&z.files, &z.args);
    let dir = tempfile::tempdir().unwrap();
    let lists = dir.path().join("lists");
    std::fs::create_dir(&lists).unwrap();
    std::fs::write(
        lists.join("own.toml"),
        "[[list]]\nid = \"v6less\"\nzone = \"v6less.test\"\nkind = \"ip\"\nreturns = [{ code = \"127.0.0.2\", meaning = \"spam\" }]\n",
    )
    .unwrap();
    let port = crate::util::free_tcp_port();
    let cfg = dir.path().join("rblwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[resolver]\nnameservers = [\"{}\"]\ntimeout = \"800ms\"\n[lists]\ndirs = [{:?}]\nuse = [\"v6less\"]\n[[targets]]\ntarget = \"192.0.2.9\"\n[[targets]]\ntarget = \"2001:db8::9\"\n[daemon]\ndatabase = \"rblwatch.db\"\nsweep = \"1s\"\nhealth = \"1h\"\n[web]\nlisten = \"127.0.0.1:{port}\"\n",
            rbl.addr(),
            lists.display().to_string(),
        ),
    )
    .unwrap();
    let _d = crate::util::Daemon::start(&cfg);
    let page = crate::util::wait_for(
        "the list page with its health",
        Duration::from_secs(20),
        || {
            let (s, b) = crate::util::http_get(port, "/list/v6less");
            (s == 200 && b.contains("IPv6 targets unchecked")).then_some(b)
        },
    );
    assert!(
        page.contains("treated as IPv4-only this cycle")
            && page.contains("the list claims IPv6 but its IPv6 test points fail"),
        "{page}"
    );
    let v = crate::util::http_json(port, "/api/v1/lists/v6less");
    let why = v["ipv6_down"].as_str().unwrap_or_default();
    assert!(why.contains("IPv4 only this cycle"), "{v}");
    // the sweep that records the IPv6 pair may end after the health check the list page shows
    let target = crate::util::wait_for(
        "the IPv6 target's page with its unchecked pair",
        Duration::from_secs(20),
        || {
            let (s, b) = crate::util::http_get(port, "/target/2001:db8::9");
            (s == 200 && b.contains("IPv4 only this cycle")).then_some(b)
        },
    );
    assert!(!target.contains("<b>clear</b>"), "{target}");
}
