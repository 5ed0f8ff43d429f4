#!/usr/bin/env bash
# make crash-test: kill `scalequest run` with kill -9 at random moments and restart it each
# time, then check what the killed runs left against an uninterrupted run of the same config:
# every JSONL output holds each id once and no torn line, no id the uninterrupted run has is
# missing, and every output (JSONL and model weights) is byte for byte the same.
#   scripts/crash-test.sh [KILLS] [CONFIG]     (defaults: 100, examples/crash.yaml)
# The kills are spread over the stages, not over time (a time schedule puts nearly every kill
# into the longest stage): try k targets the k-th enabled stage in turn; the killer waits until
# the manifest has that stage running, then waits a random 0..KILL_JITTER s more (default 1.5)
# and kills, so kills land at random moments inside each stage: in its command, in a model save,
# between the rename and the manifest write. A run that finishes is checked, and the next kills
# fall on a fresh run. Which stage each kill hit is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
KILLS=${1:-100}
CONFIG=${2:-examples/crash.yaml}
SQ=${SQ:-build/rel/scalequest}
W=${CRASH_DIR:-build/crash}
# no OMP_WAIT_POLICY here: scalequest waits passively at OpenMP joins unless OMP_WAIT_POLICY
# or GOMP_SPINCOUNT is set (docs/engine.md, "Threads on a shared machine")
[ -x "$SQ" ] || { echo "crash-test: $SQ is missing; run make first" >&2; exit 1; }
rm -rf "$W"
mkdir -p "$W"

config_for() { # a copy of CONFIG whose run_dir is $1
    sed -E "s|^run_dir:.*$|run_dir: $1|" "$CONFIG" >"$W/$(basename "$1").yaml"
    grep -q "^run_dir: $1\$" "$W/$(basename "$1").yaml" || { echo "crash-test: $CONFIG needs a top-level run_dir line" >&2; exit 1; }
    echo "$W/$(basename "$1").yaml"
}

ref_cfg=$(config_for "$W/ref")
t0=$(date +%s.%N)
"$SQ" run "$ref_cfg" --quiet 2>"$W/ref.log" || { cat "$W/ref.log" >&2; exit 1; }
T=$(python3 -c "print(round($(date +%s.%N) - $t0, 2))")
echo "crash-test: uninterrupted run took ${T}s; now $KILLS kills"

check() { # compare run dir $1 against the reference; prints "lost dup same"
    python3 - "$W/ref" "$1" <<'PY'
import json, os, sys
ref, got = sys.argv[1], sys.argv[2]
lost = dup = 0
same = True
torn = []
for dirpath, _, files in os.walk(ref):
    for f in sorted(files):
        rp = os.path.join(dirpath, f)
        rel = os.path.relpath(rp, ref)
        if rel.startswith("logs") or rel in ("manifest.json", ".lock") or rel.endswith("train_log.jsonl") \
                or rel.endswith("checkpoint.json"):
            continue
        gp = os.path.join(got, rel)
        if not os.path.exists(gp):
            same = False
            print("missing", rel, file=sys.stderr)
            continue
        a, b = open(rp, "rb").read(), open(gp, "rb").read()
        if rel.endswith(".json"):  # reports name their files (decontaminate's marker): the run dirs differ
            a, b = a.replace(ref.encode(), b"RUN_DIR"), b.replace(got.encode(), b"RUN_DIR")
        if rel.endswith("results.json"):  # eval's table also holds its run time and model path
            ja, jb = json.loads(a), json.loads(b)
            a, b = [json.dumps([j.get("benchmarks"), j.get("average")]).encode() for j in (ja, jb)]
        if a != b:
            same = False
            print("differs", rel, file=sys.stderr)
        if rel.endswith(".jsonl"):
            if b and not b.endswith(b"\n"):
                torn.append(rel)
            ids = []
            for line in b.splitlines():
                try:
                    ids.append(json.loads(line).get("id"))
                except Exception:
                    torn.append(rel)
            want = [json.loads(l).get("id") for l in a.splitlines()]
            dup += len(ids) - len(set(ids))
            lost += len(set(want) - set(ids))
for t in torn:
    print("torn line in", t, file=sys.stderr)
print(lost, dup, "identical" if same and not torn else "DIFFERENT")
PY
}

# Wait until stage $2 (or a later one) runs in run dir $1, or the run ends; print the stage.
wait_for_stage() {
    python3 - "$1" "$2" "$3" <<'PY'
import json, os, sys, time
run, target, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
def alive():
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False
while alive():
    try:
        st = json.load(open(os.path.join(run, "manifest.json")))["stages"]
    except Exception:
        st = {}
    if target in st and st[target].get("status") in ("running", "done"):
        break
    time.sleep(0.05)
PY
}

stages=$("$SQ" run "$ref_cfg" --dry-run | sed -n 's/^\[ *[0-9]*\/[0-9]*\] \([a-z_]*\) .*/\1/p')
mapfile -t stage_list <<<"$stages"
nst=${#stage_list[@]}
jitter=${KILL_JITTER:-1.5}
kills=0 tries=0 runs=0 lost=0 dup=0 verdict=identical
declare -A hit
crash_dir="$W/crash0"
cfg=$(config_for "$crash_dir")
while [ "$kills" -lt "$KILLS" ]; do
    "$SQ" run "$cfg" --quiet 2>>"$W/crash.log" &
    pid=$!
    # the target moves on after every try, kill or not: a stage too short to be hit (the last,
    # say) must not hold the schedule while whole runs finish under it
    target=${stage_list[$((tries % nst))]}
    tries=$((tries + 1))
    wait_for_stage "$crash_dir" "$target" "$pid"
    sleep "$(python3 -c "import random; print(round(random.uniform(0.0, $jitter), 3))")"
    # A run that ended before the signal is a zombie until waited for, and kill succeeds on it:
    # only the exit status tells a kill (137) from a finished run (0).
    kill -9 "$pid" 2>/dev/null || true
    set +e
    wait "$pid" 2>/dev/null
    rc=$?
    set -e
    if [ "$rc" -eq 137 ]; then
        kills=$((kills + 1))
        # the stage the kill hit: the one the manifest has as running, else the next to start
        st=$(python3 -c "
import json,sys
try: m=json.load(open('$crash_dir/manifest.json'))['stages']
except Exception: print('(before the manifest)'); sys.exit()
r=[k for k,v in m.items() if v.get('status')=='running']
print(r[0] if r else '(between stages)')")
        hit[$st]=$(( ${hit[$st]:-0} + 1 ))
    else
        [ "$rc" -eq 0 ] || { echo "crash-test: a run failed ($rc); see $W/crash.log" >&2; tail -3 "$W/crash.log" >&2; exit 1; }
        read -r l d v < <(check "$crash_dir")
        lost=$((lost + l)) dup=$((dup + d))
        [ "$v" = identical ] || verdict=DIFFERENT
        runs=$((runs + 1))
        crash_dir="$W/crash$runs"
        cfg=$(config_for "$crash_dir")
    fi
done
# the last killed run, finished without kills
"$SQ" run "$cfg" --quiet 2>>"$W/crash.log" || { echo "crash-test: the final run failed; see $W/crash.log" >&2; exit 1; }
read -r l d v < <(check "$crash_dir")
lost=$((lost + l)) dup=$((dup + d))
[ "$v" = identical ] || verdict=DIFFERENT
runs=$((runs + 1))
echo "crash-test: kills per stage:"
for k in "${!hit[@]}"; do printf '  %-22s %d\n' "$k" "${hit[$k]}"; done | sort
echo "crash-test: $runs killed run(s) checked against the uninterrupted one"
echo "$kills kills, $lost lost, $dup duplicated, $verdict"
[ "$lost" -eq 0 ] && [ "$dup" -eq 0 ] && [ "$verdict" = identical ]
