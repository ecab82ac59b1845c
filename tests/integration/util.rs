//! Test helpers: a real rbldnsd on a free loopback port, configs pointing at
//! it, and a runner for the `rblwatch` binary.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const RBLDNSD: &str = "/usr/sbin/rbldnsd";

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A private rbldnsd serving the fixture zones; stopped on drop.
pub struct Rbldnsd {
    pub port: u16,
    pub dir: tempfile::TempDir,
    pid: std::sync::atomic::AtomicI32,
    args: Vec<String>,
}

const ZONES: &[&str] = &[
    "bl.test:ip4set:bl.test.ip4set",
    "bl.test:ip6trie:bl6.test.ip6trie",
    "bl.test:ip4set:multi-a.ip4set",
    "bl6.test:ip6trie:bl6.test.ip6trie",
    "dbl.test:dnset:dbl.test.dnset",
    "all.test:ip4trie:all4.ip4trie",
    "blocked.test:ip4trie:blocked4.ip4trie",
    "outside.test:ip4trie:outside4.ip4trie",
    "refused.test:ip4set:empty.set",
    "refused.test:acl:acl.refuse",
    "timeout.test:ip4set:empty.set",
    "timeout.test:acl:acl.ignore",
    "servfail.test:ip4set:expired.ip4set",
    "dead.test:ip4set:empty.set",
    "dyn.test:ip4set:dyn.test.ip4set",
];

/// A port for a server a test starts (rbldnsd, a daemon's web), chosen below
/// the kernel's ephemeral range (32768-60999): a port taken from that range
/// and released can be handed to any process's next outgoing socket (the
/// tests' own DNS clients open dozens) before the server binds it, and the
/// server's queries then land on a stranger's socket and time out.
fn server_port(bindable: impl Fn(u16) -> bool) -> u16 {
    for _ in 0..1000 {
        let port = fastrand::u16(20_000..32_000);
        if bindable(port) {
            return port;
        }
    }
    panic!("no free port below the ephemeral range");
}

pub fn free_udp_port() -> u16 {
    server_port(|p| std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok())
}

impl Rbldnsd {
    pub fn start() -> Self {
        let dir = Self::zone_dir();
        let zones = dir.path().join("zones");
        for e in std::fs::read_dir(fixtures().join("zones")).expect("fixture zones") {
            let e = e.expect("entry");
            std::fs::copy(e.path(), zones.join(e.file_name())).expect("copy zone");
        }
        let args: Vec<String> = ZONES.iter().map(|z| z.to_string()).collect();
        Self::launch(dir, &args)
    }

    /// A private rbldnsd serving generated zone files: `files` are (file name, content) written
    /// into a fresh temp dir, `zones` are rbldnsd's `zone:type:file` arguments.
    pub fn start_with(files: &[(String, String)], zones: &[String]) -> Self {
        let dir = Self::zone_dir();
        let zdir = dir.path().join("zones");
        for (name, content) in files {
            std::fs::write(zdir.join(name), content).expect("write zone file");
        }
        Self::launch(dir, zones)
    }

    fn zone_dir() -> tempfile::TempDir {
        assert!(
            Path::new(RBLDNSD).exists(),
            "rbldnsd is not installed: run `scripts/test` (it apt-installs rbldnsd) or `apt-get install rbldnsd`"
        );
        let dir = tempfile::Builder::new()
            .prefix("rblwatch-rbldnsd")
            .tempdir()
            .expect("tempdir");
        std::fs::create_dir(dir.path().join("zones")).expect("zones dir");
        dir
    }

    fn launch(dir: tempfile::TempDir, zone_args: &[String]) -> Self {
        let zones = dir.path().join("zones");
        chmod(dir.path(), 0o755);
        chmod(&zones, 0o755);
        for e in std::fs::read_dir(&zones).expect("zones") {
            chmod(&e.expect("entry").path(), 0o644);
        }
        for _ in 0..5 {
            let port = free_udp_port();
            if let Some(pid) = Self::spawn(dir.path(), port, zone_args) {
                return Rbldnsd {
                    port,
                    dir,
                    pid: std::sync::atomic::AtomicI32::new(pid),
                    args: zone_args.to_vec(),
                };
            }
        }
        panic!("rbldnsd would not start");
    }

    /// Starts rbldnsd on `port` over the zones in `dir`; its pid, or `None` (said why).
    fn spawn(dir: &Path, port: u16, zone_args: &[String]) -> Option<i32> {
        let zones = dir.join("zones");
        {
            let pidfile = dir.join("rbldnsd.pid");
            let _ = std::fs::remove_file(&pidfile);
            let mut cmd = Command::new(RBLDNSD);
            if unsafe_is_root() {
                cmd.args(["-u", "rbldns"]);
            }
            cmd.arg("-4")
                .arg("-b")
                .arg(format!("127.0.0.1/{port}"))
                .arg("-w")
                .arg(&zones)
                .arg("-p")
                .arg(&pidfile);
            cmd.args(["-t", "10", "-c", "1s", "-a"]).args(zone_args);
            let out = cmd.output().expect("run rbldnsd");
            if out.status.success() {
                let pid = std::fs::read_to_string(&pidfile)
                    .expect("pidfile")
                    .trim()
                    .parse()
                    .expect("pid");
                return Some(pid);
            }
            eprintln!(
                "rbldnsd failed to start on {port}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        None
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Replaces a zone file atomically, bumps its mtime past the last load and asks for a reload.
    pub fn write_zone(&self, name: &str, content: &str) {
        let zones = self.dir.path().join("zones");
        let tmp = zones.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, content).expect("write zone");
        chmod(&tmp, 0o644);
        let f = std::fs::File::options()
            .write(true)
            .open(&tmp)
            .expect("open");
        // rbldnsd compares mtimes at one-second resolution: move it clearly forward.
        let t = std::time::SystemTime::now() + Duration::from_secs(2);
        f.set_modified(t).expect("mtime");
        std::fs::rename(&tmp, zones.join(name)).expect("rename zone");
        self.reload();
    }

    /// Makes rbldnsd read its zones now (SIGHUP). A full suite on a busy
    /// machine has seen a test's rbldnsd gone (kill: no such process; cause not
    /// found): it is started again on the same port, and the log says so.
    pub fn reload(&self) {
        use std::sync::atomic::Ordering;
        let pid = self.pid.load(Ordering::SeqCst);
        // SAFETY: kill(2) with signal 0 only checks that the process exists.
        if unsafe { libc::kill(pid, 0) } != 0 {
            eprintln!(
                "rbldnsd (pid {pid}) on port {} is gone; starting it again",
                self.port
            );
            for _ in 0..10 {
                if let Some(p) = Self::spawn(self.dir.path(), self.port, &self.args) {
                    self.pid.store(p, Ordering::SeqCst);
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            return;
        }
        // SAFETY: a signal to our own rbldnsd.
        unsafe {
            libc::kill(pid, libc::SIGHUP);
        }
    }
}

impl Drop for Rbldnsd {
    fn drop(&mut self) {
        let pid = self.pid.load(std::sync::atomic::Ordering::SeqCst);
        // SAFETY: a signal to our own rbldnsd.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
}

fn unsafe_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

pub fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Writes a config using the fixture lists and the given rbldnsd.
pub fn write_config(dir: &Path, rbl: &Rbldnsd, lists: &[&str], extra: &str) -> PathBuf {
    let use_ = lists
        .iter()
        .map(|l| format!("{l:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let text = format!(
        r#"[resolver]
nameservers = ["{addr}"]
timeout = "400ms"
retries = 0

[lists]
dirs = [{lists_dir:?}]
use = [{use_}]

{extra}
"#,
        addr = rbl.addr(),
        lists_dir = fixtures().join("lists.d").display().to_string(),
    );
    // every daemon gets its own web port, unless the test sets [web] itself
    let text = if extra.contains("[web]") {
        text
    } else {
        format!(
            "{text}\n[web]\nlisten = \"127.0.0.1:{}\"\n",
            free_tcp_port()
        )
    };
    let p = dir.join("rblwatch.toml");
    std::fs::write(&p, text).expect("write config");
    p
}

pub fn rblwatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rblwatch"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run rblwatch")
}

/// `rblwatch daemon --once -C cfg`, which must succeed; returns its log.
pub fn once(cfg: &Path) -> String {
    let o = rblwatch(&["daemon", "--once", "-C", cfg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    stderr(&o)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Polls `f` until it returns Some, or panics after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A private Postfix instance on a free loopback port (vulnerable configuration at start); stopped on drop.
pub struct Postfix {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

pub fn free_tcp_port() -> u16 {
    server_port(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
}

impl Postfix {
    pub fn start() -> Self {
        assert!(
            Path::new("/usr/sbin/postfix").exists(),
            "postfix is not installed: run `scripts/test` (it apt-installs postfix with 'No configuration')"
        );
        let dir = tempfile::Builder::new()
            .prefix("rblwatch-postfix")
            .tempdir()
            .expect("tempdir");
        chmod(dir.path(), 0o755);
        for _ in 0..3 {
            let port = free_tcp_port();
            if Self::script(&["start", dir.path().to_str().unwrap(), &port.to_string()]) {
                let pf = Postfix { dir, port };
                wait_for("postfix to listen", Duration::from_secs(10), || {
                    std::net::TcpStream::connect(("127.0.0.1", port))
                        .ok()
                        .map(|_| ())
                });
                return pf;
            }
        }
        panic!("postfix would not start");
    }

    fn script(args: &[&str]) -> bool {
        Command::new(fixtures().join("postfix-instance.sh"))
            .args(args)
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("postfix-conf")
    }

    pub fn log(&self) -> PathBuf {
        self.dir.path().join("maillog")
    }

    pub fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn strict(&self) {
        assert!(Self::script(&["strict", self.dir.path().to_str().unwrap()]));
        std::thread::sleep(Duration::from_millis(1200));
    }

    pub fn tls(&self) {
        assert!(Self::script(&["tls", self.dir.path().to_str().unwrap()]));
        std::thread::sleep(Duration::from_millis(1200));
    }

    pub fn queue_json(&self) -> String {
        let o = Command::new("postqueue")
            .args(["-c", self.conf().to_str().unwrap(), "-j"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Sends `n` messages from a forged sender to random nonexistent users; returns how many were accepted.
    pub fn attack(&self, n: usize) -> usize {
        let mut accepted = 0;
        for i in 0..n {
            if smtp_send(
                &self.server(),
                "victim@victim.test",
                &format!("nouser-{:08x}@example.test", fastrand::u32(..)),
                &format!("attack {i}"),
            ) {
                accepted += 1;
            }
        }
        accepted
    }

    /// Waits until nothing is in incoming/active/maildrop (all NDRs created and deferred).
    pub fn settle(&self) {
        wait_for("the queue to settle", Duration::from_secs(30), || {
            let q = self.queue_json();
            (!q.contains("\"queue_name\": \"incoming\"")
                && !q.contains("\"queue_name\": \"active\"")
                && !q.contains("\"queue_name\": \"maildrop\""))
            .then_some(())
        });
        std::thread::sleep(Duration::from_millis(500));
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        Self::script(&["stop", self.dir.path().to_str().unwrap()]);
    }
}

/// A minimal SMTP client: true when the message was accepted (250 after DATA).
pub fn smtp_send(server: &str, from: &str, to: &str, body: &str) -> bool {
    use std::io::{BufRead, BufReader, Write};
    let Ok(s) = std::net::TcpStream::connect(server) else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    let reply = |r: &mut BufReader<std::net::TcpStream>| -> u16 {
        loop {
            let mut l = String::new();
            if r.read_line(&mut l).unwrap_or(0) == 0 {
                return 0;
            }
            if l.as_bytes().get(3) != Some(&b'-') {
                return l.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
            }
        }
    };
    if reply(&mut r) != 220 {
        return false;
    }
    let mut cmd = |c: &str, r: &mut BufReader<std::net::TcpStream>| -> u16 {
        w.write_all(format!("{c}\r\n").as_bytes()).ok();
        reply(r)
    };
    if cmd("EHLO attacker.test", &mut r) != 250
        || cmd(&format!("MAIL FROM:<{from}>"), &mut r) != 250
    {
        return false;
    }
    if cmd(&format!("RCPT TO:<{to}>"), &mut r) / 100 != 2 {
        cmd("QUIT", &mut r);
        return false;
    }
    if cmd("DATA", &mut r) != 354 {
        return false;
    }
    let ok = cmd(
        &format!("Subject: test\r\nFrom: <{from}>\r\nTo: <{to}>\r\n\r\n{body}\r\n."),
        &mut r,
    ) == 250;
    cmd("QUIT", &mut r);
    ok
}

/// A tiny HTTP/1.1 server on a free loopback port serving fixed bodies by path; records requests.
pub struct HttpFixture {
    pub port: u16,
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl HttpFixture {
    pub fn serve(routes: Vec<(&'static str, &'static str, String)>) -> Self {
        Self::serve_on(0, routes)
    }

    /// The requests' bodies (after the blank line).
    pub fn bodies(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| {
                r.split_once("\r\n\r\n")
                    .map(|x| x.1.to_string())
                    .unwrap_or_default()
            })
            .collect()
    }

    pub fn serve_on(port: u16, routes: Vec<(&'static str, &'static str, String)>) -> Self {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = l.local_addr().unwrap().port();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let reqs = requests.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                // read the head, then Content-Length bytes of body
                let mut buf = Vec::new();
                let mut chunk = vec![0u8; 65536];
                s.set_read_timeout(Some(Duration::from_secs(5))).ok();
                loop {
                    let n = s.read(&mut chunk).unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if body.len() >= len {
                            break;
                        }
                    }
                }
                let req = String::from_utf8_lossy(&buf).into_owned();
                let path = req
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("/")
                    .split('?')
                    .next()
                    .unwrap_or("/")
                    .to_string();
                reqs.lock().unwrap().push(req);
                let (status, ctype, body) = routes
                    .iter()
                    .find(|(p, _, _)| *p == path)
                    // a content type "status:500 Internal Server Error" answers with that status
                    .map(|(_, c, b)| match c.strip_prefix("status:") {
                        Some(st) => (st, "text/plain", b.clone()),
                        None => ("200 OK", *c, b.clone()),
                    })
                    .unwrap_or(("404 Not Found", "text/plain", "not found".into()));
                let _ = write!(s, "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            }
        });
        HttpFixture { port, requests }
    }
}

/// A long-lived `rblwatch daemon` (service mode), its log in a file; killed on drop.
pub struct Daemon {
    pub child: Child,
    log: std::path::PathBuf,
}

impl Daemon {
    pub fn start(cfg: &std::path::Path) -> Self {
        Self::start_with(cfg, &[], None)
    }

    /// Like `start`, with extra environment variables (e.g. `RBLWATCH_FAULT`).
    pub fn start_with_env(cfg: &std::path::Path, env: &[(&str, &str)]) -> Self {
        Self::start_with(cfg, env, None)
    }

    /// Like [`Daemon::start`], under a limit of `nofile` file descriptors
    /// (soft and hard, as systemd's `LimitNOFILE=` or an old unit's 1,024).
    pub fn start_with_limit(cfg: &std::path::Path, nofile: Option<u64>) -> Self {
        Self::start_with(cfg, &[], nofile)
    }

    fn start_with(cfg: &std::path::Path, env: &[(&str, &str)], nofile: Option<u64>) -> Self {
        use std::os::unix::process::CommandExt;
        let log = cfg.with_extension(format!("log{}", fastrand::u32(..)));
        let f = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rblwatch"));
        cmd.args(["daemon", "-C", cfg.to_str().unwrap()])
            .env("RUST_LOG", "rblwatch=debug,info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(f);
        if let Some(n) = nofile {
            // SAFETY: setrlimit is async-signal-safe; the closure allocates nothing.
            unsafe {
                cmd.pre_exec(move || {
                    let r = libc::rlimit {
                        rlim_cur: n,
                        rlim_max: n,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = cmd.spawn().unwrap();
        Daemon { child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the log contains `needle` (the daemon's own account).
    pub fn wait_log(&self, needle: &str, limit: Duration) -> String {
        wait_for(&format!("{needle:?} in the daemon log"), limit, || {
            let l = self.log();
            l.contains(needle).then_some(l)
        })
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, sig: &str) {
        Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
    }

    /// Waits for exit; returns the status and how long it took.
    pub fn wait_exit(&mut self, limit: Duration) -> (Option<i32>, Duration) {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return (s.code(), start.elapsed());
            }
            assert!(
                start.elapsed() < limit,
                "daemon did not exit within {limit:?}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` on 127.0.0.1:port: (status, body). Waits up to 10 s for the
/// listener (a daemon just started binds it after loading its state).
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = wait_for("a listener on the port", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// `GET path` answered 200 with JSON.
pub fn http_json(port: u16, path: &str) -> serde_json::Value {
    let (s, b) = http_get(port, path);
    assert_eq!(s, 200, "{path}: {b}");
    serde_json::from_str(&b).unwrap()
}
