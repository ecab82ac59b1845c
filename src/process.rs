//! Running someone else's program safely: hooks and command sources alike.
//!
//! * argv as given, no shell; the environment cleared down to what the caller
//!   passes (the daemon's own secrets stay in the daemon);
//! * its own process group, killed whole at the timeout, so a script's
//!   children do not linger;
//! * stdout and stderr read as they are written, never into unbounded
//!   buffers: either the last N bytes are kept ([`Limit::Tail`], hooks) or the
//!   program is killed once it writes more than N ([`Limit::Fail`], sources).
//!
//! A foundation module: both the mail sources (probes) and the hooks
//! (actions) use it.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// The variables passed through from the daemon's environment.
pub const PASSED_ENV: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TZ"];

/// The PATH used when the daemon has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How much of stdout is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Keep the last `n` bytes (a chatty hook never blocks on a full pipe).
    Tail(usize),
    /// Keep everything up to `n` bytes; more is an error and the program is killed.
    Fail(usize),
}

/// How a program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It exited (`code` is None when a signal ended it).
    Exited {
        /// Exit status 0.
        success: bool,
        /// The exit code.
        code: Option<i32>,
    },
    /// Killed, with its process group, at the timeout.
    TimedOut,
    /// Killed, with its process group, for writing more than the limit.
    TooMuchOutput,
}

/// What a program did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// How it ended.
    pub ending: Ending,
    /// Its stdout (the tail, or everything under the limit).
    pub stdout: Vec<u8>,
    /// Bytes of stdout dropped from the front ([`Limit::Tail`]).
    pub stdout_dropped: u64,
    /// The last 64 KiB of stderr.
    pub stderr: String,
    /// Wall time.
    pub duration: Duration,
}

/// The environment a program sees: [`PASSED_ENV`] from ours (PATH defaulted),
/// then `extra`.
pub fn base_env(extra: &[(String, String)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = PASSED_ENV
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|val| (k.to_string(), val)))
        .collect();
    if !v.iter().any(|(k, _)| k == "PATH") {
        v.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    v.extend(extra.iter().cloned());
    v
}

/// Keeps the last `cap` bytes, or fails past `cap`.
struct Sink {
    buf: Vec<u8>,
    limit: Limit,
    dropped: u64,
    over: bool,
}

impl Sink {
    fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        match self.limit {
            Limit::Tail(cap) if self.buf.len() > cap => {
                let cut = self.buf.len() - cap;
                self.dropped += cut as u64;
                self.buf.drain(..cut);
            }
            Limit::Fail(cap) if self.buf.len() > cap => {
                self.over = true;
                self.buf.truncate(cap);
            }
            _ => {}
        }
    }
}

async fn drain(r: Option<impl AsyncRead + Unpin>, limit: Limit) -> Sink {
    let mut s = Sink {
        buf: Vec::new(),
        limit,
        dropped: 0,
        over: false,
    };
    if let Some(mut r) = r {
        let mut chunk = vec![0u8; 64 * 1024];
        while let Ok(n) = r.read(&mut chunk).await {
            if n == 0 || s.over {
                break;
            }
            s.push(&chunk[..n]);
        }
    }
    s
}

fn kill_group(pgid: Option<u32>) {
    if let Some(pid) = pgid.and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: killpg only sends a signal to the process group we created for the child.
        unsafe {
            libc::killpg(pid, libc::SIGKILL);
        }
    }
}

/// Runs `argv` with exactly `env`, `stdin` (if any) and the limits.
///
/// Errors only when the program cannot be started.
pub async fn run(
    argv: &[String],
    env: &[(String, String)],
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    limit: Limit,
) -> std::io::Result<Finished> {
    let started = Instant::now();
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"))?;
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn()?;
    let pgid = child.id();
    if let (Some(mut w), Some(data)) = (child.stdin.take(), stdin) {
        tokio::spawn(async move {
            let _ = w.write_all(&data).await;
            let _ = w.shutdown().await;
        });
    }
    let mut out = tokio::spawn(drain(child.stdout.take(), limit));
    let errs = tokio::spawn(drain(child.stderr.take(), Limit::Tail(64 * 1024)));
    // The end: exit, the timeout, or stdout over its limit (the drain stops early).
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut sink = None;
    let ending: Ending = loop {
        tokio::select! {
            s = child.wait() => {
                let s = s?;
                break Ending::Exited { success: s.success(), code: s.code() };
            }
            () = &mut deadline => {
                kill_group(pgid);
                let _ = child.wait().await;
                break Ending::TimedOut;
            }
            r = &mut out, if sink.is_none() => {
                let s = r.unwrap_or(Sink { buf: Vec::new(), limit, dropped: 0, over: false });
                if s.over {
                    kill_group(pgid);
                    let _ = child.wait().await;
                    sink = Some(s);
                    break Ending::TooMuchOutput;
                }
                sink = Some(s); // stdout closed: keep waiting for the exit
            }
        }
    };
    // Children that outlive the program could hold the pipes open: do not wait long.
    let grace = Duration::from_secs(2);
    let stdout = match sink {
        Some(s) => s,
        None => tokio::time::timeout(grace, out)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(Sink {
                buf: Vec::new(),
                limit,
                dropped: 0,
                over: false,
            }),
    };
    // Cut off: the drain stopped reading, and the program may have died of
    // SIGPIPE before the select above saw the drain end.
    let ending = if stdout.over {
        kill_group(pgid);
        Ending::TooMuchOutput
    } else {
        ending
    };
    let stderr = tokio::time::timeout(grace, errs)
        .await
        .ok()
        .and_then(Result::ok)
        .map(|s| {
            let t = String::from_utf8_lossy(&s.buf).into_owned();
            if s.dropped > 0 {
                format!("[... {} earlier bytes dropped]\n{t}", s.dropped)
            } else {
                t
            }
        })
        .unwrap_or_default();
    Ok(Finished {
        ending,
        stdout: stdout.buf,
        stdout_dropped: stdout.dropped,
        stderr,
        duration: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    #[tokio::test]
    async fn exit_codes_stdin_and_a_cleared_environment() {
        std::env::set_var("RBLWATCH_SECRET_FOR_TEST", "x");
        let f = run(
            &sh("cat; echo \"[$RBLWATCH_SECRET_FOR_TEST][$MINE]\"; exit 3"),
            &base_env(&[("MINE".into(), "m".into())]),
            Some(b"in\n".to_vec()),
            Duration::from_secs(5),
            Limit::Fail(1024),
        )
        .await
        .unwrap();
        assert_eq!(
            f.ending,
            Ending::Exited {
                success: false,
                code: Some(3)
            }
        );
        assert_eq!(String::from_utf8_lossy(&f.stdout), "in\n[][m]\n");
    }

    #[tokio::test]
    async fn the_whole_process_group_dies_at_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("child");
        let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let started = Instant::now();
        let f = run(
            &sh(&script),
            &base_env(&[]),
            None,
            Duration::from_millis(500),
            Limit::Tail(1024),
        )
        .await
        .unwrap();
        assert_eq!(f.ending, Ending::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(3));
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        // SAFETY: signal 0 only checks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z ");
        assert!(!alive, "the grandchild survived");
    }

    #[tokio::test]
    async fn a_flood_is_cut_off_or_tailed() {
        let started = Instant::now();
        let f = run(
            &sh("yes xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
            &base_env(&[]),
            None,
            Duration::from_secs(10),
            Limit::Fail(1 << 20),
        )
        .await
        .unwrap();
        assert_eq!(f.ending, Ending::TooMuchOutput);
        assert_eq!(f.stdout.len(), 1 << 20);
        assert!(started.elapsed() < Duration::from_secs(5));
        let f = run(
            &sh("head -c 300000 /dev/zero | tr '\\0' a; echo END"),
            &base_env(&[]),
            None,
            Duration::from_secs(10),
            Limit::Tail(1000),
        )
        .await
        .unwrap();
        assert!(String::from_utf8_lossy(&f.stdout).ends_with("END\n"));
        assert_eq!(f.stdout.len(), 1000);
        assert!(f.stdout_dropped > 0);
    }
}
