# Sourced by gpu_bench.sh and gpu_profile.sh on the GPU host: sets BIN to a runnable bench_model
# (unpacking a .xz, carried compressed since the binary alone is most of a 64 MiB allowance) and
# puts the CUDA libraries of PyTorch's wheels on LD_LIBRARY_PATH (the binary links them
# dynamically). Expects BIN and PY.
export PYTHONUNBUFFERED=1
if [[ $BIN == *.xz ]]; then
    "$PY" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
        "$BIN" /tmp/bench_model
    BIN=/tmp/bench_model
fi
chmod +x "$BIN"
libs=$("$PY" - <<'PYEOF'
import glob, os, site
dirs = set()
for sp in site.getsitepackages() + [site.getusersitepackages()]:
    for lib in glob.glob(os.path.join(sp, "nvidia", "**", "lib*.so*"), recursive=True):
        dirs.add(os.path.dirname(lib))
print(":".join(sorted(dirs)))
PYEOF
)
export LD_LIBRARY_PATH="${libs}:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}:/usr/local/nvidia/lib64"
