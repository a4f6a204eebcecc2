#!/usr/bin/env bash
# Where the GPU time goes: per-kernel device time of one forward pass (a 2-layer model with
# Mistral-7B's widths, 32 inputs of 300 tokens, bf16), dpa-explorer beside transformers, read with
# Nsight Compute (ncu). Same set-up as gpu_bench.sh; writes $OUT/kernels-*.csv and a summary.
#
#   scripts/gpu_profile.sh [path/to/bench_model[.xz]] [layers] [batch]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/cuda/release/examples/bench_model}
LAYERS=${2:-2}
BATCH=${3:-32}
OUT=${OUT:-.}
PY=${PYTHON:-python3}
# shellcheck source=scripts/gpu_env.sh
source scripts/gpu_env.sh
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -n 1 || true)
uname -r
DIR=/dev/shm/dpa-profile
# The side-by-side numbers at this size (and the model files, made once).
"$PY" scripts/bench_vs_pytorch.py --device cuda --layers "$LAYERS" --tokens 300 --batch 1,"$BATCH" \
    --runs 10 --rounds 1 --modes bf16 --torch-modes bf16 --bin "$BIN" --dir "$DIR" \
    --min-free-gb 0 --no-write 2>&1 | grep -v '^\$'
MODEL=$(ls -d "$DIR"/mistral-"$LAYERS"l-*)
INPUTS=$(ls "$MODEL"/inputs-300.json)
[ -n "$NCU" ] || { echo "no ncu"; exit 0; }
# One warm-up and one timed pass each: every kernel is listed twice.
prof() {
    local name=$1
    shift
    timeout 240 "$NCU" --clock-control none --target-processes all \
        --metrics gpu__time_duration.sum --csv --page raw "$@" >"$OUT/kernels-$name.csv" \
        2>"$OUT/ncu-$name.err" || echo "ncu $name failed: $(tail -n 3 "$OUT/ncu-$name.err")"
}
prof dpa "$BIN" --model "$MODEL" --dtype bf16 --device cuda --inputs "$INPUTS" --runs 1 \
    --batch "$BATCH"
[ "${PROFILE_TORCH:-1}" = 0 ] || prof torch "$PY" scripts/bench_vs_pytorch.py torch-worker --model "$MODEL" --dtype bf16 \
    --device cuda --threads 2 --inputs "$INPUTS" --runs 1 --batch "$BATCH"
"$PY" - "$OUT" <<'PYEOF'
import csv, collections, io, sys
from pathlib import Path
out = Path(sys.argv[1])
for name in ("dpa", "torch"):
    p = out / f"kernels-{name}.csv"
    if not p.exists():
        continue
    lines = [l for l in p.read_text().splitlines() if l.startswith('"')]
    rows = list(csv.DictReader(io.StringIO("\n".join(lines))))
    for r in rows:
        r["t"] = r.get("gpu__time_duration.sum", "").replace(",", "")
    rows = [r for r in rows if r["t"].replace(".", "").isdigit()]
    by = collections.defaultdict(lambda: [0, 0.0])
    for r in rows:
        k = r["Kernel Name"][:90]
        by[k][0] += 1
        by[k][1] += float(r["t"])
    total = sum(v[1] for v in by.values())
    # Two passes were recorded: halve for one pass; ncu reports ns (or us: see the unit row).
    print(f"\n== {name}: {len(rows)} kernels, {total / 2 / 1e6:.2f} ms per pass (if ns)")
    for k, (n, t) in sorted(by.items(), key=lambda kv: -kv[1][1])[:25]:
        print(f"{t / 2 / 1e6:9.3f} ms {n // 2:5d}x  {k}")
PYEOF
