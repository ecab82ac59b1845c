//! Google Postmaster Tools v2 against a local HTTPS stand-in (a real HTTPS
//! server on 127.0.x.y with a test CA): the token endpoint checks the JWT
//! bearer grant's claims and verifies its RS256 signature with the test key's
//! public half (openssl), the v2 endpoints answer in the documented shapes
//! (tests/fixtures/postmaster/README.md), error answers included. One
//! long-lived daemon sees the spam rate cross 0.3 % and recover; another
//! meets every failure, alerts once, keeps sweeping and recovers. The key and
//! the access token appear in no log, page, API answer or database.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rusqlite::Connection;

use crate::feeds::{contains, count, db, db_bytes, test_ca};
use crate::util::{
    fixtures, free_tcp_port, http_get, http_json, stderr, wait_for, write_config, Daemon, Rbldnsd,
};

/// How the stand-in answers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// The documented answers.
    Normal,
    /// `domainStats:query` answers `{}`: no day has figures.
    Empty,
    /// The token endpoint checks signatures against another key (the
    /// service account's key was deleted or rotated): 400 invalid_grant.
    OtherKey,
    /// The API refuses every token: 401.
    Unauthorized,
    /// 403 PERMISSION_DENIED.
    Forbidden,
    /// 429 with Retry-After: 4.
    RateLimited,
    /// The API never answers.
    Hang,
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 with JSON of the wrong shape.
    WrongShape,
    /// 200 with a 2 GB body (streamed, never held).
    Huge,
}

struct Inner {
    mode: Mode,
    /// Yesterday's spam rate (0 to 1).
    spam: f64,
    /// The public key the token endpoint verifies with.
    trusted: PathBuf,
    tokens: Vec<String>,
    token_requests: usize,
    bad_assertions: Vec<String>,
    /// API calls: when, and what.
    calls: Vec<(Instant, String)>,
    queries: Vec<serde_json::Value>,
    dir: PathBuf,
    token_url: String,
    /// The tokens' life (`expires_in`).
    expires_in: i64,
}

type Shared = Arc<Mutex<Inner>>;

/// The stand-in: its address, CA, the service-account key file and the key's secret text.
struct Stub {
    url: String,
    ca: PathBuf,
    key_file: PathBuf,
    /// A line of the private key's PEM body: must appear nowhere.
    key_marker: String,
    state: Shared,
    _dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "openssl {args:?}: {}", stderr(&o));
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixtures().join("postmaster").join(name)).unwrap()
}

impl Stub {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let addr = format!("127.0.{}.{}", fastrand::u8(1..250), fastrand::u8(2..250));
        let ca = test_ca(d, &addr);
        // the service account's key, and another (the key Google would know after a rotation)
        for k in ["sa", "other"] {
            openssl(
                d,
                &[
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:2048",
                    "-out",
                    &format!("{k}.pem"),
                ],
            );
            openssl(
                d,
                &[
                    "pkey",
                    "-in",
                    &format!("{k}.pem"),
                    "-pubout",
                    "-out",
                    &format!("{k}.pub"),
                ],
            );
        }
        let pem = std::fs::read_to_string(d.join("sa.pem")).unwrap();
        let key_marker = pem.lines().nth(2).unwrap().to_string();
        let key_file = d.join("service-account.json");
        std::fs::write(
            &key_file,
            serde_json::json!({
                "type": "service_account", "project_id": "rblwatch-test", "private_key_id": "k1",
                "private_key": pem, "client_email": "rblwatch@rblwatch-test.iam.gserviceaccount.com",
                "client_id": "1", "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": "https://oauth2.googleapis.com/token",
            })
            .to_string(),
        )
        .unwrap();

        let listener = std::net::TcpListener::bind((addr.as_str(), 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = format!("https://{addr}:{port}");
        let state: Shared = Arc::new(Mutex::new(Inner {
            mode: Mode::Normal,
            spam: 0.0005,
            trusted: d.join("sa.pub"),
            tokens: Vec::new(),
            token_requests: 0,
            bad_assertions: Vec::new(),
            calls: Vec::new(),
            queries: Vec::new(),
            dir: d.to_path_buf(),
            token_url: format!("{url}/token"),
            expires_in: 3599,
        }));
        let tls = tls_config(&ca.cert, &ca.key);
        let app = axum::Router::new()
            .route("/token", post(token))
            .route("/v2/domains/{*rest}", get(compliance).post(stats))
            .with_state(state.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(serve(listener, tls, app));
        });
        Stub {
            url,
            ca: ca.ca,
            key_file,
            key_marker,
            state,
            _dir: dir,
        }
    }

    fn set(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    fn spam(&self, rate: f64) {
        self.state.lock().unwrap().spam = rate;
    }

    fn calls(&self) -> usize {
        self.state.lock().unwrap().calls.len()
    }

    fn token_requests(&self) -> usize {
        self.state.lock().unwrap().token_requests
    }

    fn tokens(&self) -> Vec<String> {
        self.state.lock().unwrap().tokens.clone()
    }

    /// Waits for `n` more API calls than now.
    fn wait_calls(&self, n: usize) {
        let start = self.calls();
        wait_for("API calls to the stand-in", Duration::from_secs(20), || {
            (self.calls() >= start + n).then_some(())
        });
    }

    fn feed(&self, extra: &str) -> String {
        format!(
            "[[feeds]]\nkind = \"google_postmaster\"\nname = \"gmail\"\nservice_account = \"file:{}\"\ndomains = [\"example.com\"]\ntoken_url = \"{}/token\"\napi_url = \"{}\"\nca_file = {:?}\ninterval = \"1s\"\ndays = 5\n{extra}\n",
            self.key_file.display(),
            self.url,
            self.url,
            self.ca.display().to_string()
        )
    }
}

fn tls_config(cert: &Path, key: &Path) -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
}

async fn serve(listener: std::net::TcpListener, tls: tokio_rustls::TlsAcceptor, app: axum::Router) {
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let (tls, app) = (tls.clone(), app.clone());
        tokio::spawn(async move {
            let Ok(stream) = tls.accept(tcp).await else {
                return;
            };
            let svc = hyper_util::service::TowerToHyperService::new(app);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn json(status: StatusCode, body: String) -> Response {
    (
        status,
        [("content-type", "application/json; charset=UTF-8")],
        body,
    )
        .into_response()
}

/// Whether the assertion is a JWT bearer grant with Google's claims, signed
/// by the key whose public half is `trusted` (checked by openssl).
fn check_assertion(s: &Inner, form: &str) -> Result<(), String> {
    let mut grant = None;
    let mut assertion = None;
    for kv in form.split('&') {
        match kv.split_once('=') {
            Some(("grant_type", v)) => grant = Some(v.replace("%3A", ":")),
            Some(("assertion", v)) => assertion = Some(v.to_string()),
            _ => {}
        }
    }
    if grant.as_deref() != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return Err(format!("grant_type {grant:?}"));
    }
    let a = assertion.ok_or("no assertion")?;
    let parts: Vec<&str> = a.split('.').collect();
    if parts.len() != 3 {
        return Err("not three parts".into());
    }
    let dec = |p: &str| -> Result<serde_json::Value, String> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())
    };
    let header = dec(parts[0])?;
    let claims = dec(parts[1])?;
    if header["alg"] != "RS256" || header["typ"] != "JWT" {
        return Err(format!("header {header}"));
    }
    let now = chrono::Utc::now().timestamp();
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap_or(0),
        claims["exp"].as_i64().unwrap_or(0),
    );
    if claims["iss"] != "rblwatch@rblwatch-test.iam.gserviceaccount.com"
        || claims["aud"] != s.token_url.as_str()
        || claims["scope"] != "https://www.googleapis.com/auth/postmaster.traffic.readonly"
        || exp - iat != 3600
        || (iat - now).abs() > 300
    {
        return Err(format!("claims {claims}"));
    }
    let n = fastrand::u64(..);
    let (msg, sig) = (s.dir.join(format!("msg{n}")), s.dir.join(format!("sig{n}")));
    std::fs::write(&msg, format!("{}.{}", parts[0], parts[1])).unwrap();
    std::fs::write(
        &sig,
        URL_SAFE_NO_PAD
            .decode(parts[2])
            .map_err(|e| e.to_string())?,
    )
    .unwrap();
    let ok = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&s.trusted)
        .arg("-signature")
        .arg(&sig)
        .arg(&msg)
        .output()
        .unwrap()
        .status
        .success();
    if ok {
        Ok(())
    } else {
        Err("bad signature".into())
    }
}

async fn token(State(st): State<Shared>, body: String) -> Response {
    let mut s = st.lock().unwrap();
    s.token_requests += 1;
    if s.mode == Mode::OtherKey {
        s.trusted = s.dir.join("other.pub");
    } else {
        s.trusted = s.dir.join("sa.pub");
    }
    if let Err(why) = check_assertion(&s, &body) {
        s.bad_assertions.push(why);
        return json(StatusCode::BAD_REQUEST, fixture("token_invalid_grant.json"));
    }
    let t = format!("ya29.stub-{}", fastrand::u64(..));
    s.tokens.push(t.clone());
    json(
        StatusCode::OK,
        serde_json::json!({"access_token": t, "expires_in": s.expires_in, "token_type": "Bearer"})
            .to_string(),
    )
}

/// The mode's answer for an API call, or None to answer normally (after the token check).
async fn api_gate(st: &Shared, headers: &HeaderMap, what: String) -> Option<Response> {
    let mode = {
        let mut s = st.lock().unwrap();
        s.calls.push((Instant::now(), what));
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let known = auth
            .strip_prefix("Bearer ")
            .is_some_and(|t| s.tokens.iter().any(|x| x == t));
        if !known || s.mode == Mode::Unauthorized {
            return Some(json(
                StatusCode::UNAUTHORIZED,
                r#"{"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}}"#.into(),
            ));
        }
        s.mode
    };
    match mode {
        Mode::Forbidden => Some(json(StatusCode::FORBIDDEN, fixture("error_403.json"))),
        Mode::RateLimited => Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "4"), ("content-type", "application/json")],
                fixture("error_429.json"),
            )
                .into_response(),
        ),
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            None
        }
        Mode::Garbage => Some(
            (
                StatusCode::OK,
                "<html><body>502 Bad Gateway</body></html>\u{0}\u{7f}",
            )
                .into_response(),
        ),
        Mode::WrongShape => Some(json(
            StatusCode::OK,
            r#"{"domainStats": {"metric": "spam_rate", "value": 0.5}}"#.into(),
        )),
        Mode::Huge => {
            static CHUNK: [u8; 1 << 20] = [b' '; 1 << 20];
            let chunks = futures::stream::iter(
                (0..2048).map(|_| Ok::<_, std::io::Error>(Bytes::from_static(&CHUNK))),
            );
            Some(
                (
                    StatusCode::OK,
                    [("content-type", "application/json")],
                    Body::from_stream(chunks),
                )
                    .into_response(),
            )
        }
        _ => None,
    }
}

async fn compliance(
    State(st): State<Shared>,
    axum::extract::Path(rest): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = api_gate(&st, &headers, format!("get {rest}")).await {
        return r;
    }
    assert_eq!(rest, "example.com/complianceStatus");
    json(StatusCode::OK, fixture("compliance_status.json"))
}

fn date_of(v: &serde_json::Value) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(
        v["year"].as_i64().unwrap() as i32,
        v["month"].as_u64().unwrap() as u32,
        v["day"].as_u64().unwrap() as u32,
    )
    .unwrap()
}

/// `POST /v2/domains/{domain}/domainStats:query`: the request checked against
/// the documented `QueryDomainStatsRequest`, figures for the days asked:
/// yesterday the current spam rate, the day before nothing (not enough
/// volume), earlier days a quiet 0.03 %.
async fn stats(
    State(st): State<Shared>,
    axum::extract::Path(rest): axum::extract::Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Some(r) = api_gate(&st, &headers, format!("query {rest}")).await {
        return r;
    }
    assert_eq!(rest, "example.com/domainStats:query");
    let q: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut s = st.lock().unwrap();
    s.queries.push(q.clone());
    if s.mode == Mode::Empty {
        return json(StatusCode::OK, fixture("domain_stats_empty.json"));
    }
    assert_eq!(q["aggregationGranularity"], "DAILY");
    let range = &q["timeQuery"]["dateRanges"]["dateRanges"][0];
    let (start, end) = (date_of(&range["start"]), date_of(&range["end"]));
    let names: Vec<String> = q["metricDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect();
    let yesterday = chrono::Utc::now().date_naive().pred_opt().unwrap();
    let mut out = Vec::new();
    let mut d = start;
    while d <= end {
        let figure = |name: &str| -> Option<f64> {
            if d == yesterday.pred_opt().unwrap() {
                return None; // not enough volume that day
            }
            Some(match name {
                "spam_rate" if d == yesterday => s.spam,
                "spam_rate" => 0.0003,
                "spf_success_rate" | "dkim_success_rate" | "dmarc_success_rate" => 0.99,
                "tls_rate" => 1.0,
                "delivery_error_rate" => 0.01,
                _ => 0.005,
            })
        };
        for n in &names {
            if let Some(v) = figure(n) {
                out.push(serde_json::json!({
                    "name": format!("domains/example.com/domainStats/{}", fastrand::u32(..)),
                    "metric": n,
                    "date": {"year": chrono::Datelike::year(&d), "month": chrono::Datelike::month(&d), "day": chrono::Datelike::day(&d)},
                    "value": {"doubleValue": v},
                }));
            }
        }
        d = d.succ_opt().unwrap();
    }
    json(
        StatusCode::OK,
        serde_json::json!({"domainStats": out, "nextPageToken": ""}).to_string(),
    )
}

/// The key's text and every token issued appear in none of `texts` nor the database.
fn secrets_nowhere(stub: &Stub, dir: &Path, texts: &[(&str, String)]) {
    let mut secrets = vec![stub.key_marker.clone()];
    secrets.extend(stub.tokens());
    let db = db_bytes(dir);
    for s in &secrets {
        for (what, t) in texts {
            assert!(!t.contains(s.as_str()), "a secret in {what}");
        }
        assert!(!contains(&db, s), "a secret in the database");
    }
}

fn config(dir: &Path, rbl: &Rbldnsd, stub: &Stub, extra: &str) -> (PathBuf, u16) {
    let port = free_tcp_port();
    let text = format!(
        "[[targets]]\ntarget = \"192.0.2.10\"\n[daemon]\ndatabase = \"rblwatch.db\"\nsweep = \"2s\"\nhealth = \"1h\"\n{}\n[web]\nlisten = \"127.0.0.1:{port}\"\n",
        stub.feed(extra)
    );
    (write_config(dir, rbl, &["bl-test"], &text), port)
}

fn events(c: &Connection, kind: &str) -> Vec<(String, String)> {
    c.prepare("SELECT severity, summary FROM events WHERE kind = ?1 ORDER BY id")
        .and_then(|mut st| {
            st.query_map([kind], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()
        })
        .unwrap_or_default()
}

#[test]
fn story_the_gmail_spam_rate_crosses_google_limit_is_alerted_in_the_verdict_and_clears() {
    let stub = Stub::start();
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let (cfg, port) = config(dir.path(), &rbl, &stub, "timeout = \"5s\"");
    let d = Daemon::start(&cfg);
    let p = dir.path();
    // 0.05 % yesterday: figures stored, nothing to announce, all clear
    wait_for("the first read stored", Duration::from_secs(20), || {
        (count(
            &db(p),
            "SELECT count(*) FROM postmaster_days WHERE spam_rate IS NOT NULL",
        ) >= 4)
            .then_some(())
    });
    wait_for("a sweep", Duration::from_secs(20), || {
        (count(&db(p), "SELECT count(*) FROM sweeps WHERE status = 'done'") >= 1).then_some(())
    });
    let v = http_json(port, "/api/v1/status");
    assert_eq!(v["verdict"]["kind"], "all_clear", "{}", v["verdict"]);
    let g = http_json(port, "/api/v1/gmail");
    let dom = &g["domains"][0];
    assert_eq!(dom["domain"], "example.com");
    assert_eq!(dom["spam_rate"]["level"], "ok", "{g}");
    assert_eq!(
        dom["needs_work"],
        serde_json::json!(["DMARC_ALIGNMENT", "ONE_CLICK_UNSUBSCRIBE"])
    );
    // the day before yesterday had no figures: said as such, never 0
    let quiet = &dom["days"][1];
    assert_eq!(quiet["enough_volume"], false, "{dom}");
    assert_eq!(quiet["spam_rate"], serde_json::Value::Null);
    assert_eq!(quiet["text"], "not enough volume (Gmail gave no figures)");
    let (_, page) = http_get(port, "/gmail");
    assert!(page.contains("not enough volume"), "{page}");
    assert!(
        page.contains("spam rate 0.05 %") && page.contains("99.00 %"),
        "{page}"
    );
    assert_eq!(dom["days"][0]["percent"]["spam_rate"], "0.05 %");
    assert!(page.contains("ONE_CLICK_UNSUBSCRIBE") && page.contains("NO_UNSUB_PROMO_SPAM_REPORTS"));

    // 0.42 %: over Google's 0.3 %: a critical event, once, and the headline
    stub.spam(0.0042);
    let crit = wait_for("gmail_spam_rate", Duration::from_secs(20), || {
        let e = events(&db(p), "gmail_spam_rate");
        (!e.is_empty()).then_some(e)
    });
    assert_eq!(crit[0].0, "critical");
    assert!(
        crit[0].1.contains("example.com: Gmail spam rate 0.42 %"),
        "{crit:?}"
    );
    assert!(
        crit[0].1.contains("at or over Google's limit of 0.30 %"),
        "{crit:?}"
    );
    let v = http_json(port, "/api/v1/status");
    assert_eq!(v["verdict"]["kind"], "gmail_spam_rate", "{}", v["verdict"]);
    assert_eq!(
        v["verdict"]["text"],
        "Gmail spam rate too high: example.com"
    );
    let (_, overview) = http_get(port, "/");
    assert!(overview.contains("Gmail spam rate too high"), "{overview}");
    // more reads at the same level: no second event
    stub.wait_calls(6);
    assert_eq!(events(&db(p), "gmail_spam_rate").len(), 1);

    // back to 0.02 %: cleared, and all clear again
    stub.spam(0.0002);
    let cleared = wait_for("gmail_spam_rate_cleared", Duration::from_secs(20), || {
        let e = events(&db(p), "gmail_spam_rate_cleared");
        (!e.is_empty()).then_some(e)
    });
    assert!(cleared[0].1.contains("0.02 %"), "{cleared:?}");
    let v = http_json(port, "/api/v1/status");
    assert_eq!(v["verdict"]["kind"], "all_clear", "{}", v["verdict"]);

    // one token for every read: cached until it expires
    assert_eq!(stub.token_requests(), 1, "{}", d.log());
    assert!(stub.state.lock().unwrap().bad_assertions.is_empty());
    let mut texts = vec![("the log", d.log())];
    for path in [
        "/",
        "/gmail",
        "/api/v1/gmail",
        "/api/v1/status",
        "/api/v1/events",
        "/metrics",
        "/events",
    ] {
        let (code, body) = http_get(port, path);
        assert_eq!(code, 200, "{path}: {body}");
        texts.push((path, body));
    }
    secrets_nowhere(&stub, p, &texts);
}

#[test]
fn postmaster_failures_are_contained_alerted_once_and_recover() {
    let stub = Stub::start();
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    // the key Google knows is another one (deleted or rotated): 400 invalid_grant
    stub.set(Mode::OtherKey);
    let (cfg, port) = config(
        p,
        &rbl,
        &stub,
        "timeout = \"1500ms\"\nmax_body_bytes = 1048576",
    );
    let d = Daemon::start(&cfg);
    d.wait_log(
        "refused the service account (invalid_grant: Invalid JWT Signature.)",
        Duration::from_secs(20),
    );
    let sweeps = |c: &Connection| count(c, "SELECT count(*) FROM sweeps WHERE status = 'done'");
    for (mode, says) in [
        (Mode::Unauthorized, "401 unauthorized"),
        (
            Mode::Forbidden,
            "403 permission denied (PERMISSION_DENIED The caller does not have permission)",
        ),
        (Mode::Hang, "no answer within 1.5s"),
        (
            Mode::Garbage,
            "not the documented answer (not JSON at line 1, column 1)",
        ),
        (Mode::WrongShape, "JSON of the wrong shape"),
        (Mode::Huge, "the answer is larger than 1048576 bytes"),
    ] {
        stub.set(mode);
        let before = sweeps(&db(p));
        d.wait_log(says, Duration::from_secs(20));
        // recorded where a postmaster looks, not only in the log
        wait_for(
            "the failure on /api/v1/gmail",
            Duration::from_secs(10),
            || {
                let g = http_json(port, "/api/v1/gmail");
                g["feeds"][0]["last_read"]["error"]
                    .as_str()
                    .is_some_and(|e| e.contains(says))
                    .then_some(())
            },
        );
        // the sweeps go on meanwhile
        wait_for(
            "a sweep while the feed fails",
            Duration::from_secs(20),
            || (sweeps(&db(p)) > before).then_some(()),
        );
    }
    // 429: nothing is asked again before Retry-After (4 s) has passed
    stub.set(Mode::RateLimited);
    d.wait_log("429 rate limited, next try in 4 s", Duration::from_secs(20));
    let at_429 = {
        let s = stub.state.lock().unwrap();
        s.calls.last().unwrap().0
    };
    stub.set(Mode::Normal);
    stub.wait_calls(1);
    let next = {
        let s = stub.state.lock().unwrap();
        s.calls
            .iter()
            .find(|(t, _)| *t > at_429)
            .map(|(t, _)| *t)
            .unwrap()
    };
    assert!(
        next.duration_since(at_429) >= Duration::from_secs(4),
        "asked again {:?} after a 429 with Retry-After: 4",
        next.duration_since(at_429)
    );
    let c = db(p);
    wait_for("feed_recovered", Duration::from_secs(20), || {
        (!events(&c, "feed_recovered").is_empty()).then_some(())
    });
    let failed = events(&c, "feed_failed");
    assert_eq!(
        failed.len(),
        1,
        "alerted once for the whole failing stretch: {failed:?}"
    );
    assert!(
        failed[0]
            .1
            .contains("feed gmail cannot be read: the token endpoint refused the service account"),
        "{failed:?}"
    );
    assert_eq!(events(&c, "feed_recovered").len(), 1);
    assert!(
        count(
            &c,
            "SELECT count(*) FROM postmaster_days WHERE spam_rate IS NOT NULL"
        ) > 0
    );

    // a range Google has no figures for: every day is "not enough volume", nothing is 0
    stub.set(Mode::Empty);
    let n = stub.state.lock().unwrap().queries.len();
    wait_for("an empty answer read", Duration::from_secs(20), || {
        (stub.state.lock().unwrap().queries.len() > n + 1).then_some(())
    });
    wait_for("the days emptied", Duration::from_secs(20), || {
        (count(
            &db(p),
            "SELECT count(*) FROM postmaster_days WHERE spam_rate IS NOT NULL",
        ) == 0)
            .then_some(())
    });
    assert_eq!(
        count(
            &db(p),
            "SELECT count(*) FROM postmaster_days WHERE spam_rate = 0"
        ),
        0
    );
    let g = http_json(port, "/api/v1/gmail");
    assert_eq!(
        g["domains"][0]["text"],
        "example.com: no Gmail spam rate lately (not enough volume)"
    );
    let v = http_json(port, "/api/v1/status");
    assert!(
        v["verdict"]["also"]
            .to_string()
            .contains("example.com: no Gmail spam rate lately (not enough volume"),
        "{}",
        v["verdict"]
    );
    assert_eq!(
        events(&db(p), "feed_failed").len(),
        1,
        "an empty day is no failure"
    );
    assert_eq!(g["feeds"][0]["name"], "gmail");
    assert_eq!(
        g["feeds"][0]["last_read"]["error"],
        serde_json::Value::Null,
        "{g}"
    );
    let mut texts = vec![("the log", d.log())];
    for path in [
        "/",
        "/gmail",
        "/api/v1/gmail",
        "/api/v1/status",
        "/api/v1/events",
        "/events",
    ] {
        let (code, body) = http_get(port, path);
        assert_eq!(code, 200, "{path}: {body}");
        texts.push((path, body));
    }
    secrets_nowhere(&stub, p, &texts);
}

#[test]
fn the_token_is_kept_while_it_lasts_and_renewed_before_it_expires() {
    let stub = Stub::start();
    // 62 s: usable for 2 s (a token is renewed a minute before it expires)
    stub.state.lock().unwrap().expires_in = 62;
    let rbl = Rbldnsd::start();
    let dir = tempfile::tempdir().unwrap();
    let (cfg, _) = config(dir.path(), &rbl, &stub, "");
    let d = Daemon::start(&cfg);
    wait_for("reads over six seconds", Duration::from_secs(30), || {
        (stub.calls() >= 12).then_some(())
    });
    let (tokens, reads) = (stub.token_requests(), stub.calls() / 2);
    assert!(
        tokens >= 2 && tokens < reads,
        "{tokens} tokens for {reads} reads\n{}",
        d.log()
    );
    assert!(stub.state.lock().unwrap().bad_assertions.is_empty());
}
