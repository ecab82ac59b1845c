#!/usr/bin/env bash
# Query budgets over a simulated day: a /20 x 20 lists swept every 30 minutes, one list limited to
# 100,000 queries/day; prints each list's queries in the day against its limit. Loopback only.
#   scripts/bench-budget.sh
# Needs: rbldnsd, dnsperf (for the shared set-up), python3, GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh
cargo build --release --locked -q --example bench_budget
bench_start 20
target/release/examples/bench_budget "127.0.0.1:$PORT" "$W/lists.d"
