//! SQLite history: the one place state survives a restart.
//!
//! rusqlite is blocking, so the connection lives on its own thread and async
//! code sends it closures ([`Store::call`]); the runtime's workers never wait
//! on the disk. The database runs in WAL mode with `synchronous = NORMAL`
//! (a crash loses at most the last transaction, never consistency) and
//! versioned migrations ([`migrations`]) are applied at open.
//!
//! Storage grows with *changes*, not with queries: `pair_state` holds only
//! pairs that are not plainly clear, `listings` one row per listing period,
//! `list_health_history` one row per health change. A sweep's writes go in one
//! transaction ([`commit_sweep`]), so a killed daemon leaves either the whole
//! sweep or none of it.

pub mod migrations;
mod queries;
mod read;

pub use read::ReadPool;

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use anyhow::Context;
use rusqlite::Connection;
use tokio::sync::oneshot;

pub use queries::*;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// A handle to the database thread. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::Sender<Job>,
    path: PathBuf,
    version: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// Opens a connection with the pragmas rblwatch relies on and applies migrations.
pub fn open_connection(path: &Path) -> anyhow::Result<Connection> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
    }
    let mut conn = Connection::open(path)
        .with_context(|| format!("cannot open database {}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrations::apply(&mut conn)
        .with_context(|| format!("cannot migrate database {}", path.display()))?;
    Ok(conn)
}

impl Store {
    /// Opens (creating if needed) the database and starts its thread.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let mut conn = open_connection(path)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let version = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let v2 = version.clone();
        std::thread::Builder::new()
            .name("rblwatch-store".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    let before = conn.total_changes();
                    job(&mut conn);
                    // only writes change what readers see
                    if conn.total_changes() != before {
                        v2.fetch_add(1, std::sync::atomic::Ordering::Release);
                    }
                }
                // Every handle is gone: checkpoint so the WAL does not linger.
                let _ = conn.pragma_update(None, "wal_checkpoint", "TRUNCATE");
            })
            .context("cannot start the database thread")?;
        Ok(Store {
            tx,
            path: path.to_path_buf(),
            version,
        })
    }

    /// Bumped after every job that changed rows: pages rendered at one version
    /// are still current while it stays the same.
    pub fn version(&self) -> u64 {
        self.version.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the database thread and returns its result.
    pub async fn call<R, F>(&self, f: F) -> anyhow::Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> anyhow::Result<R> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Box::new(move |c| {
                let _ = tx.send(f(c));
            }))
            .map_err(|_| anyhow::anyhow!("the database thread has stopped"))?;
        rx.await
            .map_err(|_| anyhow::anyhow!("the database thread dropped a request"))?
    }
}
