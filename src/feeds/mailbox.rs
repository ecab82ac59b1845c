//! Reading report mails: a Maildir directory or an IMAP mailbox over TLS.
//! Both only read (IMAP with `BODY.PEEK[]`): a mail is known by a stable key
//! (its Maildir unique name, or `UIDVALIDITY:UID`), and the caller says which
//! keys it has already taken, so nothing is moved, flagged or deleted and a
//! mail is read once across restarts.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite};

use super::dmarc::Reject;
use crate::config::ImapConf;

/// Why a mailbox could not be read at all (each mail's own problems are [`Reject`]s).
#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    /// The Maildir is missing or unreadable.
    #[error("maildir {path}: {err}")]
    Maildir {
        /// The directory.
        path: String,
        /// What failed.
        err: std::io::Error,
    },
    /// Connecting, TLS, login or a command failed.
    #[error("imap {0}")]
    Imap(String),
    /// The whole read took longer than its timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}

/// One new mail: its key and its bytes, or why it was not read.
pub type Mail = (String, Result<Vec<u8>, Reject>);

/// The new mails of a Maildir (`new/`, then `cur/`), oldest first, at most `max`.
pub fn read_maildir(
    dir: &Path,
    seen: &HashSet<String>,
    max_bytes: u64,
    max: usize,
) -> Result<Vec<Mail>, MailboxError> {
    let err = |e| MailboxError::Maildir {
        path: dir.display().to_string(),
        err: e,
    };
    let mut files = Vec::new();
    for sub in ["new", "cur"] {
        for entry in std::fs::read_dir(dir.join(sub)).map_err(err)? {
            let entry = entry.map_err(err)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            // the unique name is what precedes ":2,<flags>" (a reader moving new/ to cur/ adds it)
            let key = name.split(':').next().unwrap_or(&name).to_string();
            if seen.contains(&key) {
                continue;
            }
            let mtime = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .unwrap_or_default();
            files.push((mtime, key, entry.path()));
        }
    }
    files.sort();
    files.dedup_by(|a, b| a.1 == b.1);
    let mut out = Vec::new();
    for (_, key, path) in files.into_iter().take(max) {
        let mail = match std::fs::metadata(&path) {
            Ok(m) if m.len() > max_bytes => Err(Reject::Oversized(max_bytes)),
            // a mail that vanished between listing and reading (another reader moved it) waits
            Err(_) => continue,
            Ok(_) => match std::fs::read(&path) {
                Ok(b) => Ok(b),
                Err(_) => continue,
            },
        };
        out.push((key, mail));
    }
    Ok(out)
}

/// The new mails of an IMAP mailbox (implicit TLS), oldest UID first, at most `max`.
pub async fn read_imap(
    conf: &ImapConf,
    seen: &HashSet<String>,
    max_bytes: u64,
    max: usize,
    timeout: Duration,
) -> Result<Vec<Mail>, MailboxError> {
    tokio::time::timeout(timeout, imap_session(conf, seen, max_bytes, max))
        .await
        .map_err(|_| MailboxError::Timeout(timeout))?
}

fn imap_err(what: &str) -> impl Fn(async_imap::error::Error) -> MailboxError + '_ {
    move |e| MailboxError::Imap(format!("{what}: {e}"))
}

async fn imap_session(
    conf: &ImapConf,
    seen: &HashSet<String>,
    max_bytes: u64,
    max: usize,
) -> Result<Vec<Mail>, MailboxError> {
    let tcp = tokio::net::TcpStream::connect((conf.host.as_str(), conf.port))
        .await
        .map_err(|e| MailboxError::Imap(format!("connect {}:{}: {e}", conf.host, conf.port)))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config(conf)?));
    let name = rustls::pki_types::ServerName::try_from(conf.tls_name.clone()).map_err(|_| {
        MailboxError::Imap(format!("tls name {:?} is not a host name", conf.tls_name))
    })?;
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| MailboxError::Imap(format!("tls: {e}")))?;
    let mut client = async_imap::Client::new(tls);
    client
        .read_response()
        .await
        .map_err(|e| MailboxError::Imap(format!("greeting: {e}")))?
        .ok_or_else(|| MailboxError::Imap("closed before the greeting".into()))?;
    // the error carries the client, not the password; the server's text is all we show
    let mut session = client
        .login(&conf.user, conf.password.expose())
        .await
        .map_err(|(e, _)| MailboxError::Imap(format!("login as {}: {e}", conf.user)))?;
    let out = fetch_new(&mut session, conf, seen, max_bytes, max).await;
    let _ = session.logout().await;
    out
}

async fn fetch_new<T>(
    session: &mut async_imap::Session<T>,
    conf: &ImapConf,
    seen: &HashSet<String>,
    max_bytes: u64,
    max: usize,
) -> Result<Vec<Mail>, MailboxError>
where
    T: AsyncRead + AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    let mb = session
        .examine(&conf.mailbox)
        .await
        .map_err(imap_err("examine"))?;
    let validity = mb.uid_validity.unwrap_or(0);
    let mut uids: Vec<u32> = session
        .uid_search("ALL")
        .await
        .map_err(imap_err("search"))?
        .into_iter()
        .filter(|u| !seen.contains(&format!("{validity}:{u}")))
        .collect();
    uids.sort_unstable();
    uids.truncate(max);
    let mut out = Vec::new();
    for uid in uids {
        let key = format!("{validity}:{uid}");
        // the size first: an oversized mail is rejected without being downloaded
        let sizes: Vec<_> = session
            .uid_fetch(uid.to_string(), "RFC822.SIZE")
            .await
            .map_err(imap_err("fetch size"))?
            .try_collect()
            .await
            .map_err(imap_err("fetch size"))?;
        let size = sizes.iter().find_map(|f| f.size).unwrap_or(0);
        if u64::from(size) > max_bytes {
            out.push((key, Err(Reject::Oversized(max_bytes))));
            continue;
        }
        // a partial fetch: a server lying about the size still sends at most the cap + 1 byte
        let bodies: Vec<_> = session
            .uid_fetch(
                uid.to_string(),
                format!("BODY.PEEK[]<0.{}>", max_bytes.saturating_add(1)),
            )
            .await
            .map_err(imap_err("fetch"))?
            .try_collect()
            .await
            .map_err(imap_err("fetch"))?;
        let body = bodies.iter().find_map(|f| f.body().map(<[u8]>::to_vec));
        out.push((
            key,
            match body {
                Some(b) if b.len() as u64 > max_bytes => Err(Reject::Oversized(max_bytes)),
                Some(b) => Ok(b),
                None => Err(Reject::NoReport),
            },
        ));
    }
    Ok(out)
}

/// The Web PKI roots plus the configured CA file.
fn tls_config(conf: &ImapConf) -> Result<rustls::ClientConfig, MailboxError> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &conf.ca_file {
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| MailboxError::Imap(format!("ca_file {}: {e}", path.display())))?;
        for c in certs {
            let c =
                c.map_err(|e| MailboxError::Imap(format!("ca_file {}: {e}", path.display())))?;
            roots
                .add(c)
                .map_err(|e| MailboxError::Imap(format!("ca_file {}: {e}", path.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| MailboxError::Imap(format!("tls: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
