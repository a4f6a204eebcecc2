#!/usr/bin/env bash
# GPU side-by-side benchmark: a 32-layer random model with Mistral-7B's widths in bf16,
# latency of one 300-token input and throughput of 32 such inputs in one batch,
# dpa-explorer (a bench_model binary built with `--features cuda`) against transformers on
# the same card, files and inputs. Needs PyTorch + transformers and the CUDA 13 runtime
# libraries (cuBLAS, cuRAND, NVRTC: those of a CUDA toolkit or of PyTorch's wheels).
#
#   scripts/gpu_bench.sh [path/to/bench_model]      # writes $OUT/BENCHMARKS.gpu.md (OUT=. default)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/cuda/release/examples/bench_model}
shift || true
OUT=${OUT:-.}
PY=${PYTHON:-python3}
# The binary links the CUDA libraries dynamically: find them where PyTorch's wheels keep them.
libs=$("$PY" - <<'PYEOF'
import glob, os, site
dirs = set()
for sp in site.getsitepackages() + [site.getusersitepackages()]:
    for lib in glob.glob(os.path.join(sp, "nvidia", "**", "lib*.so*"), recursive=True):
        dirs.add(os.path.dirname(lib))
print(":".join(sorted(dirs)))
PYEOF
)
export LD_LIBRARY_PATH="${libs}:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
chmod +x "$BIN"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
missing=$(ldd "$BIN" | grep "not found" || true)
if [ -n "$missing" ]; then echo "missing libraries: $missing"; exit 1; fi
"$PY" scripts/bench_vs_pytorch.py --device cuda --layers 32 --tokens 300 --batch 1,32 \
    --runs 5 --rounds 1 --modes bf16 --torch-modes bf16 --bin "$BIN" --dir /tmp/dpa-bench \
    --out "$OUT/BENCHMARKS.gpu.md" "$@"
cp /tmp/dpa-bench/last-run-cuda.json "$OUT/" 2>/dev/null || true
