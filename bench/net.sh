#!/usr/bin/env bash
# bench/net.sh: aggregate tokens/s of `scalequest serve` under 64 concurrent clients, as a
# fraction of in-process `scalequest generate` on the same prompts with the same settings,
# both measured here in the same run (goal: at least 0.9), plus each side's peak memory.
# The clients are `scalequest complete --concurrency 64` (C, libcurl): 64 requests in flight.
#   bench/net.sh [N_PROMPTS] (default 256)
set -eu
cd "$(dirname "$0")/.."
bin=build/rel/scalequest
model=../shared/assets/models/stories260K.gguf
n=${1:-256}
[ -x "$bin" ] || { echo "net: $bin not built (make)"; exit 1; }
[ -f "$model" ] || { echo "net: SKIP: $model not found"; exit 0; }
tmp=$(mktemp -d)
trap 'kill $srv 2>/dev/null || true; rm -rf "$tmp"' EXIT
srv=
python3 - "$tmp/prompts.jsonl" "$n" <<'PY'
import json, sys
names = ["Tom", "Lily", "Ben", "Sue", "Max", "Amy", "Sam", "Mia"]
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write(json.dumps({"id": f"p{i}", "prompt": f"Once upon a time, {names[i % 8]} had {i} toys."}) + "\n")
PY
common=(--max-tokens 64 --temperature 0.8 --seed 1)
tokens() { python3 -c 'import json,sys; print(sum(json.loads(l)["usage"]["completion_tokens"] for l in open(sys.argv[1])))' "$1"; }
now() { date +%s.%N; }

# in process
t0=$(now)
/usr/bin/time -f "%M" -o "$tmp/gen.mem" "$bin" generate --quiet --threads 2 --batch 64 --model "$model" \
    --in "$tmp/prompts.jsonl" --out "$tmp/gen.jsonl" "${common[@]}"
t1=$(now)
gen_tok=$(tokens "$tmp/gen.jsonl")

# served
"$bin" serve --threads 2 --max-batch 64 --model "$model" --port 0 >"$tmp/serve.out" 2>"$tmp/serve.err" &
srv=$!
for _ in $(seq 100); do grep -q listening "$tmp/serve.out" 2>/dev/null && break; sleep 0.1; done
url=$(awk '{print $3}' "$tmp/serve.out")
name=$(awk '{print $5}' "$tmp/serve.out")
[ -n "$url" ] || { echo "net: serve did not start: $(cat "$tmp/serve.err")"; exit 1; }
t2=$(now)
"$bin" complete --quiet --concurrency 64 --model "$url#$name" --in "$tmp/prompts.jsonl" --out "$tmp/srv.jsonl" \
    "${common[@]}"
t3=$(now)
srv_hwm=$(awk '/VmHWM/ {print $2}' "/proc/$srv/status")
kill -TERM "$srv"
wait "$srv" || true
srv=
srv_tok=$(tokens "$tmp/srv.jsonl")
grep -h "serve:" "$tmp/serve.err" | sed "s/^scalequest: serve: /net: server: /" || true

python3 - "$n" "$gen_tok" "$t0" "$t1" "$srv_tok" "$t2" "$t3" "$(cat "$tmp/gen.mem")" "$srv_hwm" <<'PY'
import sys
n, gt, t0, t1, st, t2, t3, gm, sm = sys.argv[1:]
g = int(gt) / (float(t1) - float(t0))
s = int(st) / (float(t3) - float(t2))
print(f"net: {n} prompts, 64 tokens max, stories260K, 2 threads")
print(f"net: in-process generate: {int(gt)} tokens, {g:.0f} tokens/s, peak RSS {int(gm) / 1024:.1f} MiB")
print(f"net: serve + 64 clients:  {int(st)} tokens, {s:.0f} tokens/s, {int(n) / (float(t3) - float(t2)):.1f} "
      f"requests/s, server peak RSS {int(sm) / 1024:.1f} MiB")
print(f"net: served / in-process tokens/s = {s / g:.2f} (goal >= 0.9)")
PY
