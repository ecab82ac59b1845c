#!/usr/bin/env bash
# Soak benchmark (issue 13): ONE daemon in service mode for MINUTES (default 10): 1,024 targets x 3 lists
# swept every 2 s, a command source every 1 s, a backscatter probe every 5 s against a private Postfix,
# the status page and /metrics polled every 0.5 s. Prints RSS and database size every minute, then
# the growth per hour measured after the first two minutes, and the failed requests. Loopback only.
#   scripts/bench-soak.sh [MINUTES]
# RBLWATCH_BIN=path runs that binary instead of building target/release/rblwatch (to compare builds).
# Needs: rbldnsd, postfix, dnsperf (shared set-up), python3, curl, GNU time; as root (Postfix).
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-10}
source scripts/bench-lib.sh
if [ -z "${RBLWATCH_BIN:-}" ]; then cargo build --release --locked -q; fi
BIN=${RBLWATCH_BIN:-target/release/rblwatch}
bench_start 3
PF="$W/postfix"; mkdir -p "$PF"
PFPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
WEBPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
tests/fixtures/postfix-instance.sh start "$PF" "$PFPORT" >/dev/null
trap 'tests/fixtures/postfix-instance.sh stop "$PF" >/dev/null 2>&1 || true; kill $(cat "$W/rbldnsd.pid" 2>/dev/null) 2>/dev/null || true; kill "$DPID" 2>/dev/null || true; rm -rf "$W"' EXIT
cat > "$W/soak.toml" <<TOML
[resolver]
nameservers = ["127.0.0.1:$PORT"]
[lists]
dirs = ["$W/lists.d"]
use = [$(sed 's/[^,]*/"&"/g' <<<"$LISTS")]
[[targets]]
target = "10.40.0.0/22"
[daemon]
database = "$W/soak.db"
sweep = "2s"
health = "2s"
[[sources]]
name = "cmd"
kind = "command"
command = ["sh", "-c", "echo \$((\$(date +%s) % 97))"]
interval = "1s"
[[probes]]
domain = "example.test"
server = "127.0.0.1:$PFPORT"
mail_from = "probe@probe.test"
interval = "5s"
[web]
listen = "127.0.0.1:$WEBPORT"
TOML
RUST_LOG=warn "$BIN" daemon -C "$W/soak.toml" 2>"$W/daemon.log" &
DPID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$WEBPORT/healthz" >/dev/null && break; sleep 0.2; done
# the poller: page and /metrics every 0.5 s, failures counted
( ok=0; bad=0
  while kill -0 "$DPID" 2>/dev/null; do
    for p in / /metrics; do
      if curl -sf -o /dev/null --max-time 5 "http://127.0.0.1:$WEBPORT$p"; then ok=$((ok+1)); else bad=$((bad+1)); fi
    done
    echo "$ok $bad" > "$W/poll"
    sleep 0.5
  done ) &
rss() { awk '/VmRSS/ {print $2}' "/proc/$DPID/status"; }
# RSS in two parts: anonymous (heap, stacks: what a leak grows) and file-backed (the binary's code pages,
# mapped as code paths first run; the kernel can drop and re-read them)
rss_parts() { awk '/RssAnon/ {a=$2} /RssFile/ {f=$2} END {print a, f}' "/proc/$DPID/status"; }
dbkb() { du -k "$W/soak.db" "$W/soak.db-wal" 2>/dev/null | awk '{s+=$1} END {print s}'; }
# SQLite's own memory (page caches up to cache_size per connection, statements), from /metrics
sqlite_kb() { curl -sf --max-time 5 "http://127.0.0.1:$WEBPORT/metrics" | awk '/^rblwatch_sqlite_memory_bytes / {printf "%d", $2/1024}'; }
echo "minute  rss_kb  db_kb  sweeps  samples  probes  requests_ok  requests_failed  sqlite_kb  anon_kb  file_kb"
for m in $(seq 1 "$MINUTES"); do
  sleep 60
  kill -0 "$DPID" 2>/dev/null || { echo "the daemon died"; cat "$W/daemon.log"; exit 1; }
  counts=$(python3 - "$W/soak.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
q = lambda s: c.execute(s).fetchone()[0]
print(q("SELECT COUNT(*) FROM sweeps WHERE status='done'"), q("SELECT COUNT(*) FROM metric_samples"), q("SELECT COUNT(*) FROM probe_results"))
PY
)
  read -r ok bad < "$W/poll"
  sq=$(sqlite_kb); echo "$m $(rss) $(dbkb) $counts $ok $bad ${sq:-0} $(rss_parts)" | tee -a "$W/series" | awk '{printf "%6d  %6d  %5d  %6d  %7d  %6d  %11d  %15d  %9d  %7d  %7d\n", $1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11}'
done
kill -TERM "$DPID"; wait "$DPID" || true
python3 - "$W/series" <<'PY'
import sys
rows = [list(map(int, l.split())) for l in open(sys.argv[1])]
after = [r for r in rows if r[0] >= 2]
def growth(what, col, span):
    a, b = span[0], span[-1]
    hours = (b[0] - a[0]) / 60
    return f"{what}: {a[col]/1024:.1f} -> {b[col]/1024:.1f} MB: {100*(b[col]-a[col])/a[col]/hours:+.1f} % per hour"
if len(after) >= 2:
    hours = (after[-1][0] - after[0][0]) / 60
    print(growth("RSS after warm-up (minute 2 to the end)", 1, after) + " (target < 5 %)")
    # the last hour (the second half of a shorter run): flat means flat at the end, not only on average
    last = [r for r in after if r[0] >= max(after[-1][0] - 60, (after[0][0] + after[-1][0]) // 2)]
    if len(last) >= 2 and last[0][0] != after[0][0]:
        print(growth(f"RSS over minutes {last[0][0]}-{last[-1][0]}", 1, last))
    print(growth("anonymous RSS (heap, stacks) after warm-up", 9, after))
    print(growth("file-backed RSS (the binary's code pages) after warm-up", 10, after))
    d0, d1 = after[0][2], after[-1][2]
    print(f"database: {d0/1024:.1f} -> {d1/1024:.1f} MB: {(d1-d0)/1024/hours:+.1f} MB per hour (samples and probe results, within retention)")
    s0, s1 = after[0][8], after[-1][8]
    print(f"SQLite's memory (page caches, bounded by cache_size per connection): {s0/1024:.1f} -> {s1/1024:.1f} MB")
    o0, o1 = after[0][1] - s0, after[-1][1] - s1
    print(f"RSS without SQLite's memory: {o0/1024:.1f} -> {o1/1024:.1f} MB: {100*(o1-o0)/o0/hours:+.1f} % per hour")
print(f"requests: {rows[-1][6]} ok, {rows[-1][7]} failed (target 0)")
PY
