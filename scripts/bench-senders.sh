#!/usr/bin/env bash
# The outbound ledger over a synthetic busy-relay Postfix log (issue 23, point 6; BENCHMARKS.md):
# 1 M lines from 100,000 SASL accounts (scripts/gen-busy-relay-log.py), read by `rblwatch senders`
# (the daemon's path: ledger join + class rules + per-account tally), against `grep -c` over the same file in
# the same run; lines per second and peak RSS.
#   scripts/bench-senders.sh [LINES] [ACCOUNTS]
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${1:-1000000} ACCOUNTS=${2:-100000}
cargo build --release --locked -q
W=$(mktemp -d /tmp/rblwatch-bench-senders.XXXXXX)
trap 'rm -rf "$W"' EXIT
python3 scripts/gen-busy-relay-log.py "$W/maillog" "$LINES" "$ACCOUNTS"
n=$(wc -l <"$W/maillog")
cat "$W/maillog" >/dev/null   # page cache warm for both readers
# (grep writes to a file: with its output on /dev/null GNU grep stops at the first match)
# wall time in ns around each run (time(1)'s %e has 10 ms steps, too coarse for grep); peak RSS from time(1)
t0=$(date +%s%N); /usr/bin/time -f '%M' -o "$W/grep.time" grep -c 'status=' "$W/maillog" >"$W/grep.out"; t1=$(date +%s%N)
/usr/bin/time -f '%M' -o "$W/ledger.time" target/release/rblwatch senders --json "$W/maillog" >"$W/out.json"; t2=$(date +%s%N)
gs=$(echo "scale=3; ($t1 - $t0) / 1000000000" | bc); ls=$(echo "scale=3; ($t2 - $t1) / 1000000000" | bc)
gk=$(tail -1 "$W/grep.time"); lk=$(tail -1 "$W/ledger.time")
python3 - "$n" "$gs" "$gk" "$ls" "$lk" "$W/out.json" <<'PY'
import json, sys
n, gs, gk, ls, lk, out = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
o = json.load(open(out))
rate = lambda s: f"{n / max(s, 0.001):,.0f}"
print(f"lines: {n:,}")
print(f"grep -c status=:   {gs:.3f} s  {rate(gs)} lines/s  peak RSS {gk / 1024:.1f} MiB")
print(f"rblwatch senders:  {ls:.3f} s  {rate(ls)} lines/s  peak RSS {lk / 1024:.1f} MiB  ({ls / max(gs, 0.001):.1f}x grep's time)")
print(f"messages done {o['messages_done']:,}, accounts kept {o['accounts_kept']:,} (cap), by class {o['by_class']}")
print("bursts:", ", ".join(b.get('key') or b.get('class') for b in o['bursts']))
PY
