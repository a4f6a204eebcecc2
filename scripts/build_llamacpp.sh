#!/usr/bin/env bash
# Builds llama.cpp's `llama-bench` and `llama-quantize` from the source that the
# `llama-cpp-python` sdist vendors (vendor/llama.cpp), for the side-by-side benchmark
# (scripts/bench_vs_pytorch.py --llamacpp). Release, GGML_NATIVE=ON (this CPU's instruction
# sets), CPU backend only, static libraries, nothing else built.
#
#   scripts/build_llamacpp.sh            # the newest llama-cpp-python on PyPI
#   scripts/build_llamacpp.sh 0.3.36     # a given version
#
# Everything lives outside the repository, under ${DPA_LLAMACPP_DIR:-~/.cache/dpa-explorer/llama.cpp}:
# dl/ (the sdist), <version>/src (its vendored llama.cpp), <version>/build. A finished build is
# reused: the script then only prints its directory. The last line printed is always the
# directory holding the binaries and convert_hf_to_gguf.py, as `LLAMACPP=<dir>`.
#
# Needs python3 with pip (PYTHON, default: python3), cmake >= 3.14 (pip's `cmake` will do) and a
# C++17 compiler. JOBS (default: the number of cores) sets the build's parallelism.
set -euo pipefail

PYTHON=${PYTHON:-python3}
BASE=${DPA_LLAMACPP_DIR:-$HOME/.cache/dpa-explorer/llama.cpp}
JOBS=${JOBS:-$(nproc)}
mkdir -p "$BASE/dl"

version=${1:-}
if [[ -z "$version" ]]; then
    # A finished build of any version is good enough when none is asked for.
    for d in $(ls -d "$BASE"/[0-9]* 2>/dev/null | sort -V -r); do
        if [[ -x "$d/build/bin/llama-bench" && -x "$d/build/bin/llama-quantize" ]]; then
            echo "reusing $d/build" >&2
            echo "LLAMACPP=$d"
            exit 0
        fi
    done
fi

CMAKE=$(command -v cmake || true)
if [[ -z "$CMAKE" ]]; then
    "$PYTHON" -m pip install --quiet cmake >&2
    CMAKE=$("$PYTHON" -c 'import cmake, os; print(os.path.join(cmake.CMAKE_BIN_DIR, "cmake"))')
fi
# pip reads the sdist's metadata through its build backend, which wants CMake on PATH.
export PATH="$(dirname "$CMAKE"):$PATH"

# `|| true`: with no sdist yet, ls fails, and pipefail would end the script silently.
sdist() { { ls "$BASE"/dl/llama_cpp_python-"${1:-}"*.tar.gz 2>/dev/null || true; } | sort -V | tail -1; }
tarball=$(sdist "$version")
if [[ -z "$tarball" ]]; then
    # --no-build-isolation: pip would otherwise build the sdist's build dependencies (cmake,
    # ninja) from source just to read its metadata; scikit-build-core must then be installed.
    "$PYTHON" -m pip install --quiet scikit-build-core >&2
    spec=llama-cpp-python${version:+==$version}
    (cd "$BASE/dl" && "$PYTHON" -m pip download --no-binary :all: --no-deps \
        --no-build-isolation "$spec" >&2)
    tarball=$(sdist "$version")
fi
[[ -n "$tarball" ]] || { echo "no llama-cpp-python sdist in $BASE/dl" >&2; exit 1; }
version=$(basename "$tarball" .tar.gz)
version=${version#llama_cpp_python-}
dir=$BASE/$version
if [[ -x "$dir/build/bin/llama-bench" && -x "$dir/build/bin/llama-quantize" ]]; then
    echo "reusing $dir/build" >&2
    echo "LLAMACPP=$dir"
    exit 0
fi

if [[ ! -f "$dir/src/CMakeLists.txt" ]]; then
    rm -rf "$dir/src" "$dir/unpack"
    mkdir -p "$dir/unpack"
    tar -xzf "$tarball" -C "$dir/unpack" "llama_cpp_python-$version/vendor/llama.cpp"
    mv "$dir/unpack/llama_cpp_python-$version/vendor/llama.cpp" "$dir/src"
    rm -rf "$dir/unpack"
fi

"$CMAKE" -S "$dir/src" -B "$dir/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF >&2
"$CMAKE" --build "$dir/build" --config Release -j "$JOBS" --target llama-bench llama-quantize >&2
echo "built $dir/build/bin" >&2
echo "LLAMACPP=$dir"
