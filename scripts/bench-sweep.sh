#!/usr/bin/env bash
# Sweep benchmark: 16,384 IPs (a /18) x 20 zones = 327,680 queries against a local rbldnsd,
# and in the same run dnsperf on the same query set as the ceiling.
#   scripts/bench-sweep.sh [CONCURRENCY]
# Needs: rbldnsd, dnsperf, python3, GNU time (apt-get install rbldnsd dnsperf time). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
CONC=${1:-256}
PORT=${PORT:-15353}
W=$(mktemp -d /tmp/rblwatch-bench.XXXXXX)
trap 'kill $(cat "$W/rbldnsd.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$W"' EXIT
for p in rbldnsd:rbldnsd dnsperf:dnsperf time:/usr/bin/time; do
  command -v "${p#*:}" >/dev/null || [ -x "${p#*:}" ] || { echo "missing ${p%%:*}: apt-get install ${p%%:*}" >&2; exit 1; }
done
cargo build --release --locked -q

# Zone: 1 in 20 addresses of 10.40.0.0/18 listed, with TXT.
mkdir -p "$W/zones" "$W/lists.d"; chmod 755 "$W" "$W/zones"
python3 - "$W" <<'PY'
import sys
w = sys.argv[1]
with open(f"{w}/zones/bench.ip4set", "w") as f:
    f.write("$TTL 10\n:127.0.0.2:Listed in bench zone: $\n127.0.0.2\n")
    for i in range(0, 16384, 20):
        f.write(f"10.40.{i // 256}.{i % 256}\n")
with open(f"{w}/lists.d/bench.toml", "w") as f:
    for z in range(1, 21):
        f.write(f'[[list]]\nid = "z{z:02}"\nzone = "z{z:02}.test"\nkind = "ipv4"\nreturns = [{{ code = "127.0.0.2", meaning = "bench" }}]\n\n')
with open(f"{w}/queries.txt", "w") as f:
    for z in range(1, 21):
        for i in range(16384):
            f.write(f"{i % 256}.{i // 256}.40.10.z{z:02}.test A\n")
PY
chmod 644 "$W"/zones/*
ZONES=(); for z in $(seq -w 1 20); do ZONES+=("z$z.test:ip4set:bench.ip4set"); done
# rbldnsd hard-codes a 64 KiB receive buffer for -b sockets; pre-bind a 4 MiB one (socket activation).
python3 - "$PORT" "$W" "${ZONES[@]}" >"$W/rbldnsd.log" 2>&1 <<'PY' &
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

echo "== dnsperf (ceiling): 327,680 queries, 100 outstanding"
dnsperf -s 127.0.0.1 -p "$PORT" -d "$W/queries.txt" -n 1 -c 1 -T 1 -q 100 -t 2 > "$W/dnsperf.txt" 2>&1 || true
grep -E "Queries sent|Queries completed|Queries lost|Queries per second" "$W/dnsperf.txt"
DNSPERF_QPS=$(awk '/Queries per second/ {print $4}' "$W/dnsperf.txt")

echo "== rblwatch check 10.40.0.0/18 x 20 lists, concurrency $CONC"
LISTS=$(seq -w 1 20 | sed 's/^/z/' | paste -sd,)
printf '[lists]\ndirs = ["%s/lists.d"]\n' "$W" > "$W/bench.toml"
/usr/bin/time -v -o "$W/time.txt" target/release/rblwatch check -C "$W/bench.toml" --resolver "127.0.0.1:$PORT" \
  --lists "$LISTS" --concurrency "$CONC" --timeout 2s --show problems 10.40.0.0/18 > "$W/out.txt" 2>"$W/err.txt" || true
SUMMARY=$(tail -1 "$W/out.txt")
ELAPSED=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$W/time.txt")
SECS=$(python3 -c "import sys; p='$ELAPSED'.split(':'); print(sum(float(x)*60**i for i,x in enumerate(reversed(p))))")
RSS_KB=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$W/time.txt")
QUERIES=$((16384 * 20 + 40))
echo "$SUMMARY"
python3 - "$SECS" "$RSS_KB" "$DNSPERF_QPS" "$QUERIES" <<'PY'
import sys
secs, rss, ceiling, q = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3] or 0), int(sys.argv[4])
qps = q / secs
print(f"rblwatch: {q} A queries (+ TXT for listed) in {secs:.2f} s = {qps:,.0f} q/s; peak RSS {rss/1024:.1f} MB")
print(f"dnsperf ceiling: {ceiling:,.0f} q/s; ratio {qps/ceiling:.2f} (target >= 0.50); RSS target < 64 MB")
PY
grep -q " 0 unknown" <<<"$SUMMARY" && echo "unanswered: 0" || echo "UNANSWERED QUERIES PRESENT"
