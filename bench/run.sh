#!/usr/bin/env bash
# make bench: runs every bench/*.sh (one per area) in name order. Each prints its figures as
# ratios against a peer measured in the same run, or as a fraction of this machine's
# measured limit, plus peak memory — never a bare time alone.
set -u
cd "$(dirname "$0")/.."
status=0
for b in bench/*.sh; do
    [ "$(basename "$b")" = run.sh ] && continue
    [ -n "${1:-}" ] && [[ "$b" != *"$1"* ]] && continue
    echo "=== $(basename "$b" .sh)"
    bash "$b" || { echo "bench $b failed"; status=1; }
done
exit $status
