//! The backscatter (reverse-NDR) probe.
//!
//! A server that accepts mail for nonexistent recipients and bounces it later
//! sends its NDRs to whatever sender the spammer forged: backscatter. The
//! probe asks the server, in an SMTP conversation that never sends DATA:
//! EHLO, `MAIL FROM:<probe>`, `RCPT TO:<random nonexistent>`, `RCPT TO:<control>`,
//! RSET, QUIT. 5xx for the random address is safe; 2xx means the server will
//! bounce (vulnerable); 4xx (greylisting, recipient verification) is
//! inconclusive. Every step has a timeout and the transcript is kept. The
//! banner and replies are remote text: they are data, never markup.

use std::time::Duration;

use serde::Serialize;

use crate::config::{ProbeOpts, StartTls};
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadHalf, WriteHalf,
};
use tokio::net::TcpStream;

crate::spelling::closed_set! {
    /// The verdict.
    pub enum RndrVerdict {
        /// 5xx for the unknown recipient: not a backscatter source at RCPT time.
        RejectsUnknown = "rejects-unknown",
        /// 2xx for the unknown recipient: the server accepts and will bounce later.
        AcceptsUnknown = "accepts-unknown",
        /// 4xx, errors, timeouts: no conclusion.
        Inconclusive = "inconclusive",
    }
}

/// An SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// The text (all lines joined by a space). Remote text.
    pub text: String,
}

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ProbeReport {
    /// The verdict.
    pub verdict: RndrVerdict,
    /// Both the random and the control address were accepted: possibly a catch-all.
    pub catch_all_suspected: bool,
    /// Why, in words.
    pub why: String,
    /// The server probed.
    pub server: String,
    /// The domain probed.
    pub domain: String,
    /// The random address used.
    pub random_rcpt: String,
    /// Reply to RCPT for the random address.
    pub random_reply: Option<Reply>,
    /// Reply to RCPT for the control address.
    pub control_reply: Option<Reply>,
    /// The conversation (`C:` client, `S:` server lines).
    pub transcript: Vec<String>,
    /// The TLS version after STARTTLS, if it was used.
    pub tls: Option<String>,
}

/// Classifies the two RCPT replies (pure).
pub fn classify(random: &Reply, control: Option<&Reply>) -> (RndrVerdict, bool, String) {
    let class = |r: &Reply| r.code / 100;
    match class(random) {
        5 => match control {
            Some(c) if class(c) == 5 => (
                RndrVerdict::Inconclusive,
                false,
                format!("both the random and the control recipient were refused ({} / {}): the server refuses the probe itself", random.code, c.code),
            ),
            _ => (RndrVerdict::RejectsUnknown, false, format!("unknown recipient rejected at RCPT ({})", random.code)),
        },
        2 => {
            let both = control.is_some_and(|c| class(c) == 2);
            let why = if both {
                format!(
                    "unknown recipient accepted at RCPT ({}): the server will bounce mail to forged senders (backscatter); the control address was accepted too, so a catch-all or silent discard would look the same",
                    random.code
                )
            } else {
                format!("unknown recipient accepted at RCPT ({}): the server will bounce mail to forged senders (backscatter)", random.code)
            };
            (RndrVerdict::AcceptsUnknown, both, why)
        }
        4 => (
            RndrVerdict::Inconclusive,
            false,
            format!("temporary failure for the unknown recipient ({}): greylisting, recipient verification or rate limiting; retry later", random.code),
        ),
        _ => (RndrVerdict::Inconclusive, false, format!("unexpected reply {} to RCPT", random.code)),
    }
}

/// A random local part that cannot collide with real users.
pub fn random_local_part() -> String {
    format!("rblwatch-probe-{:016x}", fastrand::u64(..))
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
type Stream = Box<dyn Io>;

struct Conn {
    rd: BufReader<ReadHalf<Stream>>,
    wr: WriteHalf<Stream>,
    timeout: Duration,
    transcript: Vec<String>,
}

impl Conn {
    fn new(s: Stream, timeout: Duration, transcript: Vec<String>) -> Self {
        let (rd, wr) = tokio::io::split(s);
        Conn {
            rd: BufReader::new(rd),
            wr,
            timeout,
            transcript,
        }
    }

    /// Upgrades the connection after a 220 to STARTTLS.
    async fn upgrade(self, host: &str) -> Result<(Conn, String), (Vec<String>, String)> {
        let Conn {
            rd,
            wr,
            timeout,
            transcript,
        } = self;
        let plain = rd.into_inner().unsplit(wr);
        let name = match rustls::pki_types::ServerName::try_from(host.to_string()) {
            Ok(n) => n,
            Err(_) => return Err((transcript, format!("{host:?} is not a TLS server name"))),
        };
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(no_verify_config()));
        match tokio::time::timeout(timeout, connector.connect(name, plain)).await {
            Ok(Ok(tls)) => {
                let version = tls
                    .get_ref()
                    .1
                    .protocol_version()
                    .map(|v| format!("{v:?}"))
                    .unwrap_or_else(|| "TLS".into());
                let mut transcript = transcript;
                transcript.push(format!(
                    "-- TLS established ({version}); certificate not verified"
                ));
                Ok((Conn::new(Box::new(tls), timeout, transcript), version))
            }
            Ok(Err(e)) => Err((transcript, format!("TLS handshake failed: {e}"))),
            Err(_) => Err((
                transcript,
                format!("timeout after {timeout:?} in the TLS handshake"),
            )),
        }
    }
}

/// Accepts any certificate: the probe records the RCPT answer, it does not authenticate the server.
#[derive(Debug)]
struct NoVerify(rustls::crypto::WebPkiSupportedAlgorithms);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_schemes()
    }
}

fn no_verify_config() -> rustls::ClientConfig {
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let algs = provider.signature_verification_algorithms;
    let mut cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| rustls::ClientConfig::builder())
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(NoVerify(algs)))
        .with_no_client_auth();
    cfg.enable_sni = true;
    cfg
}

impl Conn {
    async fn reply(&mut self) -> Result<Reply, String> {
        let mut text = Vec::new();
        for _ in 0..100 {
            let mut line = String::new();
            let n =
                tokio::time::timeout(self.timeout, (&mut self.rd).take(4096).read_line(&mut line))
                    .await
                    .map_err(|_| {
                        format!("timeout after {:?} waiting for the server", self.timeout)
                    })?
                    .map_err(|e| format!("read error: {e}"))?;
            if n == 0 {
                return Err("connection closed by the server".into());
            }
            let line = line.trim_end_matches(['\r', '\n']).to_string();
            self.transcript.push(format!("S: {line}"));
            let code: u16 = line
                .get(..3)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| format!("not an SMTP reply: {line:?}"))?;
            text.push(line.get(4..).unwrap_or("").to_string());
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(Reply {
                    code,
                    text: text.join(" "),
                });
            }
        }
        Err("reply longer than 100 lines".into())
    }

    async fn cmd(&mut self, c: &str) -> Result<Reply, String> {
        self.transcript.push(format!("C: {c}"));
        tokio::time::timeout(
            self.timeout,
            self.wr.write_all(format!("{c}\r\n").as_bytes()),
        )
        .await
        .map_err(|_| "timeout while sending".to_string())?
        .map_err(|e| format!("write error: {e}"))?;
        self.reply().await
    }
}

use tokio::io::AsyncReadExt;

/// Runs the probe. Never fails: connection problems give `Inconclusive`.
pub async fn probe(o: &ProbeOpts) -> ProbeReport {
    let random_rcpt = format!("{}@{}", random_local_part(), o.domain);
    let control = if o.control.contains('@') {
        o.control.clone()
    } else {
        format!("{}@{}", o.control, o.domain)
    };
    let mut report = ProbeReport {
        verdict: RndrVerdict::Inconclusive,
        catch_all_suspected: false,
        why: String::new(),
        server: o.server.clone(),
        domain: o.domain.clone(),
        random_rcpt: random_rcpt.clone(),
        random_reply: None,
        control_reply: None,
        transcript: vec![],
        tls: None,
    };
    let stream = match tokio::time::timeout(o.timeout, TcpStream::connect(&o.server)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            report.why = format!("cannot connect to {}: {e}", o.server);
            return report;
        }
        Err(_) => {
            report.why = format!("timeout after {:?} connecting to {}", o.timeout, o.server);
            return report;
        }
    };
    let mut c = Conn::new(Box::new(stream), o.timeout, vec![]);
    let host = o
        .server
        .rsplit_once(':')
        .map_or(o.server.as_str(), |(h, _)| h)
        .trim_matches(['[', ']'])
        .to_string();
    let result: Result<(), String> = async {
        let banner = c.reply().await?;
        if banner.code / 100 != 2 {
            return Err(format!(
                "the server refused the connection ({})",
                banner.code
            ));
        }
        let mut ehlo = c.cmd(&format!("EHLO {}", o.helo)).await?;
        let offers_tls = ehlo.code / 100 == 2
            && ehlo
                .text
                .to_ascii_uppercase()
                .split_whitespace()
                .any(|w| w == "STARTTLS");
        if offers_tls && o.starttls == StartTls::Opportunistic {
            let r = c.cmd("STARTTLS").await?;
            if r.code != 220 {
                return Err(format!("STARTTLS offered but refused ({})", r.code));
            }
            let placeholder = Conn::new(Box::new(tokio::io::duplex(1).0), o.timeout, vec![]);
            let plain = std::mem::replace(&mut c, placeholder);
            match plain.upgrade(&host).await {
                Ok((tls, version)) => {
                    c = tls;
                    report.tls = Some(version);
                }
                Err((transcript, why)) => {
                    c.transcript = transcript;
                    return Err(why);
                }
            }
            ehlo = c.cmd(&format!("EHLO {}", o.helo)).await?;
        }
        if ehlo.code / 100 != 2 {
            let helo = c.cmd(&format!("HELO {}", o.helo)).await?;
            if helo.code / 100 != 2 {
                return Err(format!(
                    "EHLO and HELO refused ({} / {})",
                    ehlo.code, helo.code
                ));
            }
        }
        let mail = c.cmd(&format!("MAIL FROM:<{}>", o.mail_from)).await?;
        if mail.code / 100 != 2 {
            return Err(format!("MAIL FROM refused ({}): {}", mail.code, mail.text));
        }
        let random = c.cmd(&format!("RCPT TO:<{random_rcpt}>")).await?;
        let control_reply = c.cmd(&format!("RCPT TO:<{control}>")).await.ok();
        let (v, catch_all, why) = classify(&random, control_reply.as_ref());
        report.verdict = v;
        report.catch_all_suspected = catch_all;
        report.why = why;
        report.random_reply = Some(random);
        report.control_reply = control_reply;
        let _ = c.cmd("RSET").await;
        let _ = c.cmd("QUIT").await;
        Ok(())
    }
    .await;
    if let Err(e) = result {
        report.verdict = RndrVerdict::Inconclusive;
        report.why = e;
    }
    report.transcript = c.transcript;
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(code: u16) -> Reply {
        Reply {
            code,
            text: String::new(),
        }
    }

    #[test]
    fn verdicts() {
        assert_eq!(
            classify(&r(550), Some(&r(250))).0,
            RndrVerdict::RejectsUnknown
        );
        let (v, catch_all, _) = classify(&r(250), Some(&r(250)));
        assert_eq!((v, catch_all), (RndrVerdict::AcceptsUnknown, true));
        assert_eq!(
            classify(&r(450), Some(&r(250))).0,
            RndrVerdict::Inconclusive
        );
        assert_eq!(
            classify(&r(550), Some(&r(554))).0,
            RndrVerdict::Inconclusive
        );
        assert_eq!(
            classify(&r(250), None),
            (
                RndrVerdict::AcceptsUnknown,
                false,
                classify(&r(250), None).2
            )
        );
    }

    #[tokio::test]
    async fn unreachable_host_is_inconclusive() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let o = ProbeOpts {
            server: format!("127.0.0.1:{port}"),
            domain: "example.test".into(),
            helo: "probe.test".into(),
            mail_from: "probe@probe.test".into(),
            control: "postmaster".into(),
            timeout: Duration::from_secs(2),
            starttls: StartTls::Opportunistic,
        };
        let rep = probe(&o).await;
        assert_eq!(rep.verdict, RndrVerdict::Inconclusive);
        assert!(rep.why.contains("cannot connect"), "{}", rep.why);
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (_s, _) = l.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(10)).await;
        });
        let o = ProbeOpts {
            server: addr.to_string(),
            domain: "example.test".into(),
            helo: "probe.test".into(),
            mail_from: "probe@probe.test".into(),
            control: "postmaster".into(),
            timeout: Duration::from_millis(300),
            starttls: StartTls::Opportunistic,
        };
        let rep = probe(&o).await;
        assert_eq!(rep.verdict, RndrVerdict::Inconclusive);
        assert!(rep.why.contains("timeout"), "{}", rep.why);
    }
}
