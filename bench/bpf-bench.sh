#!/bin/bash
# Host benchmark of the vhost-hist programs (docs/benchmarks.md, section bpf): builds
# bpf/.output/bpf-bench and runs it RUNS times (default 3), each in its own process; the
# output goes to OUT too (default bench/results/bpf-host.md); ARGS=--in-kernel runs only
# sections 0 and 4 (about 40 s a run of EVENTS=10000000 here). Needs root. The guest numbers come from
# test/kernel/bpf-concurrency.test.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
make -s -C bpf bench
# The classic tracepoint programs find their tracepoints' ids in tracefs.
if [ ! -d /sys/kernel/tracing/events ]; then
	mount -t tracefs tracefs /sys/kernel/tracing
fi
mkdir -p bench/results
for i in $(seq "$runs"); do
	echo "# run $i of $runs, $(date -u +%FT%TZ), $(uname -r), $(nproc) CPUs"
	# shellcheck disable=SC2086 # ARGS: extra options, e.g. --in-kernel
	bpf/.output/bpf-bench --events "${EVENTS:-2000000}" --rounds "${ROUNDS:-5}" \
		--race-events "${RACE_EVENTS:-1000000}" ${ARGS:-}
	echo
done | tee "${OUT:-bench/results/bpf-host.md}"
