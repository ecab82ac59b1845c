#!/usr/bin/env bash
# Sweep benchmark: 16,384 IPs (a /18) x 20 zones = 327,680 queries against a local rbldnsd,
# and in the same run dnsperf on the same query set as the ceiling.
#   scripts/bench-sweep.sh [CONCURRENCY]
# Needs: rbldnsd, dnsperf, python3, GNU time (apt-get install rbldnsd dnsperf time). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
CONC=${1:-256}
source scripts/bench-lib.sh
cargo build --release --locked -q
bench_start 20

echo "== dnsperf (ceiling): 327,680 queries, 100 outstanding"
dnsperf -s 127.0.0.1 -p "$PORT" -d "$W/queries.txt" -n 1 -c 1 -T 1 -q 100 -t 2 > "$W/dnsperf.txt" 2>&1 || true
grep -E "Queries sent|Queries completed|Queries lost|Queries per second" "$W/dnsperf.txt"
DNSPERF_QPS=$(awk '/Queries per second/ {print $4}' "$W/dnsperf.txt")

echo "== rblwatch check 10.40.0.0/18 x 20 lists, concurrency $CONC"
printf '[lists]\ndirs = ["%s/lists.d"]\n' "$W" > "$W/bench.toml"
/usr/bin/time -v -o "$W/time.txt" target/release/rblwatch check -C "$W/bench.toml" --resolver "127.0.0.1:$PORT" \
  --lists "$LISTS" --concurrency "$CONC" --timeout 2s --show problems 10.40.0.0/18 > "$W/out.txt" 2>"$W/err.txt" || true
SUMMARY=$(tail -1 "$W/out.txt")
ELAPSED=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$W/time.txt")
SECS=$(secs_of "$ELAPSED")
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
