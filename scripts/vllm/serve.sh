#!/usr/bin/env bash
# Start a vLLM server (CPU build, from scripts/vllm/env.sh's venv) for a reward-model directory,
# bound to 127.0.0.1 only, and wait until it is healthy.
#
#   scripts/vllm/serve.sh DIR PORT [extra vllm serve args...]
#
# Last stdout line: the PID of the server's supervisor, which leads the server's process group;
# give it to scripts/vllm/stop.sh (or `kill -TERM -- -PID`).  The server also stops by itself
# once the parent process is gone: DPA_VLLM_PARENT_PID if set (a test harness passes its own
# PID), else the process that ran this script.
#
# Environment: DPA_VLLM_VENV (as in env.sh), DPA_VLLM_PARENT_PID, DPA_VLLM_LOG (log file; default
# /tmp/dpa-vllm-PORT.log, kept after the server stops), DPA_VLLM_START_TIMEOUT (seconds, 240).
# Exit status: 0 ready; 1 the server failed or timed out (log tail on stderr); 2 usage or no venv;
# 3 the port is already taken.
set -euo pipefail

if [[ $# -lt 2 ]]; then
    echo "usage: $0 DIR PORT [extra vllm serve args...]" >&2
    exit 2
fi
dir=$1 port=$2
shift 2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv=${DPA_VLLM_VENV:-$HOME/.cache/dpa-explorer/vllm-venv}
parent=${DPA_VLLM_PARENT_PID:-$PPID}
timeout=${DPA_VLLM_START_TIMEOUT:-240}
log=${DPA_VLLM_LOG:-${TMPDIR:-/tmp}/dpa-vllm-$port.log}

if [[ ! -f $venv/.dpa-vllm-complete ]]; then
    echo "no vLLM venv at $venv: run scripts/vllm/env.sh" >&2
    exit 2
fi
if [[ ! -f $dir/config.json ]]; then
    echo "not a model directory: $dir" >&2
    exit 2
fi
parent_start=$(stat=$(cat "/proc/$parent/stat") && stat=${stat##*) } && set -- $stat && echo "${20}") || {
    echo "parent process $parent does not exist" >&2
    exit 2
}
# Another server on the port would answer /health in this one's place.
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is already in use" >&2
    exit 3
fi

# vLLM's compile cache and temporary files stay out of $HOME and are removed with the server.
workdir=$(mktemp -d "${TMPDIR:-/tmp}/dpa-vllm.XXXXXX")
mkdir -p "$workdir/cache" "$workdir/tmp"
: >"$log"

# vLLM gets SIGTERM if its supervisor is ever killed outright (PR_SET_PDEATHSIG survives exec).
pdeathsig='import ctypes, os, signal, sys
ctypes.CDLL(None).prctl(1, signal.SIGTERM)
os.execv(sys.argv[1], sys.argv[1:])'

# setsid: a new process group, so that stop.sh can end vLLM and the engine process it forks
# together.  Its output goes to the log so that this script's stdout closes when it exits.
env VLLM_CPU_KVCACHE_SPACE=1 VLLM_CACHE_ROOT="$workdir/cache" TMPDIR="$workdir/tmp" \
    HF_HUB_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 \
    setsid "$here/supervise.sh" "$parent" "$parent_start" "$workdir" \
    "$venv/bin/python" -c "$pdeathsig" "$venv/bin/vllm" serve "$dir" --host 127.0.0.1 --port "$port" \
    --runner pooling --convert classify --dtype float32 --max-model-len 512 --enforce-eager "$@" \
    </dev/null >>"$log" 2>&1 &
pid=$!
# A caller that gives up on this script while the server starts must not leave the server behind.
trap '"$here/stop.sh" "$pid" >&2; exit 1' TERM INT HUP
echo "vLLM starting (log: $log)" >&2

deadline=$((SECONDS + timeout))
until curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$port/health"; do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "vLLM exited before it was ready; end of $log:" >&2
        tail -n 40 "$log" >&2
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        echo "vLLM not ready after ${timeout}s; end of $log:" >&2
        tail -n 40 "$log" >&2
        "$here/stop.sh" "$pid" >&2 || true
        exit 1
    fi
    sleep 1
done
echo "$pid"
