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
    fn new(limit: Limit) -> Self {
        Sink {
            buf: Vec::new(),
            limit,
            dropped: 0,
            over: false,
        }
    }

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

    /// The kept bytes as text, with a note of how many earlier ones were dropped.
    fn text(&self) -> String {
        let t = String::from_utf8_lossy(&self.buf).into_owned();
        if self.dropped > 0 {
            format!("[... {} earlier bytes dropped]\n{t}", self.dropped)
        } else {
            t
        }
    }
}

/// Reads `r` into `s` until end of file, an error, or the limit. The sink is
/// the caller's: when this future is dropped (the program is over but a
/// straggler keeps the pipe open), what was read so far is kept.
async fn drain(r: Option<&mut (impl AsyncRead + Unpin)>, s: &mut Sink) -> bool {
    if let Some(r) = r {
        let mut chunk = vec![0u8; 64 * 1024];
        while let Ok(n) = r.read(&mut chunk).await {
            if n == 0 || s.over {
                break;
            }
            s.push(&chunk[..n]);
        }
    }
    s.over
}

fn kill_group(pgid: Option<u32>) {
    if let Some(pid) = pgid.and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: killpg only sends a signal to the process group we created
        // for the child. After the leader is reaped its id stays reserved as
        // long as any member of the group lives, so this never reaches a
        // stranger's group while there is anything of ours left to kill.
        unsafe {
            libc::killpg(pid, libc::SIGKILL);
        }
    }
}

/// Kills the process group when dropped.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group(self.0);
    }
}

/// The inode of a pipe end we hold.
fn pipe_inode(fd: Option<std::os::fd::RawFd>) -> Option<u64> {
    use std::os::fd::BorrowedFd;
    use std::os::unix::fs::MetadataExt;
    let fd = fd?;
    // SAFETY: `fd` is one of our open pipe ends, alive for this call; the
    // borrowed handle is only used to fstat it and is not closed.
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    let f = std::fs::File::from(b.try_clone_to_owned().ok()?);
    f.metadata().ok().map(|m| m.ino())
}

/// Kills every process (but us and our own just-forked children) that holds
/// one of the pipes `inodes`: a program's descendant that left its process
/// group (`setsid`) but kept its stdout. Blocking (reads /proc). Returns how
/// many were killed.
fn kill_pipe_holders(inodes: &[u64]) -> usize {
    let me = std::process::id();
    let wanted: Vec<String> = inodes.iter().map(|i| format!("pipe:[{i}]")).collect();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut killed = 0;
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        // Our own children between fork and exec briefly hold every pipe we
        // have (close-on-exec); they belong to other runs: leave them.
        let ppid = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(") ")
                    .and_then(|(_, rest)| rest.split(' ').nth(1)?.parse::<u32>().ok())
            });
        if ppid == Some(me) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .ok()
                .and_then(|l| l.to_str().map(|s| wanted.iter().any(|w| w == s)))
                .unwrap_or(false)
        });
        if holds {
            if let Ok(p) = i32::try_from(pid) {
                // SAFETY: SIGKILL to a process that holds our program's pipe.
                if unsafe { libc::kill(p, libc::SIGKILL) } == 0 {
                    killed += 1;
                }
            }
        }
    }
    killed
}

/// Reads what is left in both pipes for at most `limit`; true when both are closed.
async fn finish<A, B>(
    mut a: std::pin::Pin<&mut A>,
    mut b: std::pin::Pin<&mut B>,
    limit: Duration,
) -> bool
where
    A: futures::future::FusedFuture<Output = bool>,
    B: futures::future::FusedFuture<Output = bool>,
{
    let _ = tokio::time::timeout(limit, async {
        if !a.is_terminated() {
            a.as_mut().await;
        }
        if !b.is_terminated() {
            b.as_mut().await;
        }
    })
    .await;
    a.is_terminated() && b.is_terminated()
}

/// How long the output may still flow once the program itself has exited:
/// what it printed is already in the pipe; more would come only from
/// stragglers it left behind.
const AFTER_EXIT: Duration = Duration::from_millis(100);

/// How long to wait for the pipes to close once every holder was killed.
const AFTER_KILL: Duration = Duration::from_secs(1);

/// The command for `prog`: exactly `env`, stdin piped or null, stdout and
/// stderr piped, in its own process group, killed if dropped; started.
fn spawn(
    prog: &str,
    args: &[String],
    env: &[(String, String)],
    piped_stdin: bool,
) -> std::io::Result<tokio::process::Child> {
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(if piped_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    cmd.spawn()
}

/// What is still in the pipes (the program's last words), briefly; then
/// its process group, and whatever else holds its pipes, is killed.
async fn close_output<A, B>(
    prog: &str,
    pgid: Option<u32>,
    inodes: &[u64],
    mut d_out: std::pin::Pin<&mut A>,
    mut d_err: std::pin::Pin<&mut B>,
) where
    A: futures::future::FusedFuture<Output = bool>,
    B: futures::future::FusedFuture<Output = bool>,
{
    let mut closed = finish(d_out.as_mut(), d_err.as_mut(), AFTER_EXIT).await;
    kill_group(pgid);
    if !closed {
        let inodes = inodes.to_vec();
        let n = tokio::task::spawn_blocking(move || kill_pipe_holders(&inodes))
            .await
            .unwrap_or(0);
        if n > 0 {
            tracing::debug!(program = %prog, processes = n, "killed what the program left holding its output");
        }
        closed = finish(d_out.as_mut(), d_err.as_mut(), AFTER_KILL).await;
    }
    if !closed {
        tracing::debug!(program = %prog, "its output is still held open by a process that cannot be killed; not read further");
    }
}

/// Runs `argv` with exactly `env`, `stdin` (if any) and the limits.
///
/// The run is over when the program exits (its output is what it printed by
/// then), at the timeout, or past the output limit. Then its whole process
/// group is killed, and any other process still holding its stdout or stderr
/// (a descendant that left the group): nothing it started outlives the run,
/// and no descriptor of ours stays open behind it.
///
/// Errors only when the program cannot be started.
pub async fn run(
    argv: &[String],
    env: &[(String, String)],
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    limit: Limit,
) -> std::io::Result<Finished> {
    use futures::future::FusedFuture;
    use futures::FutureExt;
    use std::os::fd::AsRawFd;

    let started = Instant::now();
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"))?;
    let mut child = spawn(prog, args, env, stdin.is_some())?;
    let pgid = child.id();
    // A run abandoned half-way (the daemon stopping) takes its group with it.
    let mut group = GroupGuard(pgid);
    let mut input = child.stdin.take();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let inodes: Vec<u64> = [
        pipe_inode(stdout.as_ref().map(|p| p.as_raw_fd())),
        pipe_inode(stderr.as_ref().map(|p| p.as_raw_fd())),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut out = Sink::new(limit);
    let mut err = Sink::new(Limit::Tail(64 * 1024));
    let ending = {
        // Fed, not spawned: a program that never reads its stdin does not
        // keep a task and a descriptor of ours alive after the run.
        let feed = async {
            if let (Some(w), Some(data)) = (input.as_mut(), stdin) {
                let _ = w.write_all(&data).await;
                let _ = w.shutdown().await;
            }
            input = None;
        }
        .fuse();
        let d_out = drain(stdout.as_mut(), &mut out).fuse();
        let d_err = drain(stderr.as_mut(), &mut err).fuse();
        let deadline = tokio::time::sleep(timeout).fuse();
        tokio::pin!(feed, d_out, d_err, deadline);
        // The end: exit, the timeout, or stdout over its limit (the drain stops early).
        let ending = loop {
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
                over = &mut d_out, if !d_out.is_terminated() => if over {
                    kill_group(pgid);
                    let _ = child.wait().await;
                    break Ending::TooMuchOutput;
                },
                _ = &mut d_err, if !d_err.is_terminated() => {}
                () = &mut feed, if !feed.is_terminated() => {}
            }
        };
        // What is still in the pipes (the program's last words), briefly; then
        // its process group, and whatever else holds its pipes, is killed.
        close_output(prog, pgid, &inodes, d_out.as_mut(), d_err.as_mut()).await;
        ending
    };
    drop((input, stdout, stderr)); // every descriptor of the run closed here
                                   // Cut off: the drain stopped reading, and the program may have died of
                                   // SIGPIPE before the select above saw the drain end.
    let ending = if out.over {
        kill_group(pgid);
        Ending::TooMuchOutput
    } else {
        ending
    };
    let stderr = err.text();
    group.0 = None; // killed above already
    Ok(Finished {
        ending,
        stdout: out.buf,
        stdout_dropped: out.dropped,
        stderr,
        duration: started.elapsed(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn exited(success: bool, code: Option<i32>) -> Ending {
        Ending::Exited { success, code }
    }

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
        assert_eq!(f.ending, exited(false, Some(3)));
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

    /// Live (not zombie) processes whose command line is exactly `argv`.
    pub(crate) fn live_with_cmdline(argv: &[&str]) -> usize {
        let want: Vec<u8> = argv
            .iter()
            .flat_map(|a| [a.as_bytes(), b"\0"].concat())
            .collect();
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                let p = e.path();
                std::fs::read(p.join("cmdline")).is_ok_and(|c| c == want)
                    && !std::fs::read_to_string(p.join("stat"))
                        .unwrap_or_default()
                        .contains(") Z ")
            })
            .count()
    }

    /// Issue 21: a program that exits leaving a child (in its group) and a
    /// grandchild in a session of its own, both holding its stdout. What it
    /// printed is kept, the run ends at once, and neither straggler survives.
    #[tokio::test]
    async fn stragglers_holding_stdout_lose_nothing_and_do_not_survive() {
        // marked with our pid: strays of another test run are not ours
        let (a, b) = (
            format!("3141.{}", std::process::id()),
            format!("3142.{}", std::process::id()),
        );
        let started = Instant::now();
        let f = run(
            &sh(&format!(
                "echo 42; sleep {a} & setsid sleep {b} & echo bye >&2"
            )),
            &base_env(&[]),
            None,
            Duration::from_secs(30),
            Limit::Fail(1024),
        )
        .await
        .unwrap();
        assert_eq!(f.ending, exited(true, Some(0)));
        assert_eq!(String::from_utf8_lossy(&f.stdout), "42\n");
        assert_eq!(f.stderr, "bye\n");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        let gone = (0..50).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            live_with_cmdline(&["sleep", &a]) + live_with_cmdline(&["sleep", &b]) == 0
        });
        assert!(gone, "a straggler survived the run");
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
