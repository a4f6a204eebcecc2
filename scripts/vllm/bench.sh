#!/usr/bin/env bash
# `score --server` against vLLM's own throughput for the same token ids, side by side in one
# run on one CPU vLLM server serving tests/fixtures/vllm-gqa-window, rounds interleaved; then
# the client's memory on a large input (bounded: results stream out a window at a time).
#
# The server runs on CPU 0 and the clients on CPU 1 (when there are two), so that what is
# measured is whether a client keeps the server busy, not how much of the server's CPU the
# client takes: on a real deployment the server has its own machine and GPUs. Set
# DPA_VLLM_BENCH_PIN=0 to run unpinned.
#
#   scripts/vllm/bench.sh [PAIRS (default 4000)] [ROUNDS (3)] [BIG_LINES (0: skip the memory run)]
#
# Prints markdown rows for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
pairs=${1:-4000} rounds=${2:-3} big=${3:-0}
venv=$(scripts/vllm/env.sh | tail -n1)
port=${DPA_VLLM_PORT:-18131}
fixture=tests/fixtures/vllm-gqa-window
work=$(mktemp -d "${TMPDIR:-/tmp}/dpa-vllm-bench.XXXXXX")
cargo build --release --tests --bins >&2
bin=target/release/dpa-explorer
# No prefix caching: every run does the full work (repeated rounds would otherwise be served
# from the cache filled by the run before).
server_pin=() client_pin=()
if [[ ${DPA_VLLM_BENCH_PIN:-1} == 1 && $(nproc) -ge 2 ]]; then
    server_pin=(taskset -c 0) client_pin=(taskset -c 1)
    # vLLM binds its OpenMP threads itself; keep them on the server's CPU.
    export VLLM_CPU_OMP_THREADS_BIND=0
fi
pid=$(DPA_VLLM_PARENT_PID=$$ DPA_VLLM_LOG="$work/server.log" "${server_pin[@]}" scripts/vllm/serve.sh "$fixture" "$port" \
    --no-enable-prefix-caching | tail -n1)
trap 'scripts/vllm/stop.sh "$pid" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
url=http://127.0.0.1:$port

# Realistic lengths: prompts of 10-40 words, responses of 20-200, ~60-330 tokens with the template.
python3 - "$work" "$pairs" "$big" <<'PY'
import json, random, sys
work, n, big = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
words = "the sea salt river rain cloud light wave stone sand wind tide shore cliff deep blue".split()
r = random.Random(7)
def line(i):
    p = " ".join(r.choice(words) for _ in range(r.randint(10, 40))) + "?"
    s = " ".join(r.choice(words) for _ in range(r.randint(20, 200))) + "."
    return json.dumps({"id": i, "prompt": p, "response": s}) + "\n"
with open(f"{work}/in.jsonl", "w") as f:
    f.writelines(line(i) for i in range(n))
if big:
    with open(f"{work}/big.jsonl", "w") as f:
        for i in range(big):
            f.write(json.dumps({"id": i, "prompt": "Why is the sea salty?", "response": f"Rivers carry salt {i}."}) + "\n")
PY

name=$(curl -s "$url/v1/models" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])')
ours() {
    /usr/bin/time -f '%e %U %S %M' -o "$work/time" \
        "${client_pin[@]}" "$bin" score --model "$fixture" --server "$url" --max-tokens 512 --batch-size 8 \
        --input "$1" --output "$work/out.jsonl" 2>/dev/null
    cat "$work/time"
}
direct() {
    "${client_pin[@]}" "$venv/bin/python" scripts/vllm/direct_client.py --server "$url" --model "$name" \
        --tokenizer "$fixture/tokenizer.json" --input "$work/in.jsonl" --batch 8 --in-flight "$1"
}
ours "$work/in.jsonl" >/dev/null   # warm-up
for r in $(seq "$rounds"); do
    echo "round $r" >&2
    echo "direct4 $(direct 4 | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')" >>"$work/results"
    read -r wall user sys rss < <(ours "$work/in.jsonl")
    echo "ours $wall $user $sys $rss" >>"$work/results"
    echo "direct16 $(direct 16 | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')" >>"$work/results"
done
python3 - "$work/results" "$pairs" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    k, *v = line.split()
    rows.setdefault(k, []).append([float(x) for x in v])
n = int(sys.argv[2])
ours = rows["ours"]
wall = [r[0] for r in ours]
# Medians on both sides: rounds are interleaved, so a slow spell of the machine hits both.
best_direct = {k: statistics.median(r[0] for r in v) for k, v in rows.items() if k.startswith("direct")}
best = min(best_direct.values())
cpu = statistics.median((r[1] + r[2]) for r in ours)
print(f"| pairs | `score --server` (8 per request, `--in-flight 16`) | vLLM direct, 4 in flight | vLLM direct, 16 in flight | ours / faster direct |")
print("|---:|---:|---:|---:|---:|")
def cell(times):
    # 8 pairs per request on both sides.
    p = n / statistics.median(times)
    return f"{p:.0f} pairs/s, {p/8:.0f} req/s ({n/max(times):.0f}–{n/min(times):.0f} pairs/s)"
print(f"| {n} | {cell(wall)} | {cell([r[0] for r in rows['direct4']])} | {cell([r[0] for r in rows['direct16']])} | {best/statistics.median(wall):.2f} |")
print(f"\nclient CPU: {1000*cpu/n:.3f} s per 1,000 pairs; peak RSS {statistics.median(r[3] for r in ours)/1024:.0f} MiB")
PY
if [[ $big -gt 0 ]]; then
    read -r wall user sys rss < <(ours "$work/big.jsonl")
    echo "memory on $big lines: peak RSS $((rss / 1024)) MiB, $wall s"
fi
