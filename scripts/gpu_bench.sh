#!/usr/bin/env bash
# GPU side-by-side benchmark: a 32-layer random model with Mistral-7B's widths in bf16,
# latency of one 300-token input and throughput of 32 such inputs in one batch,
# dpa-explorer (a bench_model binary built with `--features cuda`, see build_cuda_bench.sh)
# against transformers on the same card, files and inputs. Needs PyTorch + transformers and the
# CUDA 13 runtime libraries (cuBLAS, cuRAND, NVRTC: those of a CUDA toolkit or of PyTorch's
# wheels); no Rust toolchain and no network.
#
#   scripts/gpu_bench.sh [path/to/bench_model[.xz]]  # writes $OUT/BENCHMARKS.gpu.md (OUT=. default)
#   CHECK_ONLY=1 scripts/gpu_bench.sh BIN              # only the correctness checks on the card
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/cuda/release/examples/bench_model}
shift || true
OUT=${OUT:-.}
PY=${PYTHON:-python3}
# shellcheck source=scripts/gpu_env.sh
source scripts/gpu_env.sh
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
missing=$(ldd "$BIN" | grep "not found" || true)
if [ -n "$missing" ]; then echo "missing libraries: $missing"; exit 1; fi
# The 14.5 GB model in memory when there is room (writing it to disk is most of the run).
DIR=${BENCH_DIR:-/tmp/dpa-bench}
if [ -z "${BENCH_DIR:-}" ] && [ "$(df -k --output=avail /dev/shm 2>/dev/null | tail -n 1)" -gt 20000000 ] 2>/dev/null; then
    DIR=/dev/shm/dpa-bench
fi
status=0
if [ "${CHECK_ONLY:-0}" != 1 ]; then
    "$PY" scripts/bench_vs_pytorch.py --device cuda --layers 32 --tokens 300 --batch 1,32 \
        --runs 10 --rounds 1 --modes bf16 --torch-modes bf16 --bin "$BIN" --dir "$DIR" \
        --min-free-gb 0 --out "$OUT/BENCHMARKS.gpu.md" "$@" || status=$?
    cp "$DIR"/last-run-cuda.json "$DIR"/partial-cuda.jsonl "$OUT/" 2>/dev/null || true
fi
# Correctness on the card, in bf16: fused against candle's generic kernels, a ragged batch against
# single inputs, a cached prefix plus the rest against a full pass; on the benchmark model and on
# the test fixtures (grouped-query attention, a sliding window shorter than the input).
echo "checks (largest differences of scores):"
for m in "$DIR"/mistral-32l-* tests/fixtures/tiny-gqa-window tests/fixtures/tiny-mha; do
    [ -d "$m" ] || continue
    echo "$m: $("$BIN" --model "$m" --dtype bf16 --device cuda --tokens 40,151,300 --check 2>&1 | tail -n 1)"
done | tee "$OUT/checks.txt" || status=$?
exit $status
