#!/usr/bin/env bash
# Stop a server started by serve.sh:  scripts/vllm/stop.sh PID  (the PID serve.sh printed).
# Signals the whole process group (vLLM forks an engine process), then kills what is left
# after 30 s.  A group that is already gone is not an error.
set -u

pid=${1:?usage: stop.sh PID}
[[ $pid =~ ^[0-9]+$ ]] || { echo "not a PID: $pid" >&2; exit 2; }

members() { pgrep -g "$pid"; }
# Only a group that runs supervise.sh or vllm is ours to kill: the PID may have been reused.
ours=0
for p in $(members); do
    if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qE 'supervise\.sh|vllm'; then
        ours=1
        break
    fi
done
if [[ $ours == 0 ]]; then
    exit 0
fi

kill -TERM -- "-$pid" 2>/dev/null
for _ in $(seq 150); do
    [[ -z $(members) ]] && exit 0
    sleep 0.2
done
echo "vLLM group $pid still running after 30 s; killing it" >&2
kill -KILL -- "-$pid" 2>/dev/null
sleep 0.5
exit 0
