#!/usr/bin/env bash
# The remote-backend tests against real vLLM servers: makes (or reuses) the vLLM venv outside
# the clone, starts two servers on 127.0.0.1 serving tests/fixtures/vllm-gqa-window (the second
# with a softmax as its default activation, which the client must switch off), runs
# `cargo test --test vllm -- --ignored`, and stops the servers whatever happens.
#
# Environment: DPA_VLLM_VENV (see env.sh), DPA_VLLM_PORTS (two ports, default "18123 18124").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

scripts/vllm/env.sh >/dev/null
read -r port_a port_b <<<"${DPA_VLLM_PORTS:-18123 18124}"
fixture=tests/fixtures/vllm-gqa-window
logs=$(mktemp -d "${TMPDIR:-/tmp}/dpa-vllm-test.XXXXXX")
pids=()
stop() {
    for pid in "${pids[@]}"; do
        scripts/vllm/stop.sh "$pid" >/dev/null 2>&1 || true
    done
}
trap stop EXIT

# Build while the servers start: both compete for the cores, but the build is mostly done.
cargo build --release --tests --bins
start() {
    DPA_VLLM_PARENT_PID=$$ DPA_VLLM_LOG="$logs/$1.log" scripts/vllm/serve.sh "$fixture" "$@" \
        >"$logs/$1.pid"
}
start "$port_a" &
a=$!
start "$port_b" --hf-overrides '{"problem_type": "single_label_classification"}' \
    --pooler-config '{"use_activation": true}' &
b=$!
wait "$a" || { cat "$logs/$port_a.log" >&2; exit 1; }
wait "$b" || { cat "$logs/$port_b.log" >&2; exit 1; }
pid_a=$(tail -n1 "$logs/$port_a.pid")
pid_b=$(tail -n1 "$logs/$port_b.pid")
pids=("$pid_a" "$pid_b")

DPA_VLLM_SERVERS="http://127.0.0.1:$port_a,http://127.0.0.1:$port_b" DPA_VLLM_KILL="$pid_b" \
    cargo test --release --test vllm -- --ignored --test-threads=1
