#!/usr/bin/env bash
# make bench: runs every bench/*.sh (one per area) in name order. Each prints its figures as
# ratios against a peer measured in the same run, or as a fraction of this machine's
# measured limit, plus peak memory — never a bare time alone. Each area's wall time and the
# total are printed too, with the load average at the start and the end.
#   bench/run.sh [PATTERN]   only the areas whose file name contains PATTERN
set -u
cd "$(dirname "$0")/.."
status=0
t0=$(date +%s)
echo "make bench: load average at start $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
for b in bench/*.sh; do
    [ "$(basename "$b")" = run.sh ] && continue
    [ -n "${1:-}" ] && [[ "$b" != *"$1"* ]] && continue
    echo "=== $(basename "$b" .sh)"
    t=$(date +%s)
    bash "$b" || { echo "bench $b failed"; status=1; }
    echo "=== $(basename "$b" .sh): $(($(date +%s) - t)) s"
done
echo "make bench: $(($(date +%s) - t0)) s in all; load average at end $(cut -d' ' -f1-3 /proc/loadavg)"
exit $status
