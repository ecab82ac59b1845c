use super::*;

const COMPLIANCE: &str = include_str!("../../../tests/fixtures/postmaster/compliance_status.json");
const STATS: &str = include_str!("../../../tests/fixtures/postmaster/domain_stats.json");
const EMPTY: &str = include_str!("../../../tests/fixtures/postmaster/domain_stats_empty.json");

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

/// A fresh RSA key made by openssl, as a service-account key file, and its public half.
fn test_key(dir: &std::path::Path) -> (String, std::path::PathBuf) {
    let run = |args: &[&str]| {
        let o = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    run(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        "k.pem",
    ]);
    run(&["pkey", "-in", "k.pem", "-pubout", "-out", "pub.pem"]);
    let pem = std::fs::read_to_string(dir.join("k.pem")).unwrap();
    let json = serde_json::json!({
        "type": "service_account", "project_id": "p", "private_key_id": "kid-1",
        "private_key": pem, "client_email": "rblwatch@p.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token",
    });
    (json.to_string(), dir.join("pub.pem"))
}

#[test]
fn the_jwt_carries_googles_claims_and_an_rs256_signature_openssl_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (json, public) = test_key(dir.path());
    let sa = parse_key(&json).unwrap();
    assert!(!format!("{sa:?}").contains("PRIVATE KEY"), "{sa:?}");
    let scopes = vec!["https://www.googleapis.com/auth/postmaster.traffic.readonly".to_string()];
    let c = claims(
        &sa,
        &scopes,
        "https://oauth2.googleapis.com/token",
        1_800_000_000,
    );
    assert_eq!(
        c,
        Claims {
            iss: "rblwatch@p.iam.gserviceaccount.com".into(),
            scope: scopes[0].clone(),
            aud: "https://oauth2.googleapis.com/token".into(),
            exp: 1_800_003_600,
            iat: 1_800_000_000,
        }
    );
    let jwt = sign(&sa, &c).unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(
        header,
        serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "kid-1"})
    );
    let back: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(back, c);
    // the signature checked by another implementation: openssl, with the public half only
    std::fs::write(dir.path().join("msg"), format!("{}.{}", parts[0], parts[1])).unwrap();
    std::fs::write(
        dir.path().join("sig"),
        URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
    )
    .unwrap();
    let verify = |msg: &str| {
        std::process::Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(&public)
            .args(["-signature", "sig", msg])
            .current_dir(dir.path())
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(verify("msg"));
    std::fs::write(dir.path().join("other"), "x.y").unwrap();
    assert!(!verify("other"));
}

#[test]
fn a_broken_key_is_refused_without_quoting_it() {
    for (bad, want) in [
        (
            "{\"client_email\": \"a@b\", \"private_key\": \"zzsecretzz\"",
            "not a service-account JSON key",
        ),
        (
            "{\"private_key\": \"zzsecretzz\"}",
            "`client_email` is missing",
        ),
        ("{\"client_email\": \"a@b\"}", "`private_key` is missing"),
        ("[\"zzsecretzz\"]", "not a service-account JSON key"),
    ] {
        let e = parse_key(bad).unwrap_err().to_string();
        assert!(e.contains(want), "{bad}: {e}");
        assert!(!e.contains("zzsecretzz"), "{e}");
    }
    let sa = parse_key("{\"client_email\": \"a@b\", \"private_key\": \"zzsecretzz\"}").unwrap();
    let e = sign(&sa, &claims(&sa, &[], "https://t", 0))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not a PEM private key") && !e.contains("zzsecretzz"),
        "{e}"
    );
}

#[test]
fn the_query_asks_every_figure_daily_with_the_documented_names() {
    let b = query_body(d(2026, 11, 26), d(2026, 12, 5), Some("tok"));
    assert_eq!(b["aggregationGranularity"], "DAILY");
    assert_eq!(b["pageToken"], "tok");
    assert_eq!(
        b["timeQuery"]["dateRanges"]["dateRanges"][0],
        serde_json::json!({"start": {"year": 2026, "month": 11, "day": 26}, "end": {"year": 2026, "month": 12, "day": 5}})
    );
    let defs = b["metricDefinitions"].as_array().unwrap();
    assert_eq!(defs.len(), 8);
    assert_eq!(
        defs[0],
        serde_json::json!({"name": "spam_rate", "baseMetric": {"standardMetric": "SPAM_RATE"}})
    );
    assert_eq!(
        defs[1],
        serde_json::json!({"name": "spf_success_rate", "baseMetric": {"standardMetric": "AUTH_SUCCESS_RATE"}, "filter": "auth_type = \"spf\""})
    );
    assert!(defs
        .iter()
        .any(|x| x["filter"] == "traffic_direction = \"inbound\""));
    assert!(defs
        .iter()
        .any(|x| x["filter"] == "error_type = \"reject\""));
}

#[test]
fn daily_stats_parse_and_a_day_without_figures_is_not_enough_volume_never_zero() {
    let (figs, next) = parse_stats(STATS.as_bytes()).unwrap();
    assert_eq!(next, None, "an empty nextPageToken is the last page");
    assert_eq!(figs.len(), 11);
    let ds = days(d(2026, 12, 2), d(2026, 12, 4), &figs);
    assert_eq!(ds.len(), 3);
    // 2026-12-02 is not in Google's answer: no figure, not 0
    assert!(ds[0].is_empty());
    assert_eq!(ds[0].spam_rate, None);
    assert_eq!(
        day_text(&ds[0]),
        "not enough volume (Gmail gave no figures)"
    );
    assert_eq!(ds[1].spam_rate, Some(0.0004));
    assert_eq!(ds[1].dkim_rate, Some(1.0));
    assert_eq!(ds[1].tls_rate, Some(1.0));
    assert_eq!(ds[1].reject_rate, Some(0.01));
    assert_eq!(day_text(&ds[1]), "spam rate 0.04 %");
    // floatValue and intValue (a string) are numbers too
    assert_eq!(ds[2].spf_rate, Some(0.5));
    assert_eq!(ds[2].delivery_error_rate, Some(0.0));
    assert_eq!(ds[2].dkim_rate, None);
    let s = standing("example.com", &ds).unwrap();
    assert_eq!(
        (s.level, s.day.as_str()),
        (SpamLevel::Critical, "2026-12-04")
    );
    assert_eq!(
        s.text(),
        "example.com: Gmail spam rate 0.42 % on 2026-12-04, at or over Google's limit of 0.30 %"
    );
    // an answer without domainStats: every day asked is without figures
    let (figs, _) = parse_stats(EMPTY.as_bytes()).unwrap();
    let ds = days(d(2026, 12, 1), d(2026, 12, 4), &figs);
    assert!(ds.iter().all(DayStats::is_empty));
    assert_eq!(standing("example.com", &ds), None);
}

#[test]
fn wrong_shapes_and_garbage_are_refused_without_quoting_them() {
    for (bad, want) in [
        ("zzgarbagezz", "not JSON"),
        ("{\"domainStats\": \"zzgarbagezz\"}", "wrong shape"),
        ("[1, 2]", "wrong shape"),
        ("{\"domainStats\": [{\"metric\": \"spam_rate\", \"value\": {\"doubleValue\": 0.1}}]}", "without a valid date"),
        ("{\"domainStats\": [{\"metric\": \"spam_rate\", \"date\": {\"year\": 2026, \"month\": 2, \"day\": 30}, \"value\": {\"doubleValue\": 0.1}}]}", "without a valid date"),
        ("{\"domainStats\": [{\"metric\": \"spam_rate\", \"date\": {\"year\": 2026, \"month\": 2, \"day\": 3}, \"value\": {}}]}", "has no number"),
        ("{\"domainStats\": [{\"metric\": \"spam_rate\", \"date\": {\"year\": 2026, \"month\": 2, \"day\": 3}, \"value\": {\"doubleValue\": 4.2}}]}", "not a rate from 0 to 1"),
        ("{\"domainStats\": [", "cut short"),
    ] {
        let e = parse_stats(bad.as_bytes()).unwrap_err();
        assert!(e.contains(want), "{bad}: {e}");
        assert!(!e.contains("zzgarbagezz"), "{e}");
    }
    assert!(parse_compliance(b"{\"complianceData\": {\"rowData\": 3}}")
        .unwrap_err()
        .contains("wrong shape"));
    // a metric not asked for is ignored, not an error
    let (f, _) = parse_stats(b"{\"domainStats\": [{\"metric\": \"new_thing\"}]}").unwrap();
    assert!(f.is_empty());
}

#[test]
fn compliance_keeps_googles_requirements_and_the_unsubscribe_reason() {
    let c = parse_compliance(COMPLIANCE.as_bytes()).unwrap();
    assert_eq!(c.requirements.len(), 11);
    assert_eq!(c.requirements[0].requirement, "SPF");
    assert_eq!(c.requirements[0].status, "COMPLIANT");
    assert_eq!(
        c.needs_work(),
        vec!["DMARC_ALIGNMENT", "ONE_CLICK_UNSUBSCRIBE"]
    );
    let one_click = c
        .requirements
        .iter()
        .find(|r| r.requirement == "ONE_CLICK_UNSUBSCRIBE")
        .unwrap();
    assert_eq!(
        one_click.reason.as_deref(),
        Some("NO_UNSUB_PROMO_SPAM_REPORTS")
    );
    assert!(c.subdomain.is_empty());
    assert_eq!(parse_compliance(b"{}").unwrap(), Compliance::default());
}

#[test]
fn spam_levels_follow_googles_guidelines_and_events_follow_the_level() {
    assert_eq!(SpamLevel::of(0.0), SpamLevel::Ok);
    assert_eq!(SpamLevel::of(0.00099), SpamLevel::Ok);
    assert_eq!(SpamLevel::of(0.001), SpamLevel::Warn);
    assert_eq!(SpamLevel::of(0.0029), SpamLevel::Warn);
    assert_eq!(SpamLevel::of(0.003), SpamLevel::Critical);
    let st = |rate: f64| SpamStanding {
        domain: "example.com".into(),
        level: SpamLevel::of(rate),
        rate,
        day: "2026-12-04".into(),
    };
    use crate::event::{EventKind, Severity};
    // first figure under 0.1 %: nothing to say
    assert!(spam_event("g", None, &st(0.0005), 1).is_none());
    let e = spam_event("g", None, &st(0.0042), 1).unwrap();
    assert_eq!(
        (e.kind, e.severity),
        (EventKind::GmailSpamRate, Severity::Critical)
    );
    assert_eq!(e.subject.target(), Some("example.com"));
    assert_eq!(e.details["percent"], "0.42 %");
    // the same level again: once only
    assert!(spam_event("g", Some(&st(0.0042)), &st(0.0051), 2).is_none());
    let e = spam_event("g", Some(&st(0.0042)), &st(0.0015), 3).unwrap();
    assert_eq!(
        (e.kind, e.severity),
        (EventKind::GmailSpamRate, Severity::Warning)
    );
    let e = spam_event("g", Some(&st(0.0015)), &st(0.0002), 4).unwrap();
    assert_eq!(
        (e.kind, e.severity),
        (EventKind::GmailSpamRateCleared, Severity::Info)
    );
    assert!(e.summary.contains("0.02 %"), "{}", e.summary);
}
