# Shared set-up for the benchmark scripts (sourced, not run).
# bench_start NZONES: a /18 zone (1 in 20 addresses of 10.40.0.0/18 listed) served as z01..zNN.test by an
# rbldnsd on 127.0.0.1:$PORT with a 4 MiB receive buffer, lists z01..zNN in $W/lists.d, dnsperf input in
# $W/queries.txt. Sets W (work dir, removed on exit) and LISTS (comma-separated ids).
PORT=${PORT:-15353}
bench_start() {
  local n=$1
  for p in rbldnsd:/usr/sbin/rbldnsd dnsperf:dnsperf time:/usr/bin/time dnsutils:dig; do
    command -v "${p#*:}" >/dev/null || { echo "missing ${p%%:*}: apt-get install ${p%%:*}" >&2; exit 1; }
  done
  W=$(mktemp -d /tmp/rblwatch-bench.XXXXXX)
  trap 'kill $(cat "$W/rbldnsd.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$W"' EXIT
  mkdir -p "$W/zones" "$W/lists.d"; chmod 755 "$W" "$W/zones"
  python3 - "$W" "$n" <<'PY'
import sys
w, n = sys.argv[1], int(sys.argv[2])
with open(f"{w}/zones/bench.ip4set", "w") as f:
    f.write("$TTL 10\n:127.0.0.2:Listed in bench zone: $\n127.0.0.2\n")
    for i in range(0, 16384, 20):
        f.write(f"10.40.{i // 256}.{i % 256}\n")
with open(f"{w}/lists.d/bench.toml", "w") as f:
    for z in range(1, n + 1):
        f.write(f'[[list]]\nid = "z{z:02}"\nzone = "z{z:02}.test"\nkind = "ipv4"\nreturns = [{{ code = "127.0.0.2", meaning = "bench" }}]\n\n')
with open(f"{w}/queries.txt", "w") as f:
    for z in range(1, n + 1):
        for i in range(16384):
            f.write(f"{i % 256}.{i // 256}.40.10.z{z:02}.test A\n")
PY
  chmod 644 "$W"/zones/*
  local zones=() z
  for z in $(seq -f "%02g" 1 "$n"); do zones+=("z$z.test:ip4set:bench.ip4set"); done
  LISTS=$(seq -f "%02g" 1 "$n" | sed 's/^/z/' | paste -sd,)
  # rbldnsd hard-codes a 64 KiB receive buffer for -b sockets; pre-bind a 4 MiB one (socket activation).
  python3 - "$PORT" "$W" "${zones[@]}" >"$W/rbldnsd.log" 2>&1 <<'PY' &
import os, socket, sys
port, w, zones = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(("127.0.0.1", port))
os.dup2(s.fileno(), 3); os.set_inheritable(3, True)
os.environ["LISTEN_FDS"] = "1"; os.environ["LISTEN_PID"] = str(os.getpid())
user = ["-u", "rbldns"] if os.getuid() == 0 else []
os.execv("/usr/sbin/rbldnsd", ["rbldnsd", "-n", *user, "-w", f"{w}/zones", "-p", f"{w}/rbldnsd.pid", "-t", "10", "-a", *zones])
PY
  for _ in $(seq 50); do dig +short +time=1 +tries=1 -p "$PORT" @127.0.0.1 2.0.0.127.z01.test A 2>/dev/null | grep -q 127 && break; sleep 0.1; done
}

# secs_of "h:mm:ss" or "m:ss.ss" -> seconds
secs_of() { python3 -c "import sys; p=sys.argv[1].split(':'); print(sum(float(x)*60**i for i,x in enumerate(reversed(p))))" "$1"; }

# cpu_of TIMEFILE -> user + system seconds from a `/usr/bin/time -v` report
cpu_of() { awk -F': ' '/User time|System time/ {s += $2} END {printf "%.2f", s}' "$1"; }

# vs_dnsperf LABEL QUERIES SECS CPU DNSPERF_QPS DNSPERF_QUERIES DNSPERF_CPU: one line comparing
# a rblwatch run with the dnsperf run next to it (throughput ratio, CPU per query ratio).
vs_dnsperf() {
  python3 - "$@" <<'PY'
import sys
label, q, secs, cpu, dqps, dq, dcpu = sys.argv[1], int(sys.argv[2]), *map(float, sys.argv[3:])
qps, us, dus = q / secs, cpu / q * 1e6, dcpu / max(dq, 1) * 1e6
print(f"{label}: {qps:,.0f} q/s, {us:.2f} us CPU/query | dnsperf {dqps:,.0f} q/s, {dus:.2f} us CPU/query"
      f" | throughput x{qps / dqps:.2f} (target >= 0.9), CPU/query x{us / dus:.2f} (target <= 1.3)")
PY
}
