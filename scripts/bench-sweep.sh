#!/usr/bin/env bash
# Sweep benchmark: 16,384 IPs (a /18) x 20 zones = 327,680 queries against a local rbldnsd,
# and in the same run dnsperf on the same query set as the ceiling.
#   scripts/bench-sweep.sh [CONCURRENCY]
# Needs: rbldnsd, dnsperf, python3, GNU time (apt-get install rbldnsd dnsperf time). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
CONC=${1:-256}
source scripts/bench-lib.sh
[ -n "${RBLWATCH_BIN:-}" ] || cargo build --release --locked -q
bench_start 20

ROUNDS=${ROUNDS:-3}
BIN=${RBLWATCH_BIN:-target/release/rblwatch}
printf '[lists]\ndirs = ["%s/lists.d"]\n' "$W" > "$W/bench.toml"
QUERIES=$((16384 * 20 + 40))
echo "== $ROUNDS rounds, each: dnsperf (327,680 queries, 100 outstanding), then rblwatch check 10.40.0.0/18 x 20 lists, concurrency $CONC ($BIN); load: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
  /usr/bin/time -v -o "$W/dtime.txt" dnsperf -s 127.0.0.1 -p "$PORT" -d "$W/queries.txt" -n 1 -c 1 -T 1 -q 100 -t 2 > "$W/dnsperf.txt" 2>&1 || true
  DNSPERF_QPS=$(awk '/Queries per second/ {print $4}' "$W/dnsperf.txt")
  DNSPERF_Q=$(awk '/Queries completed/ {print $3}' "$W/dnsperf.txt")
  DNSPERF_LOST=$(awk '/Queries lost/ {print $3}' "$W/dnsperf.txt")
  /usr/bin/time -v -o "$W/time.txt" "$BIN" check -C "$W/bench.toml" --resolver "127.0.0.1:$PORT" \
    --lists "$LISTS" --concurrency "$CONC" --timeout 2s --show problems 10.40.0.0/18 > "$W/out.txt" 2>"$W/err.txt" || true
  SUMMARY=$(tail -1 "$W/out.txt")
  SECS=$(secs_of "$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$W/time.txt")")
  RSS_KB=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$W/time.txt")
  vs_dnsperf "round $r rblwatch" "$QUERIES" "$SECS" "$(cpu_of "$W/time.txt")" "$DNSPERF_QPS" "$DNSPERF_Q" "$(cpu_of "$W/dtime.txt")"
  echo "  dnsperf lost $DNSPERF_LOST; rblwatch $SECS s, peak RSS $((RSS_KB / 1024)) MB; $(grep -q " 0 unknown" <<<"$SUMMARY" && echo "unanswered: 0" || echo "UNANSWERED QUERIES PRESENT: $SUMMARY"); load $(cut -d' ' -f1 /proc/loadavg)"
done
echo "(rblwatch counts its $QUERIES A queries over the whole process: start-up, health check and the TXT lookups of listed pairs included)"
