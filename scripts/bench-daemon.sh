#!/usr/bin/env bash
# Daemon memory benchmark (issue 3): peak RSS of `rblwatch daemon --once` sweeping 16,384 targets (a /18)
# x 40 lists = 655,360 pairs against a local rbldnsd (1 in 20 addresses listed: 32,800 baseline listings
# committed in one transaction), into a fresh SQLite file.
#   scripts/bench-daemon.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh
cargo build --release --locked -q
bench_start 40
cat > "$W/daemon.toml" <<TOML
[resolver]
nameservers = ["127.0.0.1:$PORT"]
concurrency = 64
[lists]
dirs = ["$W/lists.d"]
use = [$(sed 's/[^,]*/"&"/g' <<<"$LISTS")]
[[targets]]
target = "10.40.0.0/18"
[daemon]
database = "$W/bench.db"
TOML
/usr/bin/time -v -o "$W/time.txt" target/release/rblwatch daemon --once -C "$W/daemon.toml" 2>"$W/daemon.log"
grep "sweep finished" "$W/daemon.log" | sed 's/.*INFO //'
RSS_KB=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$W/time.txt")
ELAPSED=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$W/time.txt")
echo "daemon --once, 16,384 targets x 40 lists: $(secs_of "$ELAPSED") s, peak RSS $((RSS_KB / 1024)) MB (target < 100 MB)"
echo "database after the baseline sweep: $(du -k "$W/bench.db" | cut -f1) KB"
