#!/usr/bin/env bash
# run_micro.sh — build (if needed) and run the micro-benchmarks in
# perf/micro/bench_micro.cpp: 3 repetitions, aggregates only, the table on
# stdout and the JSON in a file. About 2–3 minutes on a 2-core box.
#
#   perf/run_micro.sh [BUILD_DIR] [JSON_OUT] [extra bench_micro flags...]
#
#   BUILD_DIR  meson build directory, relative to the repository root unless
#              absolute (default: build); set up with meson if it is not one yet
#   JSON_OUT   JSON results file (default: perf/results/micro.json)
#   extra      passed on, e.g. --benchmark_filter='codec/'
#
# Environment: MIN_TIME (seconds per run, default 0.5); HDE_CORPUS (trace
# directory, or "none" for generated pages; by default ../shared/corpus/dev
# next to the repository is used when present).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-build}"
out="${2:-perf/results/micro.json}"
shift $(( $# < 2 ? $# : 2 ))
min_time="${MIN_TIME:-0.5}"

cd "$repo"
if [[ ! -f "$build/build.ninja" ]]; then
  meson setup "$build" "$repo"
fi
ninja -C "$build" perf/bench_micro

if [[ -z "${HDE_CORPUS:-}" && -f "$repo/../shared/corpus/dev/manifest.json" ]]; then
  export HDE_CORPUS
  HDE_CORPUS="$(cd "$repo/../shared/corpus/dev" && pwd)"
fi

mkdir -p "$(dirname "$out")"
"$build/perf/bench_micro" \
  --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=true \
  --benchmark_min_time="$min_time" \
  --benchmark_out="$out" \
  --benchmark_out_format=json \
  "$@"
echo "JSON results: $out" >&2
