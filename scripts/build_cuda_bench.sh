#!/usr/bin/env bash
# Builds the CUDA benchmark binary (examples/bench_model, `--features cuda`) on a machine with
# neither a GPU nor a CUDA toolkit, for scripts/gpu_bench.sh on an offline GPU host that has
# no Rust toolchain.
#
# nvcc and the CUDA 13 libraries come from PyPI wheels. The binary is linked against them (and
# against a stub libcuda with the driver's soname) but loads the real driver and libraries at
# run time; libstdc++ is linked statically so that the GPU host's copy does not matter.
#
#   scripts/build_cuda_bench.sh        # writes target/gpu/bench_model (about 50 MiB)
#
# CUDA_COMPUTE_CAP (default 90: H100/H200) picks the GPU architecture the kernels are built for.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WORK=$(mkdir -p target/cuda-toolkit && realpath target/cuda-toolkit)
TK=$WORK/wheels
LINK=$WORK/link

if [ ! -x "$TK/nvidia/cu13/bin/nvcc" ]; then
    "$PY" -m pip install --quiet --target "$TK" \
        nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88 \
        nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 \
        "nvidia-cublas>=13,<14" "nvidia-cuda-nvrtc>=13,<14" "nvidia-curand>=10.4,<11"
fi
CUDA=$TK/nvidia/cu13

# Unversioned names for the linker, a libcuda stub with the driver's soname, static libstdc++.
mkdir -p "$LINK"
for lib in cublas cublasLt cudart nvrtc curand; do
    so=$(ls "$CUDA/lib/lib$lib.so."* | sort | head -n 1)
    ln -sf "$so" "$LINK/lib$lib.so"
done
echo 'void dpa_explorer_cuda_stub(void) {}' >"$LINK/stub.c"
cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$LINK/libcuda.so" "$LINK/stub.c"
ln -sf "$(g++ -print-file-name=libstdc++.a)" "$LINK/libstdc++.a"

export PATH=$CUDA/bin:$PATH CUDA_HOME=$CUDA CUDA_PATH=$CUDA
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
export RUSTFLAGS="-L native=$LINK -C link-arg=-Wl,--no-as-needed -C link-arg=-Wl,--unresolved-symbols=ignore-in-object-files"
CARGO_TARGET_DIR=target/cuda cargo rustc --release --features cuda --example bench_model -- \
    -C link-arg=-lcuda -C link-arg=-lnvrtc -C link-arg=-lcublasLt -C link-arg=-lcublas \
    -C link-arg=-lcurand
mkdir -p target/gpu
strip -o target/gpu/bench_model target/cuda/release/examples/bench_model
ls -la target/gpu/bench_model
