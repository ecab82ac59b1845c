#!/usr/bin/env bash
# Web benchmark (issue 6): p99 latency of the overview, a target page and /metrics at 50 concurrent
# connections (wrk), against a daemon whose database holds a year of history for 16,384 targets x 40 lists
# (built by examples/bench_store.rs with BENCH_IPS=16384). /healthz is measured in the same run as the
# reference (the server's own floor).
#   scripts/bench-web.sh [DURATION]     (default 10s per URL)
# Needs: wrk (apt-get install wrk). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10s}
command -v wrk >/dev/null || { echo "missing wrk: apt-get install wrk" >&2; exit 1; }
cargo build --release --locked -q --bin rblwatch --example bench_store
W=$(mktemp -d /tmp/rblwatch-webbench.XXXXXX)
trap 'kill "$DPID" 2>/dev/null || true; rm -rf "$W"' EXIT
echo "== building the database (a year, 16,384 targets x 40 lists)"
BENCH_IPS=16384 target/release/examples/bench_store "$W/rblwatch.db" | sed 's/^/   /'
mkdir -p "$W/lists.d"
for i in $(seq -w 0 39); do printf '[[list]]\nid = "list-%s"\nzone = "list-%s.test"\nkind = "ipv4"\n\n' "$i" "$i"; done > "$W/lists.d/bench.toml"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$W/rblwatch.toml" <<TOML
[resolver]
nameservers = ["127.0.0.1:9"]
timeout = "200ms"
retries = 0
[lists]
dirs = ["$W/lists.d"]
use = [$(seq -w 0 39 | sed 's/.*/"list-&"/' | paste -sd,)]
[[targets]]
target = "10.64.0.0/18"
[daemon]
database = "$W/rblwatch.db"
sweep = "0 0 1 1 *"
[web]
listen = "127.0.0.1:$PORT"
refresh = "0s"
TOML
target/release/rblwatch daemon -C "$W/rblwatch.toml" 2>"$W/daemon.log" &
DPID=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
sleep 2   # let the start-up health check and sweep (dead resolver: nothing queried) settle
TARGET=$(curl -fs "http://127.0.0.1:$PORT/api/v1/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["listings"][0]["target"])')
echo "== wrk, 50 connections, $DUR per URL (p99 targets: pages < 50 ms, /metrics < 200 ms)"
for path in /healthz / "/target/$TARGET" /metrics ${EXTRA_PATHS:-}; do
  out=$(wrk -t2 -c50 -d"$DUR" --latency "http://127.0.0.1:$PORT$path")
  p99=$(awk '/ 99%/ {print $2}' <<<"$out")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  printf '%-24s p99 %-10s %10s req/s %s\n' "$path" "$p99" "$rps" "${non2xx:+NON-2xx: $non2xx}"
done
printf 'page sizes: overview %s bytes, metrics %s bytes\n' "$(curl -fs "http://127.0.0.1:$PORT/" | wc -c)" "$(curl -fs "http://127.0.0.1:$PORT/metrics" | wc -c)"
