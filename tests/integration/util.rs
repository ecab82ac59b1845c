//! Test helpers: a real rbldnsd on a free loopback port, configs pointing at
//! it, and a runner for the `rblwatch` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub const RBLDNSD: &str = "/usr/sbin/rbldnsd";

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A private rbldnsd serving the fixture zones; stopped on drop.
pub struct Rbldnsd {
    pub port: u16,
    pub dir: tempfile::TempDir,
    pid: i32,
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

pub fn free_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind an ephemeral UDP port");
    s.local_addr().expect("local addr").port()
}

impl Rbldnsd {
    pub fn start() -> Self {
        assert!(
            Path::new(RBLDNSD).exists(),
            "rbldnsd is not installed: run `scripts/test` (it apt-installs rbldnsd) or `apt-get install rbldnsd`"
        );
        let dir = tempfile::Builder::new()
            .prefix("rblwatch-rbldnsd")
            .tempdir()
            .expect("tempdir");
        let zones = dir.path().join("zones");
        std::fs::create_dir(&zones).expect("zones dir");
        for e in std::fs::read_dir(fixtures().join("zones")).expect("fixture zones") {
            let e = e.expect("entry");
            std::fs::copy(e.path(), zones.join(e.file_name())).expect("copy zone");
        }
        chmod(dir.path(), 0o755);
        chmod(&zones, 0o755);
        for e in std::fs::read_dir(&zones).expect("zones") {
            chmod(&e.expect("entry").path(), 0o644);
        }
        for _ in 0..5 {
            let port = free_udp_port();
            let pidfile = dir.path().join("rbldnsd.pid");
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
            cmd.args(["-t", "10", "-c", "1s", "-a"]).args(ZONES);
            let out = cmd.output().expect("run rbldnsd");
            if out.status.success() {
                let pid = std::fs::read_to_string(&pidfile)
                    .expect("pidfile")
                    .trim()
                    .parse()
                    .expect("pid");
                return Rbldnsd { port, dir, pid };
            }
            eprintln!(
                "rbldnsd failed to start on {port}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        panic!("rbldnsd would not start");
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

    pub fn reload(&self) {
        let _ = Command::new("kill")
            .arg("-HUP")
            .arg(self.pid.to_string())
            .status();
    }
}

impl Drop for Rbldnsd {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
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
