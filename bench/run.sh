#!/usr/bin/env bash
# Runs the benchmarks (benches/export.rs) and prints their table: throughput, memory at three
# sizes, fan-out concurrency, overhead over a raw fetch (wall time; CPU in row 13), and the
# Python baseline.
#   bench/run.sh            the full run (1,000,000 records; a few minutes)
#   bench/run.sh --quick    smaller sizes, to try it out
#   bench/run.sh --parquet  only row 10, Parquet against CSV (with --quick: 100,000 records)
#   bench/run.sh --quota    only row 12, pacing at a strict per-user quota (--quick: 500 messages)
#   bench/run.sh --floor    only row 13, CPU against the raw-fetch floor at 200,000 records,
#                           named and default columns (--quick: 50,000)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/bench-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import googleapiclient' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet google-api-python-client
fi
export GSCRAPE_BENCH_PYTHON="$PWD/$venv/bin/python"
cargo bench --bench export -- "$@"
