#!/usr/bin/env bash
# Mirror benchmarks (issue 25), each with its reference in the same run:
#  1. a synthetic ZEN-sized mirror (10 M IPv4 entries/ranges, 1 M IPv6 /64s; scripts/gen-mirror.py)
#     loaded by rblwatch (time, peak RSS) vs rbldnsd loading the same files, and wc -l / grep -c over them;
#  2. a /8 (16,777,216 addresses) checked against 5 mirrored lists (time, RSS);
#  3. 64 /24s + 4 /48s by intersection on each of the 5 lists (time per sweep), the mirror alone and as the
#     daemon's sweep does it (through the engine into the pairs a sweep records).
# Usage: scripts/bench-mirror.sh [N4 N6]   (needs rbldnsd, /usr/bin/time; builds the release example)
set -euo pipefail
cd "$(dirname "$0")/.."
N4=${1:-10000000}; N6=${2:-1000000}; PORT=${PORT:-15399}
for p in /usr/sbin/rbldnsd /usr/bin/time; do [ -x "$p" ] || { echo "missing $p (apt-get install rbldnsd time)" >&2; exit 1; }; done
W=$(mktemp -d /tmp/rblwatch-mirror.XXXXXX)
trap 'kill $(cat "$W/rbldnsd.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$W"' EXIT
mkdir -p "$W/zen"; chmod 755 "$W" "$W/zen"
echo "== generating $N4 IPv4 + $N6 IPv6 entries"
/usr/bin/time -f "generator: %e s" python3 scripts/gen-mirror.py "$W/zen" "$N4" "$N6"
chmod 644 "$W"/zen/*
ls -l "$W/zen" | tail -n +2 | awk '{print $5, $9}'
echo "== references"
/usr/bin/time -f "wc -l: %e s" wc -l "$W/zen/zen.ip4set" "$W/zen/zen6.ip6tset"
/usr/bin/time -f "grep -c: %e s" grep -c -v '^[#:$!]' "$W/zen/zen.ip4set" || true
USER_OPT=(); [ "$(id -u)" = 0 ] && USER_OPT=(-u rbldns)
start=$(date +%s.%N)
/usr/sbin/rbldnsd "${USER_OPT[@]}" -4 -b "127.0.0.1/$PORT" -w "$W/zen" -p "$W/rbldnsd.pid" -t 10 -c 0 -a \
  zen.test:ip4set:zen.ip4set zen.test:ip6tset:zen6.ip6tset >"$W/rbldnsd.log" 2>&1
end=$(date +%s.%N)
pid=$(cat "$W/rbldnsd.pid")
echo "rbldnsd load: $(echo "$end - $start" | bc) s; RSS $(awk '/VmRSS/{print int($2/1024)}' /proc/$pid/status) MiB, peak $(awk '/VmHWM/{print int($2/1024)}' /proc/$pid/status) MiB"
kill "$pid"
echo "== rblwatch"
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target} cargo build --release --example bench_mirror -q
/usr/bin/time -f "bench_mirror total: %e s, %U s user, peak RSS %M KiB" \
  "${CARGO_TARGET_DIR:-target}/release/examples/bench_mirror" "$W/zen"
