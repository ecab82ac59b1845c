//! Counting in the Postfix log, and following the file.
//!
//! NDRs are counted by `sender non-delivery notification` lines (one per
//! bounce message), not `status=bounced` (one per recipient, and a bounce of a
//! null-sender message produces no NDR at all).

use std::io::{Read, Seek, SeekFrom};
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

/// Reads the complete lines added since `pos`.
///
/// * no position yet: starts at the end (history is not counted as new);
/// * a new inode (rotation) or a shorter file (truncation): starts at 0.
pub fn read_new(path: &Path, pos: Option<LogPosition>) -> std::io::Result<(String, LogPosition)> {
    read_capped(path, pos, MAX_READ)
}

/// [`read_new`] with a chosen read size (tests use a small one).
pub fn read_capped(
    path: &Path,
    pos: Option<LogPosition>,
    cap: usize,
) -> std::io::Result<(String, LogPosition)> {
    use std::os::unix::fs::MetadataExt;
    let mut f = std::fs::File::open(path)?;
    let meta = f.metadata()?;
    let (inode, len) = (meta.ino(), meta.len());
    let (start, mut skipping) = match pos {
        None => {
            return Ok((
                String::new(),
                LogPosition {
                    inode,
                    offset: len,
                    skipping: false,
                },
            ))
        }
        Some(p) if p.inode != inode || p.offset > len => (0, false),
        Some(p) => (p.offset, p.skipping),
    };
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    f.take(cap as u64).read_to_end(&mut buf)?;
    let mut from = 0;
    if skipping {
        // the tail of an overlong line: drop it up to its newline
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                from = i + 1;
                skipping = false;
            }
            None => from = buf.len(),
        }
    }
    let complete = buf[from..]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(from, |i| from + i + 1);
    let mut consumed = complete;
    if complete == from && buf.len() - from >= cap && !skipping {
        // a whole read without a newline: skip this line instead of re-reading it forever
        tracing::warn!(file = %path.display(), bytes = buf.len() - from, "a log line longer than one read is skipped");
        consumed = buf.len();
        skipping = true;
    } else if skipping {
        consumed = buf.len();
    }
    let text = String::from_utf8_lossy(&buf[from..complete]).into_owned();
    Ok((
        text,
        LogPosition {
            inode,
            offset: start + consumed as u64,
            skipping,
        },
    ))
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
