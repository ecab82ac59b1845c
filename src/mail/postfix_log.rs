//! Counting in the Postfix log, and following the file.
//!
//! NDRs are counted by `sender non-delivery notification` lines (one per
//! bounce message), not `status=bounced` (one per recipient, and a bounce of a
//! null-sender message produces no NDR at all).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Sample;

/// Counts of one chunk of log.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LogCounts {
    /// NDR messages generated.
    pub ndr_generated: f64,
    /// RCPTs rejected in the SMTP dialogue as unknown users.
    pub rcpt_rejected_unknown: f64,
    /// Delivery attempts deferred.
    pub deferred: f64,
    /// Recipients hard-bounced.
    pub bounced_recipients: f64,
}

impl LogCounts {
    /// Adds the counts of another chunk.
    pub fn add(&mut self, o: &LogCounts) {
        self.ndr_generated += o.ndr_generated;
        self.rcpt_rejected_unknown += o.rcpt_rejected_unknown;
        self.deferred += o.deferred;
        self.bounced_recipients += o.bounced_recipients;
    }

    /// As samples.
    pub fn samples(&self) -> Vec<Sample> {
        vec![
            Sample::new("ndr_generated", self.ndr_generated),
            Sample::new("rcpt_rejected_unknown", self.rcpt_rejected_unknown),
            Sample::new("deferred", self.deferred),
            Sample::new("bounced_recipients", self.bounced_recipients),
        ]
    }
}

/// Counts the interesting lines of a chunk of Postfix log (pure).
pub fn count(text: &str) -> LogCounts {
    let mut c = LogCounts::default();
    for line in text.lines() {
        if line.contains(": sender non-delivery notification: ") {
            c.ndr_generated += 1.0;
        } else if line.contains("NOQUEUE: reject: RCPT from")
            && (line.contains("User unknown") || line.contains("Unknown user"))
        {
            c.rcpt_rejected_unknown += 1.0;
        } else if line.contains(" status=deferred") {
            c.deferred += 1.0;
        } else if line.contains(" status=bounced") {
            c.bounced_recipients += 1.0;
        }
    }
    c
}

/// Where reading stopped: survives restarts (kept in the database).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPosition {
    /// Inode of the file read (a new inode means the log was rotated).
    pub inode: u64,
    /// Byte offset after the last complete line read.
    pub offset: u64,
    /// The offset is inside a line longer than one read: the rest of that line
    /// is skipped (a line that never ends must not be re-read forever).
    #[serde(default)]
    pub skipping: bool,
}

/// Bytes read per call at most; the rest is picked up next time.
pub const MAX_READ: usize = 64 << 20;

/// Bytes read at a time: what a read holds in memory, whatever the file.
pub const CHUNK: usize = 1 << 20;

/// Why a log cannot be followed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The path names something that is not a regular file (a FIFO, a
    /// directory…): reading it could block forever or mean nothing.
    #[error("{path} is {what}, not a regular file")]
    NotRegular {
        /// The path.
        path: String,
        /// What it is.
        what: &'static str,
    },
    /// I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl LogError {
    /// The position to keep after this error: when the path was something
    /// else than a log, the next regular file there is read from its start
    /// (its inode may be the old log's, reused, and none of its lines may be
    /// lost).
    pub fn position_after(&self) -> Option<LogPosition> {
        match self {
            LogError::NotRegular { .. } => Some(LogPosition {
                inode: 0,
                offset: 0,
                skipping: false,
            }),
            LogError::Io(_) => None,
        }
    }
}

/// Opens a log without blocking (a FIFO would block the open until a writer
/// comes) and refuses anything but a regular file.
fn open_regular(path: &Path) -> Result<(std::fs::File, std::fs::Metadata), LogError> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = f.metadata()?;
    let t = meta.file_type();
    let what = if t.is_file() {
        return Ok((f, meta));
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "something else"
    };
    Err(LogError::NotRegular {
        path: path.display().to_string(),
        what,
    })
}

/// Where the next data at or after `off` starts (`lseek(SEEK_DATA)`): `None`
/// when only a hole follows, `Some(off)` when the file system cannot tell.
fn next_data(f: &std::fs::File, off: u64) -> Option<u64> {
    seek(f, off, libc::SEEK_DATA).map_or_else(|errno| (errno != libc::ENXIO).then_some(off), Some)
}

/// Where the hole after `off` starts (`lseek(SEEK_HOLE)`; the end of the file
/// when there is none or the file system cannot tell).
fn hole_after(f: &std::fs::File, off: u64, len: u64) -> u64 {
    seek(f, off, libc::SEEK_HOLE).map_or(len, |h| h.min(len))
}

fn seek(f: &std::fs::File, off: u64, whence: libc::c_int) -> Result<u64, i32> {
    use std::os::fd::AsRawFd;
    let off = libc::off_t::try_from(off).map_err(|_| libc::EINVAL)?;
    // SAFETY: lseek on a descriptor we own; reads go through pread (read_at),
    // so moving the file offset here changes nothing else.
    let r = unsafe { libc::lseek(f.as_raw_fd(), off, whence) };
    u64::try_from(r).map_err(|_| std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// Reads the complete lines added since `pos`.
///
/// * no position yet: starts at the end (history is not counted as new);
/// * a new inode (rotation) or a shorter file (truncation): starts at 0.
pub fn read_new(path: &Path, pos: Option<LogPosition>) -> Result<(String, LogPosition), LogError> {
    read_capped(path, pos, MAX_READ)
}

/// [`read_new`] with a chosen read size (tests use a small one).
pub fn read_capped(
    path: &Path,
    pos: Option<LogPosition>,
    cap: usize,
) -> Result<(String, LogPosition), LogError> {
    let mut text = String::new();
    let pos = read_with(path, pos, cap, |t| text.push_str(t))?;
    Ok((text, pos))
}

/// Feeds the complete lines added since `pos` to `each`, in pieces of at most
/// [`CHUNK`] bytes (memory stays bounded whatever the file holds), reading at
/// most `cap` bytes of data. Holes of a sparse file (a log truncated under a
/// writer that kept its offset) are skipped without reading them. A line
/// longer than `min(cap, CHUNK)` is skipped (a line that never ends must not be
/// re-read forever), and so is a partial line cut by a hole.
pub fn read_with(
    path: &Path,
    pos: Option<LogPosition>,
    cap: usize,
    mut each: impl FnMut(&str),
) -> Result<LogPosition, LogError> {
    use std::os::unix::fs::{FileExt, MetadataExt};
    let (f, meta) = open_regular(path)?;
    let (inode, len) = (meta.ino(), meta.len());
    let (start, mut skipping) = match pos {
        None => {
            return Ok(LogPosition {
                inode,
                offset: len,
                skipping: false,
            })
        }
        Some(p) if p.inode != inode || p.offset > len => (0, false),
        Some(p) => (p.offset, p.skipping),
    };
    let chunk = cap.clamp(1, CHUNK);
    let mut buf = vec![0u8; chunk];
    // `consumed`: everything before it is dealt with; `pending`: the start of
    // a line from `consumed` up to `off`.
    let (mut off, mut consumed) = (start, start);
    let mut pending: Vec<u8> = Vec::new();
    let mut budget = cap;
    let mut after_hole = false;
    while off < len && budget > 0 {
        let Some(data) = next_data(&f, off) else {
            // only a hole up to the end: nothing to read there
            pending.clear();
            skipping = false;
            consumed = len;
            break;
        };
        if data > off {
            // a hole: whatever line it cut is not a line
            pending.clear();
            skipping = false;
            after_hole = true;
            (off, consumed) = (data, data);
        }
        let end = hole_after(&f, off, len).max(off + 1).min(len);
        let want = usize::try_from(end - off)
            .unwrap_or(usize::MAX)
            .min(chunk)
            .min(budget);
        let n = f.read_at(&mut buf[..want], off)?;
        if n == 0 {
            break; // truncated under us: the next read sees it
        }
        budget -= n;
        let mut piece = &buf[..n];
        off += n as u64;
        if after_hole {
            // the data after a hole starts on a block boundary: its zeros are the hole's
            let zeros = piece.iter().take_while(|&&b| b == 0).count();
            piece = &piece[zeros..];
            if piece.is_empty() {
                consumed = off;
                continue;
            }
            after_hole = false;
            consumed = off - piece.len() as u64;
        }
        if skipping {
            match piece.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    skipping = false;
                    piece = &piece[i + 1..];
                    consumed = off - piece.len() as u64;
                }
                None => {
                    consumed = off;
                    continue;
                }
            }
        }
        pending.extend_from_slice(piece);
        if let Some(j) = pending.iter().rposition(|&b| b == b'\n') {
            each(&String::from_utf8_lossy(&pending[..=j]));
            consumed += j as u64 + 1;
            pending.drain(..=j);
        }
        if pending.len() >= chunk {
            tracing::warn!(file = %path.display(), bytes = pending.len(), "a log line longer than one read is skipped");
            pending.clear();
            skipping = true;
            consumed = off;
        }
    }
    Ok(LogPosition {
        inode,
        offset: consumed,
        skipping,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "Nov 23 03:08:49 mx postfix/smtpd[23902]: B160399CAB5: client=unknown[127.0.0.1]
Nov 23 03:08:49 mx postfix/qmgr[23864]: B160399CAB5: from=<victim@victim.test>, size=427, nrcpt=1 (queue active)
Nov 23 03:08:49 mx postfix/local[23921]: B160399CAB5: to=<nouser-1e7b38fb@example.test>, relay=local, delay=0.02, delays=0.01/0.01/0/0.01, dsn=5.1.1, status=bounced (unknown user: \"nouser-1e7b38fb\")
Nov 23 03:08:49 mx postfix/cleanup[23907]: B68F499CAB9: message-id=<20261123030849.B68F499CAB9@mx.example.test>
Nov 23 03:08:49 mx postfix/bounce[23925]: B160399CAB5: sender non-delivery notification: B68F499CAB9
Nov 23 03:08:49 mx postfix/error[23927]: B68F499CAB9: to=<victim@victim.test>, relay=none, delay=0.02, delays=0/0.01/0/0.01, dsn=4.4.1, status=deferred (lab: outbound delivery disabled (no network))
Nov 23 03:09:10 mx postfix/smtpd[15559]: NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 550 5.1.1 <nouser-88d88ae9@example.test>: Recipient address rejected: User unknown in local recipient table; from=<victim@victim.test> to=<nouser-88d88ae9@example.test> proto=ESMTP helo=<attacker.test>
";

    #[test]
    fn counts_real_lines() {
        let c = count(LOG);
        assert_eq!(
            c,
            LogCounts {
                ndr_generated: 1.0,
                rcpt_rejected_unknown: 1.0,
                deferred: 1.0,
                bounced_recipients: 1.0
            }
        );
        assert_eq!(count("garbage\n\u{0}\u{1}binary"), LogCounts::default());
    }

    /// Issue 13: a line longer than one read used to be re-read forever.
    #[test]
    fn an_overlong_line_is_skipped_not_reread_forever() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("maillog");
        std::fs::write(&p, "").unwrap();
        let (_, mut pos) = read_capped(&p, None, 16).unwrap();
        let long = "x".repeat(100);
        std::fs::write(&p, format!("{long}\nshort line\n")).unwrap();
        let mut got = String::new();
        for _ in 0..20 {
            let (t, next) = read_capped(&p, Some(pos), 16).unwrap();
            got.push_str(&t);
            pos = next;
        }
        assert_eq!(got, "short line\n");
        assert_eq!(pos.offset, 112);
        assert!(!pos.skipping);
    }

    /// Issue 21: a FIFO at the log's path used to block the read forever
    /// (the open waits for a writer). It is an error with the reason, and so
    /// is a directory; the regular file that comes back is read from its start.
    #[test]
    fn a_fifo_or_a_directory_is_refused_and_the_next_file_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("maillog");
        std::fs::write(&p, "old line\n").unwrap();
        let (_, pos) = read_new(&p, None).unwrap();
        std::fs::remove_file(&p).unwrap();
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo on a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let (tx, rx) = std::sync::mpsc::channel();
        let p2 = p.clone();
        std::thread::spawn(move || {
            let _ =
                tx.send(read_new(&p2, Some(pos)).map_err(|e| (e.to_string(), e.position_after())));
        });
        let r = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("reading a FIFO blocked");
        let (why, after) = r.unwrap_err();
        assert!(why.contains("a FIFO, not a regular file"), "{why}");
        std::fs::remove_file(&p).unwrap();
        std::fs::create_dir(&p).unwrap();
        let e = read_new(&p, Some(pos)).unwrap_err();
        assert!(e.to_string().contains("a directory"), "{e}");
        std::fs::remove_dir(&p).unwrap();
        // back: every line of the new file counts, even if its inode is the old one's
        std::fs::write(&p, "new 1\nnew 2\n").unwrap();
        let (t, _) = read_new(&p, after).unwrap();
        assert_eq!(t, "new 1\nnew 2\n");
    }

    /// Lines across piece boundaries are whole, and no piece is bigger than
    /// two reads: a busy log's read holds that much in memory, not 64 MiB.
    #[test]
    fn a_big_read_comes_in_bounded_pieces_of_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("maillog");
        std::fs::write(&p, "").unwrap();
        let (_, pos) = read_new(&p, None).unwrap();
        let text: String = (0..200_000)
            .map(|i| format!("line {i} {}\n", "y".repeat(i % 50)))
            .collect();
        std::fs::write(&p, &text).unwrap();
        let mut pieces = Vec::new();
        let next = read_with(&p, Some(pos), MAX_READ, |t| pieces.push(t.to_string())).unwrap();
        assert!(pieces.len() > 2);
        assert!(pieces
            .iter()
            .all(|t| t.len() <= 2 * CHUNK && t.ends_with('\n')));
        assert_eq!(pieces.concat(), text);
        assert_eq!(next.offset, text.len() as u64);
    }

    /// Bytes this thread has read through read(2)/pread(2) so far.
    fn thread_rchar() -> u64 {
        std::fs::read_to_string("/proc/thread-self/io")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("rchar: "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap()
    }

    /// Issue 21: a 2 GB hole in a sparse log took 32 reads of 64 MiB of
    /// zeros to cross. It is skipped without being read, and the lines after
    /// it are read in the same call.
    #[test]
    fn a_hole_in_a_sparse_log_is_skipped_unread() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("maillog");
        std::fs::write(&p, "before\n").unwrap();
        let (_, pos) = read_new(&p, None).unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        let hole = 2u64 << 30;
        f.write_at(b"partial line cut by the hole", 7).unwrap();
        f.write_at(b"after 1\nafter 2\n", 7 + hole).unwrap();
        let len = f.metadata().unwrap().len();
        let (read_before, started) = (thread_rchar(), std::time::Instant::now());
        let (t, next) = read_new(&p, Some(pos)).unwrap();
        let read = thread_rchar() - read_before;
        assert_eq!(t, "after 1\nafter 2\n");
        assert_eq!(next.offset, len);
        assert!(read < 4 * CHUNK as u64, "{read} bytes read");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn follows_appends_rotation_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("maillog");
        std::fs::write(&p, "old line\n").unwrap();
        let (t, pos) = read_new(&p, None).unwrap();
        assert_eq!(t, "", "history is not counted");
        std::fs::write(&p, "old line\nnew line\npartial").unwrap();
        let (t, pos) = read_new(&p, Some(pos)).unwrap();
        assert_eq!(t, "new line\n");
        std::fs::write(&p, "old line\nnew line\npartial end\n").unwrap();
        let (t, pos) = read_new(&p, Some(pos)).unwrap();
        assert_eq!(t, "partial end\n");
        // truncation
        std::fs::write(&p, "a\n").unwrap();
        let (t, pos) = read_new(&p, Some(pos)).unwrap();
        assert_eq!(t, "a\n");
        // rotation: a new file (new inode) at the same path
        std::fs::rename(&p, dir.path().join("maillog.1")).unwrap();
        std::fs::write(&p, "rotated 1\n").unwrap();
        let (t, _) = read_new(&p, Some(pos)).unwrap();
        assert_eq!(t, "rotated 1\n");
    }
}
