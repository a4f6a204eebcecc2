#!/usr/bin/env bash
# Builds the CUDA benchmark binary (examples/bench_model, `--features cuda`) on a machine with
# neither a GPU nor a CUDA toolkit, for scripts/gpu_bench.sh on an offline GPU host that has
# no Rust toolchain.
#
# nvcc and the CUDA 13 libraries come from PyPI wheels. The binary is linked against them (and
# against a stub libcuda with the driver's soname) but loads the real driver and libraries at
# run time; libstdc++ is linked statically so that the GPU host's copy does not matter.
#
#   scripts/build_cuda_bench.sh        # target/gpu/bench_model (about 52 MiB) and .xz (about 7 MiB)
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

# Unversioned names for the linker, and static libstdc++.
mkdir -p "$LINK"
for lib in cublas cublasLt cudart nvrtc curand; do
    so=$(ls "$CUDA/lib/lib$lib.so."* | sort | head -n 1)
    ln -sf "$so" "$LINK/lib$lib.so"
done
ln -sf "$(g++ -print-file-name=libstdc++.a)" "$LINK/libstdc++.a"

export PATH=$CUDA/bin:$PATH CUDA_HOME=$CUDA CUDA_PATH=$CUDA
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
export RUSTFLAGS="-L native=$LINK"
build() {
    CARGO_TARGET_DIR=target/cuda cargo rustc --release --features cuda --example bench_model -- "$@"
}
BIN=target/cuda/release/examples/bench_model

# The driver library (libcuda.so.1) comes with the GPU's driver, not with the toolkit. A stand-in
# with its soname is linked instead; the real one is loaded at run time. Pass 1 links with the
# driver's symbols left unresolved to learn which ones the binary calls; pass 2 links against a
# stand-in that defines exactly those (each answers CUDA_ERROR_NO_DEVICE), so nothing else may stay
# unresolved and the binary records that it needs libcuda.so.1.
echo 'void dpa_explorer_cuda_stub(void) {}' >"$LINK/stub.c"
cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$LINK/libcuda.so" "$LINK/stub.c"
build -C link-arg=-Wl,--unresolved-symbols=ignore-in-object-files
nm -D --undefined-only "$BIN" | awk '$2 ~ /^cu[A-Z]/ { sub(/@.*/, "", $2); print $2 }' | sort -u \
    >"$LINK/driver-symbols.txt"
test -s "$LINK/driver-symbols.txt"
sed 's/.*/int &(void) { return 100; }/' "$LINK/driver-symbols.txt" >"$LINK/stub.c"
cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$LINK/libcuda.so" "$LINK/stub.c"
build -C link-arg=-lcuda
ldd "$BIN" | grep -q 'libcuda.so.1' || { echo "the binary does not record libcuda.so.1"; exit 1; }

mkdir -p target/gpu
strip -o target/gpu/bench_model "$BIN"
# Compressed, it leaves most of a 64 MiB transfer allowance for the rest.
xz -T0 -6 -k -f target/gpu/bench_model
ls -la target/gpu/
