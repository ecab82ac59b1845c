//! Read-only connections for the web: WAL lets readers run beside the writer,
//! so page loads never queue behind a sweep's commit. Work runs on tokio's
//! blocking pool; connections are reused.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};

use super::{Result, StoreError};

/// Readers at once. Opening a connection costs more than most page queries,
/// so readers beyond this wait for a pooled connection rather than open one.
const READERS: usize = 8;

/// Readers kept open between requests. Each holds about 400 KB (schema,
/// statements, its page cache); keeping all eight, a daemon's RSS stepped up
/// each time two requests happened to overlap (a scrape during a page load)
/// and never came down. One or two readers serve a status page and a
/// scraper; a burst opens more and closes them after.
const IDLE_READERS: usize = 2;

/// A small pool of read-only connections.
#[derive(Clone, Debug)]
pub struct ReadPool {
    path: PathBuf,
    idle: Arc<Mutex<Vec<Connection>>>,
    permits: Arc<tokio::sync::Semaphore>,
}

impl ReadPool {
    /// A pool over an existing database (the writer creates and migrates it).
    pub fn new(path: &Path) -> Self {
        ReadPool {
            path: path.to_path_buf(),
            idle: Arc::new(Mutex::new(Vec::new())),
            permits: Arc::new(tokio::sync::Semaphore::new(READERS)),
        }
    }

    fn open(&self) -> Result<Connection> {
        let c = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(|e| {
            StoreError::open(
                format!("cannot open {} for reading", self.path.display()),
                e,
            )
        })?;
        c.busy_timeout(std::time::Duration::from_secs(5))?;
        c.pragma_update(None, "cache_size", -super::READER_CACHE_KIB)?;
        Ok(c)
    }

    /// Runs `f` on a read-only connection, off the async workers.
    pub async fn read<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
    {
        let pool = self.clone();
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Stopped)?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let c = match pool.idle.lock().ok().and_then(|mut v| v.pop()) {
                Some(c) => c,
                None => pool.open()?,
            };
            let r = f(&c);
            if let Ok(mut v) = pool.idle.lock() {
                if v.len() < IDLE_READERS {
                    v.push(c);
                }
            }
            r
        })
        .await
        .map_err(|_| StoreError::Stopped)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_readers_leaves_at_most_two_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(super::super::open_connection(&path).unwrap());
        let pool = ReadPool::new(&path);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        rt.block_on(async {
            let gate = Arc::new(std::sync::Barrier::new(READERS));
            let reads: Vec<_> = (0..READERS)
                .map(|_| {
                    let (p, g) = (pool.clone(), gate.clone());
                    tokio::spawn(async move {
                        p.read(move |c| {
                            g.wait(); // all eight at once
                            Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?)
                        })
                        .await
                    })
                })
                .collect();
            for r in reads {
                assert_eq!(r.await.unwrap().unwrap(), 1);
            }
        });
        assert_eq!(pool.idle.lock().unwrap().len(), IDLE_READERS);
    }
}
