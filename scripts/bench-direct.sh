#!/usr/bin/env bash
# Direct-mode sweep benchmark (issue 9): NSD serves a root zone that delegates z01..z20.test to one
# rbldnsd on 127.53.0.11:53 (4 MiB receive buffer); `rblwatch check` in `mode = "direct"` finds the
# servers from that root and sweeps 10.40.0.0/18 x 20 lists (327,680 queries) at them; in the same run
# dnsperf sends the same query set straight to the rbldnsd as the ceiling. As root (port 53). Loopback only.
#   scripts/bench-direct.sh [CONCURRENCY]
# Needs: nsd, rbldnsd, dnsperf, python3, GNU time, dig.
set -euo pipefail
cd "$(dirname "$0")/.."
CONC=${1:-256}
NET=127.53.0
PORT=53
for p in nsd:/usr/sbin/nsd rbldnsd:/usr/sbin/rbldnsd dnsperf:dnsperf time:/usr/bin/time dnsutils:dig; do
  command -v "${p#*:}" >/dev/null || { echo "missing ${p%%:*}: apt-get install ${p%%:*}" >&2; exit 1; }
done
[ -n "${RBLWATCH_BIN:-}" ] || cargo build --release --locked -q
W=$(mktemp -d /tmp/rblwatch-direct.XXXXXX)
trap 'kill $(cat "$W/rbldnsd.pid" "$W/nsd/nsd.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$W"' EXIT
mkdir -p "$W/zones" "$W/lists.d" "$W/nsd"; chmod 755 "$W" "$W/zones"
python3 - "$W" "$NET" <<'PY'
import sys
w, net = sys.argv[1], sys.argv[2]
with open(f"{w}/zones/bench.ip4set", "w") as f:
    f.write("$TTL 10\n:127.0.0.2:Listed in bench zone: $\n127.0.0.2\n")
    for i in range(0, 16384, 20):
        f.write(f"10.40.{i // 256}.{i % 256}\n")
root = [f"$TTL 3600\n. IN SOA ns.root. hostmaster.root. 1 3600 600 86400 60\n. IN NS ns.root.\nns.root. IN A {net}.1\n"]
with open(f"{w}/lists.d/bench.toml", "w") as f, open(f"{w}/queries.txt", "w") as q:
    for z in range(1, 21):
        f.write(f'[[list]]\nid = "z{z:02}"\nzone = "z{z:02}.test"\nkind = "ipv4"\nreturns = [{{ code = "127.0.0.2", meaning = "bench" }}]\n\n')
        root.append(f"z{z:02}.test. 3600 IN NS ns.z{z:02}.test.\nns.z{z:02}.test. 3600 IN A {net}.11\n")
        for i in range(16384):
            q.write(f"{i % 256}.{i // 256}.40.10.z{z:02}.test A\n")
open(f"{w}/nsd/root.zone", "w").write("".join(root))
open(f"{w}/nsd/nsd.conf", "w").write(f"""server:
  ip-address: {net}.1
  port: 53
  do-ip6: no
  username: ""
  zonesdir: "{w}/nsd"
  pidfile: "{w}/nsd/nsd.pid"
  database: ""
  zonelistfile: "{w}/nsd/zone.list"
  xfrdfile: "{w}/nsd/xfrd.state"
  xfrdir: "{w}/nsd"
  logfile: "{w}/nsd/nsd.log"
  server-count: 1
remote-control:
  control-enable: no
zone:
  name: "."
  zonefile: "root.zone"
""")
PY
chmod 644 "$W"/zones/*
/usr/sbin/nsd -c "$W/nsd/nsd.conf"
zones=(); for z in $(seq -w 1 20); do zones+=("z$z.test:ip4set:bench.ip4set"); done
python3 - "$NET.11" "$W" "${zones[@]}" >"$W/rbldnsd.log" 2>&1 <<'PY' &
import os, socket, sys
ip, w, zones = sys.argv[1], sys.argv[2], sys.argv[3:]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind((ip, 53))
os.dup2(s.fileno(), 3); os.set_inheritable(3, True)
os.environ["LISTEN_FDS"] = "1"; os.environ["LISTEN_PID"] = str(os.getpid())
user = ["-u", "rbldns"] if os.getuid() == 0 else []
os.execv("/usr/sbin/rbldnsd", ["rbldnsd", "-n", *user, "-w", f"{w}/zones", "-p", f"{w}/rbldnsd.pid", "-t", "10", "-a", *zones])
PY
for _ in $(seq 50); do dig +short +time=1 +tries=1 @"$NET.11" 2.0.0.127.z01.test A 2>/dev/null | grep -q 127 && break; sleep 0.1; done
dig +norec +time=1 @"$NET.1" z01.test NS | grep -q "ns.z01.test" || { echo "the root does not delegate"; cat "$W/nsd/nsd.log"; exit 1; }

ROUNDS=${ROUNDS:-3}
BIN=${RBLWATCH_BIN:-target/release/rblwatch}
printf '[resolver]\nmode = "direct"\nroot_hints = ["%s.1"]\nnameservers = ["127.0.0.1:9"]\n[lists]\ndirs = ["%s/lists.d"]\n' "$NET" "$W" > "$W/bench.toml"
LISTS=$(seq -w 1 20 | sed 's/^/z/' | paste -sd,)
QUERIES=$((16384 * 20 + 60))
echo "== $ROUNDS rounds, each: dnsperf straight to the list's server (327,680 queries, 100 outstanding), then rblwatch check in mode = \"direct\" from the root at $NET.1, concurrency $CONC ($BIN); load: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
  /usr/bin/time -v -o "$W/dtime.txt" dnsperf -s "$NET.11" -p 53 -d "$W/queries.txt" -n 1 -c 1 -T 1 -q 100 -t 2 > "$W/dnsperf.txt" 2>&1 || true
  DNSPERF_QPS=$(awk '/Queries per second/ {print $4}' "$W/dnsperf.txt")
  DNSPERF_Q=$(awk '/Queries completed/ {print $3}' "$W/dnsperf.txt")
  DNSPERF_LOST=$(awk '/Queries lost/ {print $3}' "$W/dnsperf.txt")
  /usr/bin/time -v -o "$W/time.txt" "$BIN" check -C "$W/bench.toml" \
    --lists "$LISTS" --concurrency "$CONC" --timeout 2s --show problems 10.40.0.0/18 > "$W/out.txt" 2>"$W/err.txt" || true
  SUMMARY=$(grep "targets x" "$W/out.txt" | tail -1)
  SECS=$(python3 -c "import sys; p=sys.argv[1].split(':'); print(sum(float(x)*60**i for i,x in enumerate(reversed(p))))" "$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$W/time.txt")")
  RSS_KB=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$W/time.txt")
  CPU=$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.2f", s}' "$W/time.txt")
  DCPU=$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.2f", s}' "$W/dtime.txt")
  python3 - "$QUERIES" "$SECS" "$CPU" "$DNSPERF_QPS" "$DNSPERF_Q" "$DCPU" "$r" <<'PY'
import sys
q, secs, cpu, dqps, dq, dcpu, r = int(sys.argv[1]), *map(float, sys.argv[2:7]), sys.argv[7]
qps, us, dus = q / secs, cpu / q * 1e6, dcpu / max(dq, 1) * 1e6
print(f"round {r} rblwatch direct: {qps:,.0f} q/s, {us:.2f} us CPU/query | dnsperf {dqps:,.0f} q/s, {dus:.2f} us CPU/query"
      f" | throughput x{qps / dqps:.2f} (target >= 0.9), CPU/query x{us / dus:.2f} (target <= 1.3)")
PY
  echo "  dnsperf lost $DNSPERF_LOST; rblwatch $SECS s, peak RSS $((RSS_KB / 1024)) MB; $(grep -q " 0 unknown" <<<"$SUMMARY" && echo "unanswered: 0" || echo "UNANSWERED QUERIES PRESENT: $SUMMARY"); load $(cut -d' ' -f1 /proc/loadavg)"
done
echo "(rblwatch counts its $QUERIES A queries over the whole process: start-up, NS discovery, health check and the TXT lookups of listed pairs included)"
