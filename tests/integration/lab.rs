//! Lab parts for end-to-end tests, each real and private to one test:
//!
//! - [`DnsLab`]: an authoritative DNS delegation on its own 127.x.y.0/24 (NSD for `.` and the parent
//!   zones, rbldnsd for each list, a "public resolver" stand-in, optionally an unbound recursor), all
//!   on port 53 because NS records carry no port;
//! - [`Exim`]: a private, unpacked Exim on a free port (vulnerable or strict recipient checks);
//! - [`Receiver`]: a receiving MX (aiosmtpd) answering by rules, recording what it got;
//! - [`MailRoutes`] and `Postfix::start_relaying`: MTAs relaying to the receiver, optionally under
//!   realistic host names (a private `/etc/hosts` in a mount namespace of the MTA only).
//!
//! `tests/fixtures/README.md` describes how to use them.

use std::collections::BTreeSet;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RData, RecordType};

use crate::util::{chmod, fixtures, free_tcp_port, wait_for, Postfix};

// ---------------------------------------------------------------------------------------------
// processes

/// A child process in its own process group: SIGTERM to the group, then SIGKILL, and reaped on
/// drop (also when the test panics).
struct Proc {
    child: Child,
    what: String,
    log: PathBuf,
}

impl Proc {
    /// Spawns `cmd` with stdout and stderr appended to `log`.
    fn spawn(what: &str, cmd: &mut Command, log: &Path) -> Proc {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup log"))
            .stderr(out)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        Proc {
            child,
            what: what.to_string(),
            log: log.to_path_buf(),
        }
    }

    /// Panics with the log when the process has exited.
    fn check_alive(&mut self) {
        if let Ok(Some(st)) = self.child.try_wait() {
            panic!(
                "{} exited ({st}):\n{}",
                self.what,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let pgid = self.pid();
        // SAFETY: kill(2) on the process group we created for this child.
        unsafe {
            libc::kill(-pgid, libc::SIGTERM);
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                // the group may still have children (NSD's servers, Exim's deliveries)
                unsafe {
                    libc::kill(-pgid, libc::SIGKILL);
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn tempdir(prefix: &str) -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("tempdir");
    chmod(d.path(), 0o755);
    d
}

/// Writes `content` to `path` atomically with an mtime past the file's previous one (rbldnsd and
/// NSD notice changes by mtime at one-second resolution).
fn write_bumped(path: &Path, content: &str) {
    let old = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let now = SystemTime::now();
    let t = match old {
        Some(o) if o + Duration::from_secs(1) > now => o + Duration::from_secs(1),
        _ => now,
    };
    let tmp = path.with_extension("lab-tmp");
    std::fs::write(&tmp, content).expect("write file");
    chmod(&tmp, 0o644);
    File::options()
        .write(true)
        .open(&tmp)
        .and_then(|f| f.set_modified(t))
        .expect("mtime");
    std::fs::rename(&tmp, path).expect("rename");
}

// ---------------------------------------------------------------------------------------------
// DNS queries

/// One DNS query over UDP (no retries); None on timeout.
pub fn dns_query(
    server: SocketAddr,
    name: &str,
    rtype: RecordType,
    recurse: bool,
    timeout: Duration,
) -> Option<Message> {
    let mut q = Message::query();
    q.add_query(Query::query(
        Name::from_ascii(name).expect("query name"),
        rtype,
    ));
    q.metadata.recursion_desired = recurse;
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(timeout)).expect("timeout");
    // connected: a closed port fails at once (ECONNREFUSED) instead of timing out
    sock.connect(server).ok()?;
    sock.send(&q.to_vec().expect("encode")).ok()?;
    let mut buf = [0u8; 4096];
    let start = Instant::now();
    while start.elapsed() < timeout {
        let n = sock.recv(&mut buf).ok()?;
        if let Ok(r) = Message::from_vec(&buf[..n]) {
            if r.metadata.id == q.metadata.id {
                return Some(r);
            }
        }
    }
    None
}

/// The A addresses in a section of a reply.
pub fn a_records(records: &[hickory_proto::rr::Record]) -> Vec<Ipv4Addr> {
    records
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

/// `dig` with the given arguments; its stdout.
pub fn dig(args: &[&str]) -> String {
    let o = Command::new("dig")
        .args(["+time=1", "+tries=1"])
        .args(args)
        .output()
        .expect("run dig (apt-get install dnsutils)");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn wait_dns(proc: &mut Proc, server: SocketAddr, name: &str) {
    let start = Instant::now();
    loop {
        proc.check_alive();
        if dns_query(
            server,
            name,
            RecordType::SOA,
            false,
            Duration::from_millis(200),
        )
        .is_some()
        {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{} did not answer on {server}",
            proc.what
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// DnsLab

/// One data file of a list zone (an rbldnsd dataset).
#[derive(Clone, Debug)]
pub struct Dataset {
    /// rbldnsd dataset type: `ip4set`, `ip4trie`, `ip6trie`, `dnset`, `combined` ...
    pub kind: String,
    /// File name inside the zone's data directory.
    pub file: String,
    pub content: String,
}

impl Dataset {
    pub fn new(kind: &str, file: &str, content: &str) -> Self {
        Dataset {
            kind: kind.into(),
            file: file.into(),
            content: content.into(),
        }
    }

    /// An `ip4set` in the file `ip4set`.
    pub fn ip4set(content: &str) -> Self {
        Self::new("ip4set", "ip4set", content)
    }

    /// A `dnset` (domain list) in the file `dnset`.
    pub fn dnset(content: &str) -> Self {
        Self::new("dnset", "dnset", content)
    }
}

#[derive(Clone, Debug)]
struct ListSpec {
    zone: String,
    servers: usize,
    datasets: Vec<Dataset>,
}

/// What a [`DnsLab`] serves.
#[derive(Clone, Debug)]
pub struct DnsLabSpec {
    lists: Vec<ListSpec>,
    ns_ttl: u32,
    blocked: Option<Vec<String>>,
    recursor: bool,
}

impl Default for DnsLabSpec {
    fn default() -> Self {
        DnsLabSpec {
            lists: Vec::new(),
            ns_ttl: 2,
            blocked: None,
            recursor: false,
        }
    }
}

impl DnsLabSpec {
    pub fn new() -> Self {
        Self::default()
    }

    /// A list zone delegated to `servers` rbldnsd instances serving `datasets` (none: an ip4set
    /// listing 127.0.0.2 and a dnset listing `test`, the RFC 5782 test points).
    pub fn list(mut self, zone: &str, servers: usize, datasets: &[Dataset]) -> Self {
        assert!(servers >= 1, "a list needs at least one server");
        let zone = zone.trim_end_matches('.').to_ascii_lowercase();
        let datasets = if datasets.is_empty() {
            vec![
                Dataset::ip4set(&format!(
                    "$SOA 60 ns1.{zone}. hostmaster.{zone}. 0 600 60 3600 10\n$TTL 10\n\
                     :127.0.0.2:Listed in {zone}: $\n127.0.0.2\n"
                )),
                Dataset::dnset(&format!(
                    "$TTL 10\n:127.0.1.2:Domain $ listed in {zone}\ntest\n"
                )),
            ]
        } else {
            datasets.to_vec()
        };
        self.lists.push(ListSpec {
            zone,
            servers,
            datasets,
        });
        self
    }

    /// TTL of the list zones' NS records and glue in their parent zone (default 2 s).
    pub fn ns_ttl(mut self, secs: u32) -> Self {
        self.ns_ttl = secs;
        self
    }

    /// The zones the public-resolver stand-in answers with 127.255.255.254 (default: every list).
    pub fn public_resolver_blocks(mut self, zones: &[&str]) -> Self {
        self.blocked = Some(zones.iter().map(|z| z.to_ascii_lowercase()).collect());
        self
    }

    /// Also run an unbound recursor using the lab root as its root hints.
    pub fn recursor(mut self) -> Self {
        self.recursor = true;
        self
    }
}

struct LabServer {
    addr: Ipv4Addr,
    proc: Option<Proc>,
    /// While stopped: a bound UDP socket nobody reads, so queries time out (as a dead server
    /// on the Internet does) instead of getting an ICMP "port unreachable" at once.
    silent: Option<UdpSocket>,
}

struct LabZone {
    name: String,
    datasets: Vec<Dataset>,
    servers: Vec<LabServer>,
    delegation: Vec<Ipv4Addr>,
}

struct DnsState {
    nsd: Proc,
    serial: u32,
    zones: Vec<LabZone>,
    next_host: u8,
}

/// An authoritative DNS delegation for direct-mode DNSBL tests, on a private 127.a.b.0/24, port 53:
///
/// | address | what |
/// |---|---|
/// | 127.a.b.1 | NSD: the root zone `.` and every parent of a list zone (`org.`, `spamhaus.org.` ...) |
/// | 127.a.b.11, .12 ... | rbldnsd, one per authoritative server of a list (`ns1.<zone>`, `ns2.<zone>` ...) |
/// | 127.a.b.53 | the "public resolver" stand-in: 127.255.255.254 for every name under the blocked zones |
/// | 127.a.b.54 | unbound, recursing from the lab root (with [`DnsLabSpec::recursor`]) |
///
/// Needs root (port 53). Everything stops on drop.
pub struct DnsLab {
    net: [u8; 3],
    ns_ttl: u32,
    state: Mutex<DnsState>,
    standin: Proc,
    recursor: Option<Proc>,
    _lock: File,
    pub dir: tempfile::TempDir,
}

const NSD_HOST: u8 = 1;
const STANDIN_HOST: u8 = 53;
const RECURSOR_HOST: u8 = 54;
const ROOT_NS: &str = "a.root-servers.lab.";

/// Reserves a 127.a.b.0/24 that nothing listens on, across processes (a lock file held while the
/// lab lives) and within this one.
fn reserve_net() -> ([u8; 3], File) {
    let dir = Path::new("/tmp/rblwatch-lab-nets");
    std::fs::create_dir_all(dir).expect("lock dir");
    for _ in 0..500 {
        let a = fastrand::u8(64..=250);
        let b = fastrand::u8(1..=254);
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("127.{a}.{b}.lock")))
            .expect("lock file");
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a file descriptor we own.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            continue;
        }
        if !net_in_use(a, b) {
            return ([127, a, b], f);
        }
    }
    panic!("no free 127.x.y.0/24 found");
}

/// Whether any socket is bound to an address in 127.a.b.0/24.
fn net_in_use(a: u8, b: u8) -> bool {
    ["/proc/net/udp", "/proc/net/tcp"].iter().any(|p| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter_map(|local| u32::from_str_radix(local.split(':').next()?, 16).ok())
            .any(|ip| {
                let o = ip.to_le_bytes();
                o[0] == 127 && o[1] == a && o[2] == b
            })
    })
}

fn fqdn(zone: &str) -> String {
    if zone.is_empty() {
        ".".into()
    } else {
        format!("{zone}.")
    }
}

fn parent(zone: &str) -> String {
    zone.split_once('.')
        .map(|(_, p)| p.to_string())
        .unwrap_or_default()
}

impl DnsLab {
    pub fn start(spec: DnsLabSpec) -> DnsLab {
        assert!(
            is_root(),
            "DnsLab listens on port 53 of 127.x.y.z: run the tests as root"
        );
        for b in ["/usr/sbin/nsd", "/usr/sbin/rbldnsd"] {
            assert!(
                Path::new(b).exists(),
                "{b} is missing: run `scripts/test` (it apt-installs nsd, rbldnsd, unbound)"
            );
        }
        assert!(!spec.lists.is_empty(), "a DnsLab needs at least one list");
        let names: BTreeSet<&str> = spec.lists.iter().map(|l| l.zone.as_str()).collect();
        for l in &spec.lists {
            assert!(
                l.zone.contains('.'),
                "list zone {} must have a parent below the root",
                l.zone
            );
            assert!(
                !l.zone.ends_with(".lab") && l.zone != "lab",
                "the lab root's own name is under lab."
            );
            for other in &names {
                assert!(
                    !other.ends_with(&format!(".{}", l.zone)),
                    "list zone {} is inside list zone {}",
                    other,
                    l.zone
                );
            }
        }
        let (net, lock) = reserve_net();
        let dir = tempdir("rblwatch-dnslab");
        let root = dir.path();
        for d in ["nsd", "rbl", "standin", "unbound"] {
            std::fs::create_dir(root.join(d)).expect("mkdir");
            chmod(&root.join(d), 0o755);
        }
        let addr = |h: u8| Ipv4Addr::new(net[0], net[1], net[2], h);

        // list servers: .11, .12 ... in the order of the spec
        let mut next_host = 11u8;
        let mut zones = Vec::new();
        for l in &spec.lists {
            let zdir = root.join("rbl").join(&l.zone);
            std::fs::create_dir(&zdir).expect("mkdir");
            chmod(&zdir, 0o755);
            for d in &l.datasets {
                std::fs::write(zdir.join(&d.file), &d.content).expect("dataset");
                chmod(&zdir.join(&d.file), 0o644);
            }
            let mut servers = Vec::new();
            for _ in 0..l.servers {
                servers.push(LabServer {
                    addr: addr(next_host),
                    proc: None,
                    silent: None,
                });
                next_host = next_host.checked_add(1).expect("too many servers");
            }
            let delegation = servers.iter().map(|s| s.addr).collect();
            zones.push(LabZone {
                name: l.zone.clone(),
                datasets: l.datasets.clone(),
                servers,
                delegation,
            });
        }
        for z in &mut zones {
            for i in 0..z.servers.len() {
                let p = start_rbldnsd(root, z, i);
                z.servers[i].proc = Some(p);
            }
        }

        // the public-resolver stand-in
        let blocked = spec
            .blocked
            .clone()
            .unwrap_or_else(|| spec.lists.iter().map(|l| l.zone.clone()).collect());
        let sdir = root.join("standin");
        std::fs::write(sdir.join("empty"), "").expect("write");
        chmod(&sdir.join("empty"), 0o644);
        let mut cmd = rbldnsd_cmd(&sdir, addr(STANDIN_HOST));
        for z in &blocked {
            // one ACL file per zone: rbldnsd shares a dataset named twice, and an ACL then
            // applies to the first zone only
            std::fs::write(
                sdir.join(format!("acl-{z}")),
                "127.0.0.0/8 :127.255.255.254:Error: open resolver; see https://www.spamhaus.org/returnc/pub/\n",
            )
            .expect("write");
            chmod(&sdir.join(format!("acl-{z}")), 0o644);
            // with an empty dataset of each name kind, the ACL answers IPv4, IPv6 and domain
            // names alike (with ip4set alone, a domain name gets NXDOMAIN)
            for kind in ["ip4set", "ip6trie", "dnset"] {
                cmd.arg(format!("{z}:{kind}:empty"));
            }
            cmd.arg(format!("{z}:acl:acl-{z}"));
        }
        let mut standin = Proc::spawn(
            "rbldnsd (public resolver stand-in)",
            &mut cmd,
            &sdir.join("rbldnsd.log"),
        );
        if let Some(z) = blocked.first() {
            wait_dns(&mut standin, SocketAddr::from((addr(STANDIN_HOST), 53)), z);
        }

        // NSD
        let nsd_zones = nsd_zones(&zones);
        write_nsd_files(root, net, spec.ns_ttl, 1, &zones, &nsd_zones);
        let nsd_dir = root.join("nsd");
        let conf = nsd_conf(&nsd_dir, addr(NSD_HOST), &nsd_zones);
        std::fs::write(nsd_dir.join("nsd.conf"), conf).expect("nsd.conf");
        let mut nsd = Proc::spawn(
            "nsd",
            Command::new("/usr/sbin/nsd")
                .args(["-d", "-c"])
                .arg(nsd_dir.join("nsd.conf")),
            &nsd_dir.join("nsd.out"),
        );
        wait_dns(&mut nsd, SocketAddr::from((addr(NSD_HOST), 53)), ".");
        let state = DnsState {
            nsd,
            serial: 1,
            zones,
            next_host,
        };

        // unbound
        let recursor = spec.recursor.then(|| {
            let udir = root.join("unbound");
            std::fs::write(
                udir.join("root.hints"),
                format!(". 3600000 NS {ROOT_NS}\n{ROOT_NS} 3600000 A {}\n", addr(NSD_HOST)),
            )
            .expect("hints");
            let tlds: BTreeSet<String> = spec
                .lists
                .iter()
                .filter_map(|l| l.zone.rsplit('.').next().map(str::to_string))
                .collect();
            let nodefault: String = tlds
                .iter()
                .map(|t| format!("  local-zone: \"{t}.\" nodefault\n"))
                .collect();
            let d = udir.display();
            let conf = format!(
                "server:\n  interface: {ip}\n  port: 53\n  outgoing-interface: {ip}\n  do-ip6: no\n\
                 \x20 username: \"\"\n  chroot: \"\"\n  directory: \"{d}\"\n  pidfile: \"{d}/unbound.pid\"\n\
                 \x20 logfile: \"{d}/unbound.log\"\n  use-syslog: no\n  verbosity: 1\n  num-threads: 1\n\
                 \x20 so-reuseport: no\n  outgoing-range: 64\n  access-control: 127.0.0.0/8 allow\n\
                 \x20 do-not-query-localhost: no\n  root-hints: \"{d}/root.hints\"\n\
                 \x20 module-config: \"iterator\"\n  infra-host-ttl: 10\n  infra-keep-probing: yes\n\
                 \x20 infra-cache-max-rtt: 1000\n{nodefault}\
                 remote-control:\n  control-enable: no\n",
                ip = addr(RECURSOR_HOST),
            );
            std::fs::write(udir.join("unbound.conf"), conf).expect("unbound.conf");
            let mut p = Proc::spawn(
                "unbound",
                Command::new("/usr/sbin/unbound")
                    .args(["-d", "-c"])
                    .arg(udir.join("unbound.conf")),
                &udir.join("unbound.out"),
            );
            wait_dns(&mut p, SocketAddr::from((addr(RECURSOR_HOST), 53)), ".");
            p
        });

        DnsLab {
            net,
            ns_ttl: spec.ns_ttl,
            state: Mutex::new(state),
            standin,
            recursor,
            _lock: lock,
            dir,
        }
    }

    /// 127.a.b.`host` in this lab's range.
    pub fn addr(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(self.net[0], self.net[1], self.net[2], host)
    }

    /// The root server (NSD), to pass as root hints.
    pub fn root_hints(&self) -> Vec<SocketAddr> {
        vec![SocketAddr::from((self.addr(NSD_HOST), 53))]
    }

    /// The root hints as a BIND-style hints file (`named.root` format).
    pub fn root_hints_file(&self) -> PathBuf {
        let p = self.dir.path().join("root.hints");
        if !p.exists() {
            std::fs::write(
                &p,
                format!(
                    ". 3600000 NS {ROOT_NS}\n{ROOT_NS} 3600000 A {}\n",
                    self.addr(NSD_HOST)
                ),
            )
            .expect("hints");
        }
        p
    }

    /// The "public resolver" stand-in: 127.255.255.254 for names under the blocked zones, REFUSED otherwise.
    pub fn public_resolver(&self) -> SocketAddr {
        SocketAddr::from((self.addr(STANDIN_HOST), 53))
    }

    /// The unbound recursor (needs [`DnsLabSpec::recursor`]).
    pub fn recursor(&self) -> SocketAddr {
        assert!(self.recursor.is_some(), "start the lab with .recursor()");
        SocketAddr::from((self.addr(RECURSOR_HOST), 53))
    }

    /// The NS TTL the lab was started with.
    pub fn ns_ttl(&self) -> Duration {
        Duration::from_secs(self.ns_ttl.into())
    }

    /// Every authoritative server of `zone` (running or not), by index.
    pub fn servers(&self, zone: &str) -> Vec<SocketAddr> {
        let st = self.state.lock().unwrap();
        find_zone(&st.zones, zone)
            .servers
            .iter()
            .map(|s| SocketAddr::from((s.addr, 53)))
            .collect()
    }

    /// Server `index` of `zone`.
    pub fn server(&self, zone: &str, index: usize) -> SocketAddr {
        self.servers(zone)[index]
    }

    /// Stops server `index` of `zone`. Its address then swallows queries (they time out, like
    /// a dead server's), see [`DnsLab::refuse_server`] for "port unreachable".
    pub fn stop_server(&self, zone: &str, index: usize) {
        let mut st = self.state.lock().unwrap();
        let s = &mut find_zone_mut(&mut st.zones, zone).servers[index];
        if let Some(mut p) = s.proc.take() {
            p.stop();
        }
        if s.silent.is_none() {
            s.silent = Some(wait_for(
                "the stopped server's port",
                Duration::from_secs(5),
                || UdpSocket::bind((s.addr, 53)).ok(),
            ));
        }
    }

    /// Stops server `index` of `zone` with nothing left on its address: queries get an ICMP
    /// "port unreachable" at once (dig: "connection refused").
    pub fn refuse_server(&self, zone: &str, index: usize) {
        self.stop_server(zone, index);
        let mut st = self.state.lock().unwrap();
        find_zone_mut(&mut st.zones, zone).servers[index].silent = None;
    }

    /// Starts server `index` of `zone` again.
    pub fn start_server(&self, zone: &str, index: usize) {
        let mut st = self.state.lock().unwrap();
        let z = find_zone_mut(&mut st.zones, zone);
        if z.servers[index].proc.is_none() {
            z.servers[index].silent = None;
            let p = start_rbldnsd(self.dir.path(), z, index);
            z.servers[index].proc = Some(p);
        }
    }

    /// Starts one more server for `zone` on a new address (not delegated to until
    /// [`DnsLab::set_delegation`]); returns its index.
    pub fn add_server(&self, zone: &str) -> usize {
        let mut st = self.state.lock().unwrap();
        let host = st.next_host;
        assert!(host < STANDIN_HOST, "too many servers");
        st.next_host += 1;
        let addr = self.addr(host);
        let z = find_zone_mut(&mut st.zones, zone);
        z.servers.push(LabServer {
            addr,
            proc: None,
            silent: None,
        });
        let i = z.servers.len() - 1;
        let p = start_rbldnsd(self.dir.path(), z, i);
        z.servers[i].proc = Some(p);
        i
    }

    /// Delegates `zone` to `addrs` (servers of the lab or any other address, e.g. an unused one
    /// for a lame delegation): rewrites the parent zone with a new serial and reloads NSD; returns
    /// once the root server gives the new referral. Resolvers see it after the NS TTL.
    pub fn set_delegation(&self, zone: &str, addrs: &[Ipv4Addr]) {
        assert!(!addrs.is_empty(), "a delegation needs at least one server");
        let mut st = self.state.lock().unwrap();
        find_zone_mut(&mut st.zones, zone).delegation = addrs.to_vec();
        st.serial += 1;
        let nz = nsd_zones(&st.zones);
        write_nsd_files(
            self.dir.path(),
            self.net,
            self.ns_ttl,
            st.serial,
            &st.zones,
            &nz,
        );
        st.nsd.signal(libc::SIGHUP);
        let root = self.root_hints()[0];
        let want: BTreeSet<Ipv4Addr> = addrs.iter().copied().collect();
        let name = fqdn(zone.trim_end_matches('.'));
        let start = Instant::now();
        loop {
            st.nsd.check_alive();
            if let Some(m) = dns_query(
                root,
                &name,
                RecordType::NS,
                false,
                Duration::from_millis(300),
            ) {
                let got: BTreeSet<Ipv4Addr> = a_records(&m.additionals).into_iter().collect();
                if got == want {
                    return;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "NSD did not pick up the new delegation of {zone}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The addresses `zone` is delegated to now.
    pub fn delegation(&self, zone: &str) -> Vec<Ipv4Addr> {
        let st = self.state.lock().unwrap();
        find_zone(&st.zones, zone).delegation.clone()
    }

    /// Replaces dataset file `file` of `zone` (shared by all its servers) and makes every running
    /// server reload it (about 30 ms; poll for the new answer).
    pub fn write_zone(&self, zone: &str, file: &str, content: &str) {
        let st = self.state.lock().unwrap();
        let z = find_zone(&st.zones, zone);
        assert!(
            z.datasets.iter().any(|d| d.file == file),
            "{file} is not a dataset of {zone}"
        );
        write_bumped(
            &self.dir.path().join("rbl").join(&z.name).join(file),
            content,
        );
        for s in &z.servers {
            if let Some(p) = &s.proc {
                p.signal(libc::SIGHUP);
            }
        }
    }

    /// NSD's log (zone loads and reloads).
    pub fn nsd_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nsd/nsd.log")).unwrap_or_default()
    }
}

fn find_zone<'a>(zones: &'a [LabZone], zone: &str) -> &'a LabZone {
    let zone = zone.trim_end_matches('.').to_ascii_lowercase();
    zones
        .iter()
        .find(|z| z.name == zone)
        .unwrap_or_else(|| panic!("{zone} is not a list of this lab"))
}

fn find_zone_mut<'a>(zones: &'a mut [LabZone], zone: &str) -> &'a mut LabZone {
    let zone = zone.trim_end_matches('.').to_ascii_lowercase();
    zones
        .iter_mut()
        .find(|z| z.name == zone)
        .unwrap_or_else(|| panic!("{zone} is not a list of this lab"))
}

fn rbldnsd_cmd(data: &Path, addr: Ipv4Addr) -> Command {
    let mut cmd = Command::new("/usr/sbin/rbldnsd");
    // -n: foreground, so the Proc is rbldnsd itself; as root it drops to the rbldns user
    cmd.args(["-n", "-u", "rbldns", "-4", "-b"])
        .arg(format!("{addr}/53"))
        .arg("-w")
        .arg(data)
        .args(["-t", "10", "-c", "1s", "-a"]);
    cmd
}

fn start_rbldnsd(root: &Path, z: &LabZone, index: usize) -> Proc {
    let data = root.join("rbl").join(&z.name);
    let addr = z.servers[index].addr;
    let mut cmd = rbldnsd_cmd(&data, addr);
    for d in &z.datasets {
        cmd.arg(format!("{}:{}:{}", z.name, d.kind, d.file));
    }
    let mut p = Proc::spawn(
        &format!("rbldnsd for {} on {addr}", z.name),
        &mut cmd,
        &root.join("rbl").join(format!("{}-{addr}.log", z.name)),
    );
    wait_dns(&mut p, SocketAddr::from((addr, 53)), &z.name);
    p
}

/// The zones NSD serves: the root and every proper ancestor of a list zone.
fn nsd_zones(zones: &[LabZone]) -> Vec<String> {
    let mut out = BTreeSet::new();
    out.insert(String::new());
    for z in zones {
        let mut p = parent(&z.name);
        while !p.is_empty() {
            out.insert(p.clone());
            p = parent(&p);
        }
    }
    out.into_iter().collect()
}

fn nsd_file_name(zone: &str) -> String {
    if zone.is_empty() {
        "root.zone".into()
    } else {
        format!("{zone}.zone")
    }
}

fn write_nsd_files(
    root: &Path,
    net: [u8; 3],
    ns_ttl: u32,
    serial: u32,
    zones: &[LabZone],
    nsd_zones: &[String],
) {
    let nsd_ip = Ipv4Addr::new(net[0], net[1], net[2], NSD_HOST);
    for z in nsd_zones {
        let ns = if z.is_empty() {
            ROOT_NS.to_string()
        } else {
            format!("ns.{z}.")
        };
        let origin = fqdn(z);
        let mut text = format!(
            "$TTL 3600\n{origin} IN SOA {ns} hostmaster.{ns} {serial} 3600 600 86400 60\n\
             {origin} IN NS {ns}\n{ns} IN A {nsd_ip}\n"
        );
        for c in nsd_zones
            .iter()
            .filter(|c| !c.is_empty() && parent(c) == *z)
        {
            text.push_str(&format!("{c}. IN NS ns.{c}.\nns.{c}. IN A {nsd_ip}\n"));
        }
        for l in zones.iter().filter(|l| parent(&l.name) == *z) {
            for a in &l.delegation {
                let host = match l.servers.iter().position(|s| s.addr == *a) {
                    Some(i) => format!("ns{}", i + 1),
                    None => format!("ns-{}", a.to_string().replace('.', "-")),
                };
                text.push_str(&format!(
                    "{n}. {ns_ttl} IN NS {host}.{n}.\n{host}.{n}. {ns_ttl} IN A {a}\n",
                    n = l.name
                ));
            }
        }
        write_bumped(&root.join("nsd").join(nsd_file_name(z)), &text);
    }
}

fn nsd_conf(dir: &Path, ip: Ipv4Addr, zones: &[String]) -> String {
    let d = dir.display();
    let mut conf = format!(
        "server:\n  ip-address: {ip}\n  port: 53\n  do-ip6: no\n  username: \"\"\n  zonesdir: \"{d}\"\n\
         \x20 pidfile: \"{d}/nsd.pid\"\n  database: \"\"\n  zonelistfile: \"{d}/zone.list\"\n\
         \x20 xfrdfile: \"{d}/xfrd.state\"\n  xfrdir: \"{d}\"\n  logfile: \"{d}/nsd.log\"\n\
         \x20 server-count: 1\n  verbosity: 1\n  reuseport: no\n  hide-version: yes\n  tcp-count: 10\n\
         remote-control:\n  control-enable: no\n"
    );
    for z in zones {
        conf.push_str(&format!(
            "zone:\n  name: \"{}\"\n  zonefile: \"{}\"\n",
            fqdn(z),
            nsd_file_name(z)
        ));
    }
    conf
}

// ---------------------------------------------------------------------------------------------
// mail routing (shared by Exim and Postfix)

/// Where an MTA sends mail for remote domains: everything to the receiver on 127.0.0.1:`port`,
/// and for chosen domains under a host name (`mx.outlook.test`), so the MTA logs
/// `host mx.outlook.test[127.0.0.1]` / `H=mx.outlook.test [127.0.0.1]`. The names resolve to
/// 127.0.0.1 in a private `/etc/hosts` that only the MTA sees (its own mount namespace, made
/// with `unshare -m`; needs root); its `/etc/resolv.conf` there points at 127.0.0.1, so no
/// lookup leaves loopback.
#[derive(Clone, Debug)]
pub struct MailRoutes {
    pub port: u16,
    /// (recipient domain, host name)
    pub names: Vec<(String, String)>,
}

impl MailRoutes {
    pub fn to(port: u16) -> Self {
        MailRoutes {
            port,
            names: Vec::new(),
        }
    }

    /// Mail for `domain` goes to `host` (which resolves to 127.0.0.1 for the MTA).
    pub fn via(mut self, domain: &str, host: &str) -> Self {
        self.names.push((domain.into(), host.into()));
        self
    }

    /// `program args...`, inside a private mount namespace with our hosts file when names are used.
    fn command(&self, dir: &Path, program: &Path, args: &[&str]) -> Command {
        if self.names.is_empty() {
            let mut c = Command::new(program);
            c.args(args);
            return c;
        }
        let hosts = dir.join("lab-hosts");
        let resolv = dir.join("lab-resolv.conf");
        let mut h = String::from("127.0.0.1 localhost\n");
        for (_, host) in &self.names {
            // one line per name, so each is its own canonical name
            h.push_str(&format!("127.0.0.1 {host}\n"));
        }
        std::fs::write(&hosts, h).expect("hosts");
        std::fs::write(
            &resolv,
            "nameserver 127.0.0.1\noptions attempts:1 timeout:1\n",
        )
        .expect("resolv.conf");
        chmod(&hosts, 0o644);
        chmod(&resolv, 0o644);
        let mut c = Command::new("unshare");
        c.args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(r#"mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf && shift 2 && exec "$@""#)
            .arg("sh")
            .arg(&hosts)
            .arg(&resolv)
            .arg(program)
            .args(args);
        c
    }
}

// ---------------------------------------------------------------------------------------------
// Receiver

/// When a receiver rule answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The greeting; the connection is closed after it.
    Connect,
    /// MAIL FROM (matched against the sender).
    Mail,
    Rcpt,
    /// The end of DATA.
    Data,
}

/// One reply rule of the [`Receiver`]: the first matching rule answers.
#[derive(Clone, Debug)]
pub struct Rule {
    pub stage: Stage,
    /// None: any domain.
    pub domain: Option<String>,
    /// None: any local part.
    pub local: Option<String>,
    pub code: u16,
    /// The reply text; several lines give a multi-line reply (`550-...`, `550 ...`).
    pub lines: Vec<String>,
}

impl Rule {
    fn new(stage: Stage, domain: &str, code: u16, lines: &[&str]) -> Rule {
        Rule {
            stage,
            domain: (domain != "*").then(|| domain.to_string()),
            local: None,
            code,
            lines: lines.iter().map(|l| l.to_string()).collect(),
        }
    }

    /// Answer RCPT TO for recipients in `domain` (`*`: any).
    pub fn rcpt(domain: &str, code: u16, lines: &[&str]) -> Rule {
        Self::new(Stage::Rcpt, domain, code, lines)
    }

    /// Answer the end of DATA when a recipient is in `domain` (`*`: any).
    pub fn data(domain: &str, code: u16, lines: &[&str]) -> Rule {
        Self::new(Stage::Data, domain, code, lines)
    }

    /// Answer MAIL FROM for senders in `domain` (`*`: any).
    pub fn mail(domain: &str, code: u16, lines: &[&str]) -> Rule {
        Self::new(Stage::Mail, domain, code, lines)
    }

    /// Replace the greeting and close (e.g. `554 5.7.1 ... blocked`).
    pub fn connect(code: u16, lines: &[&str]) -> Rule {
        Self::new(Stage::Connect, "*", code, lines)
    }

    /// Narrows the rule to one local part.
    pub fn local(mut self, local: &str) -> Rule {
        self.local = Some(local.into());
        self
    }

    fn json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "stage": match self.stage {
                Stage::Connect => "connect",
                Stage::Mail => "mail",
                Stage::Rcpt => "rcpt",
                Stage::Data => "data",
            },
            "code": self.code,
            "lines": self.lines,
        });
        if let Some(d) = &self.domain {
            v["domain"] = d.clone().into();
        }
        if let Some(l) = &self.local {
            v["local"] = l.clone().into();
        }
        v
    }
}

/// A receiving MX on a free 127.0.0.1 port (`tests/fixtures/receiver.py`, aiosmtpd under
/// `/usr/bin/python3`): answers by [`Rule`]s (re-read at every decision, so
/// [`Receiver::set_rules`] applies at once), accepts anything else, records everything.
pub struct Receiver {
    pub port: u16,
    proc: Proc,
    pub dir: tempfile::TempDir,
}

impl Receiver {
    pub fn start(rules: &[Rule]) -> Receiver {
        Self::start_named("mx.receiver.test", rules)
    }

    /// With `hostname` in its greeting and EHLO reply.
    pub fn start_named(hostname: &str, rules: &[Rule]) -> Receiver {
        let dir = tempdir("rblwatch-receiver");
        write_rules(dir.path(), rules);
        let mut proc = Proc::spawn(
            "receiver.py",
            Command::new("/usr/bin/python3")
                .arg(fixtures().join("receiver.py"))
                .arg(dir.path())
                .arg(hostname),
            &dir.path().join("receiver.log"),
        );
        let start = Instant::now();
        let port = loop {
            proc.check_alive();
            if let Ok(p) = std::fs::read_to_string(dir.path().join("port")) {
                break p.trim().parse().expect("port");
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "receiver.py did not start (python3-aiosmtpd installed?)"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Receiver { port, proc, dir }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Routes for an MTA: every remote domain to this receiver.
    pub fn routes(&self) -> MailRoutes {
        MailRoutes::to(self.port)
    }

    /// Replaces the rules (atomically; the next decision uses them).
    pub fn set_rules(&self, rules: &[Rule]) {
        write_rules(self.dir.path(), rules);
    }

    /// Every decision so far: `{stage, peer, helo, sender, recipient, code, reply}`.
    pub fn events(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("events.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Every accepted message, in order: `{peer, helo, sender, recipients, headers: [[name,
    /// value]], size, file}` (`file`: the message itself).
    pub fn messages(&self) -> Vec<serde_json::Value> {
        let mdir = self.dir.path().join("messages");
        let mut names: Vec<PathBuf> = std::fs::read_dir(&mdir)
            .map(|rd| {
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
            .iter()
            .filter_map(|p| {
                let mut v: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()?;
                v["file"] = p.with_extension("eml").display().to_string().into();
                Some(v)
            })
            .collect()
    }

    /// Waits until at least `n` messages were accepted.
    pub fn wait_messages(&self, n: usize, limit: Duration) -> Vec<serde_json::Value> {
        wait_for(&format!("{n} messages at the receiver"), limit, || {
            let m = self.messages();
            (m.len() >= n).then_some(m)
        })
    }
}

fn write_rules(dir: &Path, rules: &[Rule]) {
    let v: Vec<serde_json::Value> = rules.iter().map(Rule::json).collect();
    let tmp = dir.join("rules.json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&v).unwrap()).expect("rules");
    std::fs::rename(&tmp, dir.join("rules.json")).expect("rules");
}

/// The first line of the file at `path` that contains `needle`, waiting up to `limit`.
/// Panics with the file's last lines on timeout.
pub fn wait_log_line(path: &Path, needle: &str, limit: Duration) -> String {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| l.contains(needle)) {
            return l.to_string();
        }
        if start.elapsed() > limit {
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "timed out after {limit:?} waiting for {needle:?} in {}; it ends:\n{}",
                path.display(),
                tail.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------------
// Postfix relaying to the receiver

impl Postfix {
    /// A private Postfix (as [`Postfix::start`]) whose outbound mail goes to the receiver of
    /// `routes`: `relayhost = [127.0.0.1]:PORT`, plus `transport_maps` entries
    /// `DOMAIN smtp:[HOST]:PORT` and `smtp_host_lookup = native` for named routes.
    pub fn start_relaying(routes: &MailRoutes) -> Postfix {
        let dir = tempdir("rblwatch-postfix");
        let script = fixtures().join("postfix-instance.sh");
        for _ in 0..3 {
            let port = free_tcp_port();
            let mut args = vec![
                "start".to_string(),
                dir.path().display().to_string(),
                port.to_string(),
                routes.port.to_string(),
            ];
            args.extend(routes.names.iter().map(|(d, h)| format!("{d}={h}")));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let ok = routes
                .command(dir.path(), &script, &args)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
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

    /// Submits a message locally (`sendmail -C`), as a local user or application would.
    pub fn submit(&self, from: &str, to: &str, body: &str) {
        use std::io::Write;
        let mut c = Command::new("/usr/sbin/sendmail")
            .arg("-C")
            .arg(self.conf())
            .args(["-f", from, to])
            .stdin(Stdio::piped())
            .spawn()
            .expect("sendmail");
        write!(
            c.stdin.take().unwrap(),
            "From: <{from}>\nTo: <{to}>\nSubject: lab\n\n{body}\n"
        )
        .unwrap();
        assert!(c.wait().unwrap().success(), "sendmail failed");
    }

    /// The first maillog line containing `needle`, waiting up to `limit`.
    pub fn wait_log(&self, needle: &str, limit: Duration) -> String {
        wait_log_line(&self.log(), needle, limit)
    }
}

// ---------------------------------------------------------------------------------------------
// Exim

/// Root of the unpacked Exim packages (`scripts/test` unpacks them there).
pub fn exim_root() -> PathBuf {
    std::env::var_os("RBLWATCH_EXIM_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/rblwatch-lab/exim/root"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EximMode {
    /// `accept domains = +local_domains`: unknown local recipients are accepted and bounced later.
    Vulnerable,
    /// `require verify = recipient`: unknown local recipients are rejected at RCPT.
    Strict,
}

/// A private Exim 4 (unpacked from Debian's packages, never installed) on a free 127.0.0.1 port
/// with its own config, spool and logs. Local domain `example.test` (users alice, postmaster,
/// root: delivered to `:blackhole:`); remote mail goes to a receiver by [`MailRoutes`], or is
/// deferred (`lab: outbound delivery disabled`) without routes. Relaying is allowed from 127.0.0.1.
pub struct Exim {
    pub port: u16,
    pub mode: EximMode,
    routes: Option<MailRoutes>,
    proc: Proc,
    pub dir: tempfile::TempDir,
}

impl Exim {
    pub fn start(mode: EximMode) -> Exim {
        Self::start_with(mode, None)
    }

    /// Remote mail goes to `routes` (a [`Receiver`]).
    pub fn start_relaying(mode: EximMode, routes: &MailRoutes) -> Exim {
        Self::start_with(mode, Some(routes.clone()))
    }

    fn start_with(mode: EximMode, routes: Option<MailRoutes>) -> Exim {
        let bin = Self::binary();
        assert!(
            bin.exists(),
            "{} is missing: run `scripts/test` (it unpacks Debian's exim4 packages there)",
            bin.display()
        );
        assert!(
            is_root(),
            "the private Exim needs root (it drops to Debian-exim)"
        );
        let dir = tempdir("rblwatch-exim");
        for d in ["spool", "log"] {
            let p = dir.path().join(d);
            std::fs::create_dir(&p).expect("mkdir");
            let st = Command::new("chown")
                .args(["-R", "Debian-exim:", p.to_str().unwrap()])
                .status()
                .expect("chown");
            assert!(st.success(), "no Debian-exim user: run `scripts/test`");
        }
        for _ in 0..3 {
            let port = free_tcp_port();
            std::fs::write(
                dir.path().join("exim.conf"),
                exim_conf(dir.path(), port, mode, routes.as_ref()),
            )
            .expect("exim.conf");
            chmod(&dir.path().join("exim.conf"), 0o644);
            let conf = dir.path().join("exim.conf");
            let args = ["-C", conf.to_str().unwrap(), "-bdf", "-q5s"];
            let mut cmd = match &routes {
                Some(r) => r.command(dir.path(), &bin, &args),
                None => {
                    let mut c = Command::new(&bin);
                    c.args(args);
                    c
                }
            };
            let mut proc = Proc::spawn("exim", &mut cmd, &dir.path().join("exim.out"));
            let mainlog = dir.path().join("log/mainlog");
            let start = Instant::now();
            let listening = loop {
                let log = std::fs::read_to_string(&mainlog).unwrap_or_default();
                if log.contains(&format!("listening for SMTP on [127.0.0.1]:{port}")) {
                    break true;
                }
                if matches!(proc.child.try_wait(), Ok(Some(_))) {
                    break false;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "exim did not start:\n{log}\n{}",
                    std::fs::read_to_string(dir.path().join("exim.out")).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(20));
            };
            if listening {
                return Exim {
                    port,
                    mode,
                    routes,
                    proc,
                    dir,
                };
            }
            eprintln!(
                "exim failed on port {port}: {}",
                std::fs::read_to_string(dir.path().join("log/paniclog")).unwrap_or_default()
            );
        }
        panic!("exim would not start");
    }

    /// The unpacked `exim4` binary.
    pub fn binary() -> PathBuf {
        exim_root().join("usr/sbin/exim4")
    }

    /// The config to pass with `-C`.
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("exim.conf")
    }

    pub fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `exim -C <config> <args>`, e.g. `["-bp"]`, `["-bP", "acl_smtp_rcpt"]`, `["-qff"]`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(Self::binary());
        c.arg("-C").arg(self.config()).args(args);
        c
    }

    /// Runs [`Exim::command`] and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run exim")
    }

    pub fn mainlog_path(&self) -> PathBuf {
        self.dir.path().join("log/mainlog")
    }

    pub fn mainlog(&self) -> String {
        std::fs::read_to_string(self.mainlog_path()).unwrap_or_default()
    }

    /// The first mainlog line containing `needle`, waiting up to `limit`.
    pub fn wait_log(&self, needle: &str, limit: Duration) -> String {
        wait_log_line(&self.mainlog_path(), needle, limit)
    }

    /// Switches the mode: rewrites the config and sends SIGHUP (the daemon re-executes itself);
    /// returns once it listens again.
    pub fn set_mode(&mut self, mode: EximMode) {
        let before = self.mainlog().matches("daemon started").count();
        std::fs::write(
            self.config(),
            exim_conf(self.dir.path(), self.port, mode, self.routes.as_ref()),
        )
        .expect("exim.conf");
        self.proc.signal(libc::SIGHUP);
        wait_for("exim to restart", Duration::from_secs(10), || {
            (self.mainlog().matches("daemon started").count() > before).then_some(())
        });
        self.mode = mode;
    }
}

fn exim_conf(dir: &Path, port: u16, mode: EximMode, routes: Option<&MailRoutes>) -> String {
    let d = dir.display();
    let bin = Exim::binary();
    let strict = match mode {
        EximMode::Vulnerable => "",
        EximMode::Strict => "  require verify = recipient\n",
    };
    let remote = match routes {
        Some(r) => {
            let mut list: Vec<String> = r
                .names
                .iter()
                .map(|(dom, host)| format!("{dom} {host} byname"))
                .collect();
            list.push("* 127.0.0.1".into());
            format!(
                "remote:\n  driver = manualroute\n  domains = ! +local_domains\n  transport = remote_smtp\n\
                 \x20 route_list = {}\n  self = send\n  no_more\n",
                list.join(" ; ")
            )
        }
        None => "remote:\n  driver = redirect\n  domains = ! +local_domains\n  allow_defer\n\
                 \x20 data = :defer: lab: outbound delivery disabled (no network)\n  no_more\n"
            .to_string(),
    };
    let rport = routes.map(|r| r.port).unwrap_or(25);
    format!(
        r#"# private lab Exim ({mode:?})
exim_path = {bin}
keep_environment =
exim_user = Debian-exim
exim_group = Debian-exim
never_users = root
spool_directory = {d}/spool
log_file_path = {d}/log/%slog
log_selector = +smtp_confirmation +received_recipients
primary_hostname = mx.example.test
qualify_domain = example.test
domainlist local_domains = example.test : mx.example.test
hostlist relay_from_hosts = 127.0.0.1
daemon_smtp_ports = {port}
local_interfaces = 127.0.0.1
disable_ipv6 = true
host_lookup =
rfc1413_hosts =
tls_advertise_hosts =
acl_smtp_rcpt = acl_rcpt
acl_smtp_data = acl_data

begin acl
acl_rcpt:
  accept hosts = :
  deny message = relay not permitted
       !domains = +local_domains
       !hosts = +relay_from_hosts
  accept !domains = +local_domains
{strict}  accept domains = +local_domains
  deny
acl_data:
  accept

begin routers
{remote}
local_users:
  driver = redirect
  domains = +local_domains
  local_parts = alice : postmaster : root
  data = :blackhole:
fail_unknown:
  driver = redirect
  domains = +local_domains
  allow_fail
  data = :fail: Unrouteable address

begin transports
remote_smtp:
  driver = smtp
  port = {rport}
  hosts_try_chunking =
  hosts_try_prdr =
  hosts_avoid_tls = *

begin retry
*  *  F,1h,15m
"#,
        bin = bin.display(),
    )
}

// ---------------------------------------------------------------------------------------------
// smoke tests

/// The records of a `dig` answer: the whitespace-separated fields of every non-comment line.
fn dig_records(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

fn has_record(out: &str, want: &[&str]) -> bool {
    dig_records(out).iter().any(|r| r == want)
}

/// `dig +short` from `server` until it prints `want` (reloads and TTLs take a moment).
fn wait_short(server: SocketAddr, name: &str, want: &str, limit: Duration) {
    let at = format!("@{}", server.ip());
    wait_for(&format!("{name} = {want} at {server}"), limit, || {
        let o = dig(&[&at, "+short", name, "A"]);
        (o.trim() == want).then_some(())
    });
}

#[test]
fn dns_lab_walks_the_delegation() {
    let t0 = Instant::now();
    let lab = DnsLab::start(
        DnsLabSpec::new()
            .list(
                "zen.spamhaus.org",
                2,
                &[Dataset::ip4set(
                    "$SOA 60 ns1.zen.spamhaus.org. hostmaster.spamhaus.org. 0 600 60 3600 10\n$TTL 10\n\
                     :127.0.0.2:https://www.spamhaus.org/query/ip/$\n127.0.0.2\n\
                     192.0.2.0/24 :127.0.0.4:XBL $\n",
                )],
            )
            .list(
                "dbl.spamhaus.org",
                1,
                &[Dataset::dnset(
                    "$TTL 10\n:127.0.1.2:https://www.spamhaus.org/query/domain/$\ntest\n.evil.example :127.0.1.4:phish $\n",
                )],
            )
            .list("bl.spamcop.net", 1, &[])
            .list("bl.test", 1, &[])
            .ns_ttl(2)
            .public_resolver_blocks(&["zen.spamhaus.org", "dbl.spamhaus.org"])
            .recursor(),
    );
    eprintln!("DnsLab up in {:?}", t0.elapsed());
    let root = lab.root_hints()[0];
    let at = |s: SocketAddr| format!("@{}", s.ip());
    let zen = lab.servers("zen.spamhaus.org");
    assert_eq!(zen[0].ip().to_string(), lab.addr(11).to_string());
    assert_eq!(zen[1].ip().to_string(), lab.addr(12).to_string());

    // the root gives a referral (NS + glue, NS TTL 2 s), not an answer
    let out = dig(&["+norec", &at(root), "NS", "zen.spamhaus.org"]);
    assert!(
        out.contains("status: NOERROR") && out.contains("ANSWER: 0"),
        "{out}"
    );
    assert!(
        has_record(
            &out,
            &[
                "zen.spamhaus.org.",
                "2",
                "IN",
                "NS",
                "ns1.zen.spamhaus.org."
            ]
        ),
        "{out}"
    );
    let glue = lab.addr(12).to_string();
    assert!(
        has_record(&out, &["ns2.zen.spamhaus.org.", "2", "IN", "A", &glue]),
        "{out}"
    );
    let out = dig(&["+norec", &at(root), "NS", "org"]);
    assert!(
        has_record(&out, &["org.", "3600", "IN", "NS", "ns.org."]),
        "{out}"
    );

    // the list servers answer (IPv4 and domain lists)
    assert_eq!(
        dig(&[&at(zen[0]), "+short", "2.0.0.127.zen.spamhaus.org", "A"]).trim(),
        "127.0.0.2"
    );
    assert_eq!(
        dig(&[&at(zen[1]), "+short", "7.2.0.192.zen.spamhaus.org", "A"]).trim(),
        "127.0.0.4"
    );
    let dbl = lab.server("dbl.spamhaus.org", 0);
    assert_eq!(
        dig(&[&at(dbl), "+short", "www.evil.example.dbl.spamhaus.org", "A"]).trim(),
        "127.0.1.4"
    );
    let spamcop = lab.server("bl.spamcop.net", 0);
    assert_eq!(
        dig(&[&at(spamcop), "+short", "2.0.0.127.bl.spamcop.net", "A"]).trim(),
        "127.0.0.2"
    );

    // the public-resolver stand-in: 127.255.255.254 for IP and domain names, REFUSED elsewhere
    let pr = lab.public_resolver();
    for name in [
        "2.0.0.127.zen.spamhaus.org",
        "1.1.168.192.zen.spamhaus.org",
        "example.com.dbl.spamhaus.org",
    ] {
        assert_eq!(
            dig(&[&at(pr), "+short", name, "A"]).trim(),
            "127.255.255.254",
            "{name}"
        );
    }
    let out = dig(&[&at(pr), "2.0.0.127.bl.spamcop.net", "A"]);
    assert!(out.contains("status: REFUSED"), "{out}");

    // the recursor follows the delegation from the lab root
    let rec = lab.recursor();
    assert_eq!(
        dig(&[&at(rec), "+short", "2.0.0.127.zen.spamhaus.org", "A"]).trim(),
        "127.0.0.2"
    );
    assert_eq!(
        dig(&[&at(rec), "+short", "test.dbl.spamhaus.org", "A"]).trim(),
        "127.0.1.2"
    );
    assert_eq!(
        dig(&[&at(rec), "+short", "2.0.0.127.bl.spamcop.net", "A"]).trim(),
        "127.0.0.2"
    );
    // under test. too (unbound serves test. itself unless told `nodefault`)
    assert_eq!(
        dig(&[&at(rec), "+short", "test.bl.test", "A"]).trim(),
        "127.0.1.2"
    );

    // one of two servers down: it times out, the other answers, the recursor fails over
    lab.stop_server("zen.spamhaus.org", 0);
    let out = dig(&[&at(zen[0]), "2.0.0.127.zen.spamhaus.org", "A"]);
    assert!(out.contains("timed out"), "{out}");
    assert_eq!(
        dig(&[&at(zen[1]), "+short", "2.0.0.127.zen.spamhaus.org", "A"]).trim(),
        "127.0.0.2"
    );
    let t = Instant::now();
    assert_eq!(
        dig(&[
            &at(rec),
            "+time=5",
            "+short",
            "8.2.0.192.zen.spamhaus.org",
            "A"
        ])
        .trim(),
        "127.0.0.4"
    );
    eprintln!("failover answer in {:?}", t.elapsed());

    // all down: both time out (a recursor keeps retrying them for a long time: unbound gave
    // no SERVFAIL within 30 s here)
    lab.stop_server("zen.spamhaus.org", 1);
    for s in &zen {
        let out = dig(&[&at(*s), "2.0.0.127.zen.spamhaus.org", "A"]);
        assert!(out.contains("timed out"), "{out}");
    }

    // the list moves to a new server: the root refers there at once, the recursor after the NS TTL
    let i = lab.add_server("zen.spamhaus.org");
    let new = lab.server("zen.spamhaus.org", i);
    let std::net::IpAddr::V4(new_ip) = new.ip() else {
        unreachable!()
    };
    lab.set_delegation("zen.spamhaus.org", &[new_ip]);
    let out = dig(&["+norec", &at(root), "NS", "zen.spamhaus.org"]);
    assert!(
        has_record(
            &out,
            &["ns3.zen.spamhaus.org.", "2", "IN", "A", &new_ip.to_string()]
        ),
        "{out}"
    );
    assert!(!out.contains("ns1.zen"), "{out}");
    std::thread::sleep(lab.ns_ttl() + Duration::from_millis(500));
    let t = Instant::now();
    wait_short(
        rec,
        "10.2.0.192.zen.spamhaus.org",
        "127.0.0.4",
        Duration::from_secs(8),
    );
    eprintln!("answer through the new delegation in {:?}", t.elapsed());
    assert!(lab
        .nsd_log()
        .contains("zone spamhaus.org. read with success"));

    // rbldnsd data edits, served by the running server after a reload
    lab.write_zone(
        "zen.spamhaus.org",
        "ip4set",
        "$TTL 10\n:127.0.0.2:listed $\n127.0.0.2\n198.51.100.7 :127.0.0.3:CSS $\n",
    );
    wait_short(
        new,
        "7.100.51.198.zen.spamhaus.org",
        "127.0.0.3",
        Duration::from_secs(5),
    );

    // and a stopped server comes back
    lab.start_server("zen.spamhaus.org", 0);
    wait_short(
        zen[0],
        "7.100.51.198.zen.spamhaus.org",
        "127.0.0.3",
        Duration::from_secs(5),
    );
    eprintln!("whole DNS smoke test in {:?}", t0.elapsed());
}

const GMAIL_550: &[&str] = &[
    "5.7.1 [127.0.0.1] Our system has detected that this message is",
    "5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail,",
    "5.7.1 this message has been blocked. - gsmtp",
];
const YAHOO_421: &[&str] = &[
    "4.7.0 [TSS04] Messages from 127.0.0.1 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
];
const OUTLOOK_550: &[&str] = &[
    "5.7.1 Service unavailable, Client host [127.0.0.1] blocked using Spamhaus. To request removal from this list see https://www.spamhaus.org/query/ip/127.0.0.1 (AS3130) [BN8NAM11FT066.eop-nam11.prod.protection.outlook.com]",
];

fn provider_rules() -> Vec<Rule> {
    vec![
        Rule::rcpt("gmail.test", 550, GMAIL_550),
        Rule::rcpt("yahoo.test", 421, YAHOO_421),
        Rule::data("outlook.test", 550, OUTLOOK_550),
    ]
}

#[test]
fn postfix_relays_to_the_receiver() {
    let t0 = Instant::now();
    let rx = Receiver::start_named("mx.lab-receiver.test", &provider_rules());
    let pf = Postfix::start_relaying(
        &rx.routes()
            .via("gmail.test", "gmail-smtp-in.l.google.test")
            .via("outlook.test", "lab-mail-protection.outlook.test"),
    );
    pf.submit("alice@example.test", "bob@gmail.test", "to gmail");
    pf.submit("alice@example.test", "carol@yahoo.test", "to yahoo");
    pf.submit("alice@example.test", "dave@outlook.test", "to outlook");
    pf.submit("alice@example.test", "erin@other.test", "to other");
    let limit = Duration::from_secs(8);
    let gmail = pf.wait_log("to=<bob@gmail.test>", limit);
    assert!(
        gmail.contains(
            "relay=gmail-smtp-in.l.google.test[127.0.0.1]:"
        ) && gmail.contains(
            "status=bounced (host gmail-smtp-in.l.google.test[127.0.0.1] said: 550-5.7.1 [127.0.0.1] Our system has detected that this message is 550-5.7.1 likely unsolicited mail."
        ) && gmail.ends_with("- gsmtp (in reply to RCPT TO command))"),
        "{gmail}"
    );
    let yahoo = pf.wait_log("to=<carol@yahoo.test>", limit);
    assert!(
        yahoo.contains("status=deferred (host 127.0.0.1[127.0.0.1] said: 421 4.7.0 [TSS04]")
            && yahoo.ends_with("(in reply to RCPT TO command))"),
        "{yahoo}"
    );
    let outlook = pf.wait_log("to=<dave@outlook.test>", limit);
    assert!(
        outlook.contains("status=bounced (host lab-mail-protection.outlook.test[127.0.0.1] said: 550 5.7.1 Service unavailable, Client host [127.0.0.1] blocked using Spamhaus.")
            && outlook.ends_with("(in reply to end of DATA command))"),
        "{outlook}"
    );
    let other = pf.wait_log("to=<erin@other.test>", limit);
    assert!(other.contains("status=sent (250 2.0.0 OK lab-"), "{other}");
    for l in [&gmail, &yahoo, &outlook, &other] {
        eprintln!("{l}");
    }
    let m = rx.wait_messages(1, limit);
    assert_eq!(m[0]["recipients"], serde_json::json!(["erin@other.test"]));
    assert_eq!(m[0]["sender"], "alice@example.test");
    assert!(m[0]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h[0] == "Subject" && h[1] == "lab"));
    let ev = rx.events();
    assert!(ev.iter().any(|e| e["recipient"] == "bob@gmail.test"
        && e["code"] == 550
        && e["helo"] == "mx.example.test"));

    // Yahoo lifts the deferral: the next attempt is delivered
    rx.set_rules(&provider_rules()[..1]);
    let st = Command::new("postqueue")
        .arg("-c")
        .arg(pf.conf())
        .arg("-f")
        .status()
        .unwrap();
    assert!(st.success());
    let sent = wait_for("carol's delivery", limit, || {
        std::fs::read_to_string(pf.log())
            .unwrap()
            .lines()
            .find(|l| l.contains("to=<carol@yahoo.test>") && l.contains("status=sent"))
            .map(str::to_string)
    });
    eprintln!("{sent}");

    // backscatter: an unknown local recipient is accepted, its NDR goes out to the forged sender
    assert_eq!(pf.attack(1), 1);
    let ndr = rx.wait_messages(3, limit);
    let ndr = ndr.iter().find(|m| m["sender"] == "").expect("an NDR");
    assert_eq!(ndr["recipients"], serde_json::json!(["victim@victim.test"]));

    // a greeting rejection (stage "connect")
    rx.set_rules(&[Rule::connect(
        554,
        &["5.7.1 Service unavailable; client [127.0.0.1] blocked using lab.test"],
    )]);
    pf.submit("alice@example.test", "frank@other.test", "refused");
    let refused = pf.wait_log("to=<frank@other.test>", limit);
    assert!(
        refused.contains("refused to talk to me: 554 5.7.1 Service unavailable; client [127.0.0.1] blocked using lab.test"),
        "{refused}"
    );
    eprintln!("{refused}");
    eprintln!("Postfix smoke test in {:?}", t0.elapsed());
}

#[test]
fn exim_modes_and_deliveries() {
    let t0 = Instant::now();
    let rx = Receiver::start(&provider_rules());
    let routes = rx.routes().via("gmail.test", "gmail-smtp-in.l.google.test");
    let mut ex = Exim::start_relaying(EximMode::Vulnerable, &routes);
    let limit = Duration::from_secs(8);

    // vulnerable: an unknown local recipient is accepted, then bounced to the (forged) sender,
    // and that bounce is delivered to the receiver
    assert!(crate::util::smtp_send(
        &ex.server(),
        "victim@victim.test",
        "nouser@example.test",
        "x"
    ));
    let fail = ex.wait_log("** nouser@example.test", limit);
    assert!(
        fail.contains("R=fail_unknown: Unrouteable address"),
        "{fail}"
    );
    let ndr = ex.wait_log("=> victim@victim.test", limit);
    assert!(
        ndr.contains("R=remote T=remote_smtp") && ndr.contains("C=\"250 2.0.0 OK lab-"),
        "{ndr}"
    );
    let m = rx.wait_messages(1, limit);
    assert_eq!(m[0]["sender"], "");

    // remote deliveries with the receiver's replies in the mainlog
    for to in ["bob@gmail.test", "carol@yahoo.test", "dave@outlook.test"] {
        assert!(crate::util::smtp_send(
            &ex.server(),
            "alice@example.test",
            to,
            "hi"
        ));
    }
    let gmail = ex.wait_log("** bob@gmail.test", limit);
    assert!(
        gmail.contains("H=gmail-smtp-in.l.google.test [127.0.0.1]: SMTP error from remote mail server after RCPT TO:<bob@gmail.test>: 550-5.7.1 [127.0.0.1] Our system"),
        "{gmail}"
    );
    let yahoo = ex.wait_log("== carol@yahoo.test", limit);
    assert!(
        yahoo.contains("H=127.0.0.1 [127.0.0.1]: SMTP error from remote mail server after RCPT TO:<carol@yahoo.test>: 421 4.7.0 [TSS04]"),
        "{yahoo}"
    );
    let outlook = ex.wait_log("** dave@outlook.test", limit);
    assert!(
        outlook.contains(
            "SMTP error from remote mail server after end of data: 550 5.7.1 Service unavailable"
        ),
        "{outlook}"
    );
    for l in [&fail, &ndr, &gmail, &yahoo, &outlook] {
        eprintln!("{l}");
    }

    // read-only posture and queue commands
    let bp = crate::util::stdout(&ex.run(&["-bp"]));
    assert!(bp.contains("carol@yahoo.test"), "{bp}");
    let acl = crate::util::stdout(&ex.run(&["-bP", "acl_smtp_rcpt"]));
    assert_eq!(acl.trim(), "acl_smtp_rcpt = acl_rcpt");
    let cfg = crate::util::stdout(&ex.run(&["-bP", "config"]));
    assert!(!cfg.contains("verify = recipient"), "{cfg}");

    // strict: unknown recipients are rejected at RCPT (also after switching a running one)
    let strict = Exim::start(EximMode::Strict);
    assert!(!crate::util::smtp_send(
        &strict.server(),
        "victim@victim.test",
        "nouser@example.test",
        "x"
    ));
    let rej = strict.wait_log("rejected RCPT <nouser@example.test>", limit);
    eprintln!("{rej}");
    assert!(crate::util::smtp_send(
        &strict.server(),
        "victim@victim.test",
        "alice@example.test",
        "x"
    ));
    // without routes, remote mail is deferred
    assert!(crate::util::smtp_send(
        &strict.server(),
        "alice@example.test",
        "bob@gmail.test",
        "x"
    ));
    let d = strict.wait_log("== bob@gmail.test", limit);
    assert!(d.contains("lab: outbound delivery disabled"), "{d}");

    ex.set_mode(EximMode::Strict);
    assert!(!crate::util::smtp_send(
        &ex.server(),
        "victim@victim.test",
        "nouser2@example.test",
        "x"
    ));
    eprintln!("Exim smoke test in {:?}", t0.elapsed());
}
