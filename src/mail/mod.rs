//! Mail-server telemetry: queue depth, bounces, NDR volume.
//!
//! Each source kind is a pure parser tested on strings (`postqueue`,
//! `postfix_log`, `exim`, `command`, `prometheus`) plus the thin reader here
//! that runs the command or fetches the URL, always with a timeout. A failing
//! source is logged and counted; it never stops the others.
//! [`delivery`] parses per-recipient delivery results (with the remote reply)
//! from the Postfix and Exim logs, for [`crate::replies`] to classify;
//! [`rejections`] tallies the classified results of each read of a log source.

pub mod command;
pub mod delivery;
pub mod exim;
pub mod exim_log;
pub mod ledger;
pub mod postfix_log;
pub mod postqueue;
pub mod prometheus;
pub mod rejections;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::config::{SourceConf, SourceKind};
use crate::secret::Secret;

/// One measured value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// Metric name within its source (`queue_depth`, `ndr_generated`…).
    pub metric: String,
    /// Value.
    pub value: f64,
}

impl Sample {
    /// A sample.
    pub fn new(metric: &str, value: f64) -> Self {
        Sample {
            metric: metric.to_string(),
            value,
        }
    }
}

/// A parse failure with its line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {msg}")]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub msg: String,
}

impl ParseError {
    /// A new error.
    pub fn new(line: usize, msg: String) -> Self {
        ParseError { line, msg }
    }
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Over its timeout (the command was killed).
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The command could not start or exited non-zero.
    #[error("{0}")]
    Command(String),
    /// HTTP failure.
    #[error("{0}")]
    Http(String),
    /// Unparseable output.
    #[error("cannot parse output: {0}")]
    Parse(#[from] ParseError),
    /// I/O.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A log that cannot be followed.
    #[error(transparent)]
    Log(#[from] postfix_log::LogError),
}

/// Most a command source may print (a `postqueue -j` of about 100,000 queued
/// messages). More is an error, and the command is killed.
pub const MAX_COMMAND_OUTPUT: usize = 32 << 20;

/// Most an HTTP source's body may hold.
pub const MAX_HTTP_BODY: usize = 8 << 20;

/// Runs argv (no shell) with a cleared environment (plus `env`) in its own
/// process group, returns stdout; the group is killed at `timeout` or when the
/// output passes [`MAX_COMMAND_OUTPUT`].
pub async fn run_command(
    argv: &[String],
    env: &[(String, String)],
    timeout: Duration,
) -> Result<String, SourceError> {
    use crate::process::{self, Ending, Limit};
    let prog = argv.first().map_or("", String::as_str);
    let f = process::run(
        argv,
        &process::base_env(env),
        None,
        timeout,
        Limit::Fail(MAX_COMMAND_OUTPUT),
    )
    .await
    .map_err(|e| SourceError::Command(format!("cannot run {prog}: {e}")))?;
    match f.ending {
        Ending::TimedOut => Err(SourceError::Timeout(timeout)),
        Ending::TooMuchOutput => Err(SourceError::Command(format!(
            "{prog} printed more than {} MiB; killed",
            MAX_COMMAND_OUTPUT >> 20
        ))),
        Ending::Exited { success: false, .. } => {
            let code = match f.ending {
                Ending::Exited { code: Some(c), .. } => format!("exit status {c}"),
                _ => "a signal".into(),
            };
            Err(SourceError::Command(format!(
                "{prog} exited with {code}: {}",
                f.stderr.trim()
            )))
        }
        Ending::Exited { success: true, .. } => Ok(String::from_utf8_lossy(&f.stdout).into_owned()),
    }
}

/// Fetches a URL's body as text, with the timeout.
pub async fn fetch(
    url: &Secret,
    header: Option<&(String, Secret)>,
    timeout: Duration,
) -> Result<String, SourceError> {
    let client = http_client();
    let mut req = client.get(url.expose()).timeout(timeout);
    if let Some((k, v)) = header {
        req = req.header(k.as_str(), v.expose());
    }
    // Error texts from reqwest include the URL, which may carry a token: never show them raw.
    let resp = req
        .send()
        .await
        .map_err(|e| SourceError::Http(redacted_http_error(&e)))?;
    if !resp.status().is_success() {
        return Err(SourceError::Http(format!("HTTP status {}", resp.status())));
    }
    // Read as it comes, never more than the cap: an endpoint that streams
    // forever ends at the cap or the timeout, not in memory.
    let mut resp = resp;
    let mut body = Vec::new();
    let read = async {
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| SourceError::Http(redacted_http_error(&e)))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_HTTP_BODY {
                return Err(SourceError::Http(format!(
                    "the response is larger than {} MiB",
                    MAX_HTTP_BODY >> 20
                )));
            }
        }
        Ok(())
    };
    match tokio::time::timeout(timeout, read).await {
        Err(_) => return Err(SourceError::Timeout(timeout)),
        Ok(r) => r?,
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// One HTTP client for every HTTP source (connection reuse; rustls).
fn http_client() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .user_agent(concat!("rblwatch/", env!("CARGO_PKG_VERSION")))
                .build()
                .unwrap_or_default()
        })
        .clone()
}

/// What went wrong with a request, without its URL (which may hold a token).
pub(crate) fn redacted_http_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else if e.is_decode() || e.is_body() {
        "bad response body".into()
    } else {
        // the error's own words and causes, with the URL (which may hold a token) removed
        let mut msg = String::from("request failed");
        let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
        while let Some(s) = src {
            msg.push_str(&format!(": {s}"));
            src = s.source();
        }
        msg
    }
}

/// Picks values out of a JSON document by pointer.
pub fn pick_json(text: &str, values: &BTreeMap<String, String>) -> Result<Vec<Sample>, ParseError> {
    let doc: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| ParseError::new(e.line(), format!("not JSON: {e}")))?;
    let mut out = Vec::new();
    for (name, ptr) in values {
        let v = doc
            .pointer(ptr)
            .ok_or_else(|| ParseError::new(1, format!("{ptr} not found")))?;
        let n = v
            .as_f64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .ok_or_else(|| ParseError::new(1, format!("{ptr} is not a number")))?;
        out.push(Sample::new(name, n));
    }
    Ok(out)
}

/// Reads a source once (except the log sources, which the daemon reads with their stored position).
pub async fn read(src: &SourceConf, now: i64) -> Result<Vec<Sample>, SourceError> {
    let t = src.timeout;
    match &src.kind {
        SourceKind::Postfix { command } => Ok(postqueue::parse(
            &run_command(command, &src.env, t).await?,
            now,
        )?),
        SourceKind::Exim { command } => Ok(exim::parse(&run_command(command, &src.env, t).await?)?),
        SourceKind::Command { command } => {
            Ok(command::parse(&run_command(command, &src.env, t).await?)?)
        }
        SourceKind::HttpJson {
            url,
            header,
            values,
        } => Ok(pick_json(&fetch(url, header.as_ref(), t).await?, values)?),
        SourceKind::Prometheus {
            url,
            header,
            metrics,
        } => {
            let text = fetch(url, header.as_ref(), t).await?;
            let mut out = Vec::new();
            for (name, sel) in metrics {
                // no series at all is an error (a typo, a renamed metric), never a 0
                let v = prometheus::pick(&text, sel)?.ok_or_else(|| {
                    SourceError::Parse(ParseError::new(
                        1,
                        format!("no series matches {name} = {sel}"),
                    ))
                })?;
                out.push(Sample::new(name, v));
            }
            Ok(out)
        }
        SourceKind::PostfixLog { .. } | SourceKind::EximLog { .. } => Err(SourceError::Command(
            "log sources are read with their stored position".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hanging_command_is_killed_at_its_timeout() {
        let started = std::time::Instant::now();
        let r = run_command(
            &["sleep".into(), "30".into()],
            &[],
            Duration::from_millis(300),
        )
        .await;
        assert!(matches!(r, Err(SourceError::Timeout(_))), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn failing_commands_are_clear_errors() {
        let r = run_command(
            &["sh".into(), "-c".into(), "echo oops >&2; exit 3".into()],
            &[],
            Duration::from_secs(5),
        )
        .await;
        let e = r.unwrap_err().to_string();
        assert!(e.contains("oops") && e.contains("3"), "{e}");
        assert!(
            run_command(&["/nonexistent/x".into()], &[], Duration::from_secs(1))
                .await
                .is_err()
        );
    }

    fn open_fds() -> usize {
        std::fs::read_dir("/proc/self/fd").unwrap().count()
    }

    /// Issue 21: a command source whose grandchildren keep its stdout open.
    /// Its value is kept at every read, and after 100 reads no descriptor of
    /// ours and none of the grandchildren is left (other tests of this binary
    /// run beside this one, hence the small slack on descriptors).
    #[tokio::test]
    async fn a_grandchild_holding_stdout_keeps_the_value_and_leaves_nothing_behind() {
        // marked with our pid: strays of another test run are not ours
        let (a, b) = (
            format!("2718.{}", std::process::id()),
            format!("2719.{}", std::process::id()),
        );
        let argv: Vec<String> = vec![
            "sh".into(),
            "-c".into(),
            format!("echo 42; sleep {a} & setsid sleep {b} & exit 0"),
        ];
        let fds = open_fds();
        let started = std::time::Instant::now();
        for i in 0..100 {
            let out = run_command(&argv, &[], Duration::from_secs(10)).await;
            let samples = command::parse(&out.unwrap_or_else(|e| panic!("read {i}: {e}")))
                .unwrap_or_else(|e| panic!("read {i}: {e}"));
            assert_eq!(samples, vec![Sample::new("value", 42.0)], "read {i}");
        }
        let took = started.elapsed();
        assert!(took < Duration::from_secs(60), "100 reads took {took:?}");
        let left = |n: &str| crate::process::tests::live_with_cmdline(&["sleep", n]);
        let gone = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            left(&a) + left(&b) == 0
        });
        assert!(
            gone,
            "{} grandchildren outlive their reads",
            left(&a) + left(&b)
        );
        let after = open_fds();
        assert!(
            after <= fds + 10,
            "descriptors: {fds} before, {after} after"
        );
    }

    #[test]
    fn json_pointers() {
        let v: BTreeMap<String, String> = [("q".to_string(), "/queue/total".to_string())]
            .into_iter()
            .collect();
        assert_eq!(
            pick_json(r#"{"queue": {"total": 12}}"#, &v).unwrap()[0].value,
            12.0
        );
        assert!(pick_json(r#"{"queue": {}}"#, &v).is_err());
        assert!(pick_json("<html>", &v).is_err());
    }
}
