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
//!
//! One file per area of the schema. Closed sets (event kinds, hook statuses,
//! outbox states…) are declared by the modules that own them, with their
//! spellings ([`crate::spelling::closed_set!`]), and stored as that text; SQL
//! binds them rather than spelling them again. The `state` table's keys are
//! one enum, [`StateKey`].

mod audits;
mod counts;
mod delistings;
mod events;
mod feeds;
mod health;
mod hooks;
mod listings;
pub mod migrations;
mod outbox;
mod pairs;
mod postmaster;
mod probes;
mod read;
mod rejections;
mod retention;
mod samples;
mod snds;
mod state;
mod sweeps;
#[cfg(test)]
mod tests;

pub use self::audits::*;
pub use self::counts::*;
pub use self::delistings::*;
pub use self::events::*;
pub use self::feeds::*;
pub use self::health::*;
pub use self::hooks::*;
pub use self::listings::*;
pub use self::outbox::*;
pub use self::pairs::*;
pub use self::postmaster::*;
pub use self::probes::*;
pub use self::read::ReadPool;
pub use self::rejections::*;
pub use self::retention::*;
pub use self::samples::*;
pub use self::snds::*;
pub use self::state::*;
pub use self::sweeps::*;

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rusqlite::Connection;
use serde::Serialize;
use tokio::sync::oneshot;

/// A migrated in-memory database, for the store's tests.
#[cfg(test)]
pub(crate) fn memory_db() -> Connection {
    let mut c = Connection::open_in_memory().expect("in-memory database");
    migrations::apply(&mut c).expect("migrations apply");
    c
}

/// Why a database operation failed. Callers branch on [`StoreError::Stopped`]
/// (the writer thread is gone: the daemon must exit so systemd restarts it)
/// and on [`StoreError::is_full`]; the rest is reported.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused (I/O error, disk full, constraint…).
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored JSON value does not parse.
    #[error("stored value: {0}")]
    Json(#[from] serde_json::Error),
    /// The database file or its directory cannot be opened or created.
    #[error("{what}: {source}")]
    Open {
        /// What was being done, with the path.
        what: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The writer thread has stopped: no write can succeed any more.
    #[error("the database thread has stopped")]
    Stopped,
}

impl StoreError {
    /// The disk (or the database's size limit) is full.
    pub fn is_full(&self) -> bool {
        matches!(self, StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::DiskFull)
    }

    fn open(what: String, e: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Open {
            what,
            source: Box::new(e),
        }
    }
}

/// Results of store operations.
pub type Result<T> = std::result::Result<T, StoreError>;

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn parse_json<T: serde::de::DeserializeOwned + Default>(s: &str) -> T {
    serde_json::from_str(s).unwrap_or_default()
}

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// A handle to the database thread. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::Sender<Job>,
    path: PathBuf,
    version: std::sync::Arc<std::sync::atomic::AtomicU64>,
    health: std::sync::Arc<WriterHealth>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// Bytes SQLite holds in this process now (page caches of every connection,
/// prepared statements, schema): the part of the daemon's memory that grows
/// with the database up to the caches' limits, reported so a soak or a
/// Prometheus graph can tell it from the daemon's own.
pub fn sqlite_memory_used() -> i64 {
    // SAFETY: sqlite3_memory_used takes no arguments and only reads SQLite's
    // global allocation counter (thread-safe in the bundled, serialized build).
    unsafe { rusqlite::ffi::sqlite3_memory_used() }
}

/// The most memory SQLite keeps for the whole process (a soft limit: past it,
/// SQLite recycles cache pages before allocating more). A backstop over the
/// per-connection caps below, which bound it first.
pub const SQLITE_SOFT_HEAP_LIMIT: i64 = 8 << 20;

/// The writer's page cache, in KiB. SQLite's default (2,000 KiB) fills only as
/// the database grows, so a months-long daemon saw it as RSS creeping up for
/// hours. A sweep's hot set (pair states, the newest pages of samples and
/// sweeps) is far smaller; older pages come back from the OS page cache in
/// microseconds when a prune or a long graph needs them.
pub const WRITER_CACHE_KIB: i64 = 512;

/// Each pooled reader's page cache, in KiB (see [`WRITER_CACHE_KIB`]): pages
/// render from a few hundred rows, and eight readers at the default would hold
/// 16 MB of copies of the same pages.
pub const READER_CACHE_KIB: i64 = 256;

/// Opens a connection with the pragmas rblwatch relies on and applies migrations.
pub fn open_connection(path: &Path) -> Result<Connection> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::open(format!("cannot create {}", dir.display()), e))?;
        }
    }
    let mut conn = Connection::open(path)
        .map_err(|e| StoreError::open(format!("cannot open database {}", path.display()), e))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // process-wide: set by every writer connection, the same value each time
    conn.pragma_update(None, "soft_heap_limit", SQLITE_SOFT_HEAP_LIMIT)?;
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
    migrations::apply(&mut conn)
        .map_err(|e| StoreError::open(format!("cannot migrate database {}", path.display()), e))?;
    Ok(conn)
}

/// How the writer is doing, for `/healthz` and the daemon's fatal check.
#[derive(Debug, Default)]
struct WriterHealth {
    /// Unix time of the last job that committed changes.
    last_commit: std::sync::atomic::AtomicI64,
    /// Unix time and text of the last failed write (SQLite refused).
    last_error: std::sync::Mutex<Option<(i64, String)>>,
    /// The writer thread has ended (a job panicked): no write can succeed.
    dead: std::sync::atomic::AtomicBool,
    /// The database file was deleted or replaced under the writer (why).
    lost: std::sync::Mutex<Option<String>>,
}

/// What `/healthz` reports about the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WriteHealth {
    /// Unix time of the last committed write (0: none yet).
    pub last_commit: i64,
    /// The last failed write, if it came after the last commit.
    pub failing: Option<(i64, String)>,
    /// The writer thread has ended.
    pub dead: bool,
    /// The database file was deleted or replaced while the daemon ran (why,
    /// and where the history was saved): nothing it writes reaches the file.
    pub lost: Option<String>,
}

impl Store {
    /// Opens (creating if needed) the database and starts its thread. The
    /// directory must be writable (as `config check` requires): SQLite opens
    /// an existing database and its `-wal` in a read-only directory, then
    /// fails at the first checkpoint or restart.
    pub fn open(path: &Path) -> Result<Self> {
        check_writable(path)?;
        check_history(path)?;
        let mut conn = open_connection(path)?;
        mark_history(path);
        let watch = FileWatch::new(path);
        let (tx, rx) = mpsc::channel::<Job>();
        let version = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let health = std::sync::Arc::new(WriterHealth::default());
        let v2 = version.clone();
        let h2 = health.clone();
        std::thread::Builder::new()
            .name("rblwatch-store".into())
            .spawn(move || {
                use std::sync::atomic::Ordering;
                let mut watch = watch;
                loop {
                    let job = match rx.recv_timeout(FILE_CHECK_EVERY) {
                        Ok(job) => job,
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            watch.check(&mut conn, &h2, &v2);
                            continue;
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    };
                    let before = conn.total_changes();
                    // A panicking job leaves the connection in an unknown state: stop
                    // here, so every later call fails with `Stopped` and the daemon
                    // exits (and systemd restarts it) instead of running on.
                    let run = std::panic::AssertUnwindSafe(|| job(&mut conn));
                    if std::panic::catch_unwind(run).is_err() {
                        tracing::error!("the database thread stopped after a panic");
                        h2.dead.store(true, Ordering::Release);
                        return;
                    }
                    // only writes change what readers see
                    if conn.total_changes() != before {
                        v2.fetch_add(1, Ordering::Release);
                        watch.check(&mut conn, &h2, &v2);
                    }
                }
                // Every handle is gone: checkpoint so the WAL does not linger.
                let _ = conn.pragma_update(None, "wal_checkpoint", "TRUNCATE");
            })
            .map_err(|e| StoreError::open("cannot start the database thread".into(), e))?;
        Ok(Store {
            tx,
            path: path.to_path_buf(),
            version,
            health,
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

    /// How writes are going: last commit, a failure since, a dead writer.
    pub fn write_health(&self) -> WriteHealth {
        use std::sync::atomic::Ordering;
        let last_commit = self.health.last_commit.load(Ordering::Acquire);
        let failing = self
            .health
            .last_error
            .lock()
            .ok()
            .and_then(|g| g.clone())
            .filter(|(at, _)| *at >= last_commit);
        WriteHealth {
            last_commit,
            failing,
            dead: self.health.dead.load(Ordering::Acquire),
            lost: self.health.lost.lock().ok().and_then(|g| g.clone()),
        }
    }

    /// Runs `f` on the database thread and returns its result.
    pub async fn call<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let health = self.health.clone();
        self.tx
            .send(Box::new(move |c| {
                let before = c.total_changes();
                let r = f(c);
                if r.is_ok() && c.total_changes() != before {
                    health
                        .last_commit
                        .store(crate::time::now(), std::sync::atomic::Ordering::Release);
                }
                if let Err(StoreError::Sqlite(e)) = &r {
                    if let Ok(mut g) = health.last_error.lock() {
                        *g = Some((crate::time::now(), e.to_string()));
                    }
                }
                let _ = tx.send(r);
            }))
            .map_err(|_| StoreError::Stopped)?;
        rx.await.map_err(|_| StoreError::Stopped)?
    }
}

/// How often an idle writer looks at its file (a commit looks at once).
const FILE_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// The database's directory must exist (or be creatable) and be writable by
/// this user. `config check` and the writer apply this same test.
pub fn check_writable(db: &Path) -> Result<()> {
    crate::config::probe_writable(db).map_err(|(existing, e)| {
        StoreError::open(
            format!(
                "daemon.database: {} is not writable here: set daemon.database to a writable place, e.g. /var/lib/rblwatch/rblwatch.db (under systemd, a relative path is relative to $STATE_DIRECTORY)",
                existing.display()
            ),
            e,
        )
    })
}

/// The file beside the database that says a history was kept there
/// (`rblwatch.db.history`, written when the database is first opened).
pub fn history_marker(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".history");
    db.with_file_name(name)
}

/// A database that is gone while its marker says a history was kept there
/// was deleted (or its disk not mounted): starting an empty one would
/// silently begin a second history and announce every listing anew as a
/// baseline. The daemon refuses and says how to go on.
fn check_history(db: &Path) -> Result<()> {
    let marker = history_marker(db);
    if db.exists() || !marker.exists() {
        return Ok(());
    }
    let since = std::fs::read_to_string(&marker).unwrap_or_default();
    Err(StoreError::open(
        format!(
            "the database {} is gone, but a history was kept there (started {}): restore it (e.g. a rescued copy {}.rescued-* beside it, or a backup), or remove {} to start a new, empty history",
            db.display(),
            since.trim(),
            db.display(),
            marker.display()
        ),
        std::io::Error::new(std::io::ErrorKind::NotFound, "database file missing"),
    ))
}

/// Writes the marker once (best effort: without it only this guard is lost).
fn mark_history(db: &Path) {
    let marker = history_marker(db);
    if !marker.exists() {
        let _ = std::fs::write(
            &marker,
            format!("{}\n", crate::time::fmt_time(crate::time::now())),
        );
    }
}

/// The database file's identity (device, inode), to notice it deleted or
/// replaced under the open connection. SQLite keeps writing to the inode it
/// opened: a deleted file keeps growing out of sight until the daemon exits,
/// and a restart then starts an empty history (issue 21).
struct FileWatch {
    path: PathBuf,
    id: Option<(u64, u64)>,
    lost: bool,
}

impl FileWatch {
    fn new(path: &Path) -> Self {
        FileWatch {
            path: path.to_path_buf(),
            id: file_id(path),
            lost: false,
        }
    }

    /// Once, when the file is gone or another one: logs it, saves the history
    /// the connection still holds beside it, records a `database_lost` event
    /// (the actions read it from this connection and alert) and turns
    /// `/healthz` red for good.
    fn check(
        &mut self,
        conn: &mut Connection,
        health: &WriterHealth,
        version: &std::sync::atomic::AtomicU64,
    ) {
        if self.lost || self.id.is_none() {
            return;
        }
        let why = match file_id(&self.path) {
            Some(id) if Some(id) == self.id => return,
            Some(_) => "replaced by another file",
            None => "deleted",
        };
        self.lost = true;
        let at = crate::time::now();
        let rescued = PathBuf::from(format!("{}.rescued-{at}", self.path.display()));
        let saved = conn
            .execute("VACUUM INTO ?1", [rescued.to_string_lossy()])
            .map(|_| rescued.clone());
        let text = match &saved {
            Ok(p) => format!(
                "the database file {} was {why} while the daemon ran: nothing recorded from now on reaches it, and a restart would begin a new history; the history so far is saved in {} (stop the daemon and move it back to keep it)",
                self.path.display(),
                p.display()
            ),
            Err(e) => format!(
                "the database file {} was {why} while the daemon ran: nothing recorded from now on reaches it, and a restart would begin a new history; saving the history beside it failed ({e})",
                self.path.display()
            ),
        };
        tracing::error!("{text}");
        if let Ok(mut g) = health.lost.lock() {
            *g = Some(text.clone());
        }
        let e = crate::event::Event::new(
            crate::event::EventKind::DatabaseLost,
            at,
            crate::event::Subject::None,
            text,
            serde_json::json!({
                "path": self.path.display().to_string(),
                "why": why,
                "rescued": saved.ok().map(|p| p.display().to_string()),
            }),
        );
        match insert_event(conn, &e) {
            Ok(_) => {
                version.fetch_add(1, std::sync::atomic::Ordering::Release);
            }
            Err(err) => tracing::error!(error = %err, "cannot record the database_lost event"),
        }
    }
}

fn file_id(p: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(test)]
mod writer_tests {
    use super::*;

    /// Issue 13: a writer thread that dies must make every later call fail
    /// with `Stopped` (the daemon then exits non-zero), not hang or succeed.
    #[tokio::test]
    async fn a_dead_writer_fails_every_call() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        s.call(|c| Ok(c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (0)")?))
            .await
            .unwrap();
        assert!(s.write_health().last_commit > 0);
        let r: Result<()> = s.call(|_| panic!("boom")).await;
        assert!(matches!(r, Err(StoreError::Stopped)), "{r:?}");
        let r = s
            .call(|c| Ok(c.execute("INSERT INTO t VALUES (1)", [])?))
            .await;
        assert!(matches!(r, Err(StoreError::Stopped)), "{r:?}");
        assert!(s.write_health().dead);
    }

    #[tokio::test]
    async fn failed_writes_show_until_the_next_commit() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        let r = s
            .call(|c| Ok(c.execute("INSERT INTO nope VALUES (1)", [])?))
            .await;
        assert!(r.is_err());
        assert!(s.write_health().failing.is_some());
        s.call(|c| Ok(c.execute("CREATE TABLE t (x)", [])?))
            .await
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        s.call(|c| Ok(c.execute("INSERT INTO t VALUES (1)", [])?))
            .await
            .unwrap();
        assert!(s.write_health().failing.is_none());
    }
}
