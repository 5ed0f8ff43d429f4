#!/usr/bin/env bash
# bench/net.sh: aggregate tokens/s of `scalequest serve` under 64 concurrent clients, as a
# fraction of in-process `scalequest generate` on the same prompts with the same settings,
# both measured here in the same run (goal: at least 0.9), plus each side's peak memory.
# The clients are `scalequest generate --concurrency 64` against the server URL (C, libcurl): 64 requests in flight.
# The two sides alternate for ROUNDS rounds and the best of each is kept, so that a burst of
# load from other work on the machine does not decide the ratio.
#   bench/net.sh [N_PROMPTS]   (default 192; ROUNDS=2)
set -eu
cd "$(dirname "$0")/.."
bin=build/rel/scalequest
model=../shared/assets/models/stories260K.gguf
n=${1:-192}
rounds=${ROUNDS:-2}
[ -x "$bin" ] || { echo "net: $bin not built (make)"; exit 1; }
[ -f "$model" ] || { echo "net: SKIP: $model not found"; exit 0; }
tmp=$(mktemp -d)
srv=
trap '[ -n "$srv" ] && kill $srv 2>/dev/null; rm -rf "$tmp"' EXIT
python3 - "$tmp/prompts.jsonl" "$n" <<'PY'
import json, sys
names = ["Tom", "Lily", "Ben", "Sue", "Max", "Amy", "Sam", "Mia"]
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write(json.dumps({"id": f"p{i}", "prompt": f"Once upon a time, {names[i % 8]} had {i} toys."}) + "\n")
PY
common=(--max-tokens 64 --temperature 0.8 --seed 1)
# "tokens seconds" of one output file and its timing
record() { python3 -c 'import json,sys; print(sum(json.loads(l)["usage"]["completion_tokens"] for l in open(sys.argv[1])), float(sys.argv[3]) - float(sys.argv[2]))' "$@"; }
now() { date +%s.%N; }

"$bin" serve --threads 2 --max-batch 64 --model "$model" --port 0 >"$tmp/serve.out" 2>"$tmp/serve.err" &
srv=$!
for _ in $(seq 100); do grep -q listening "$tmp/serve.out" 2>/dev/null && break; sleep 0.1; done
url=$(awk '{print $3}' "$tmp/serve.out")
name=$(awk '{print $5}' "$tmp/serve.out")
[ -n "$url" ] || { echo "net: serve did not start: $(cat "$tmp/serve.err")"; exit 1; }

for r in $(seq "$rounds"); do
    t0=$(now)
    /usr/bin/time -f "%M" -o "$tmp/gen.mem" "$bin" generate --quiet --threads 2 --batch 64 --model "$model" \
        --in "$tmp/prompts.jsonl" --out "$tmp/gen$r.jsonl" "${common[@]}"
    record "$tmp/gen$r.jsonl" "$t0" "$(now)" >>"$tmp/gen.times"
    t0=$(now)
    "$bin" generate --quiet --concurrency 64 --model "$url#$name" --in "$tmp/prompts.jsonl" \
        --out "$tmp/srv$r.jsonl" "${common[@]}"
    record "$tmp/srv$r.jsonl" "$t0" "$(now)" >>"$tmp/srv.times"
done
srv_hwm=$(awk '/VmHWM/ {print $2}' "/proc/$srv/status")
kill -TERM "$srv"
wait "$srv" || true
srv=
grep -h "serve:.*requests" "$tmp/serve.err" | sed "s/^scalequest: serve: /net: server: /" || true

python3 - "$n" "$tmp/gen.times" "$tmp/srv.times" "$(cat "$tmp/gen.mem")" "$srv_hwm" <<'PY'
import sys
n, gfile, sfile, gm, sm = sys.argv[1:]
def rates(path):
    return [int(t) / float(s) for t, s in (l.split() for l in open(path))]
g, s = rates(gfile), rates(sfile)
print(f"net: {n} prompts x {len(g)} rounds, 64 tokens max, temperature 0.8, stories260K, 2 threads")
print(f"net: in-process generate tokens/s per round: {', '.join(f'{x:.0f}' for x in g)}; "
      f"peak RSS {int(gm) / 1024:.1f} MiB")
print(f"net: serve + 64 clients tokens/s per round:  {', '.join(f'{x:.0f}' for x in s)}; "
      f"server peak RSS {int(sm) / 1024:.1f} MiB")
print(f"net: served / in-process tokens/s (best of each) = {max(s) / max(g):.2f} (goal >= 0.9)")
PY
