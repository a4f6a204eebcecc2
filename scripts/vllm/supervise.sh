#!/usr/bin/env bash
# Run by serve.sh as the leader of a new session/process group:
#   supervise.sh PARENT_PID PARENT_START WORKDIR COMMAND...
# Runs COMMAND (vllm serve) and takes the whole process group down, then deletes WORKDIR, when
# COMMAND exits, when it is sent TERM/INT/HUP, or when the parent process is gone (a test run that
# crashed or was killed must not leave a 4 GB server behind).  PARENT_START is the parent's start
# time from /proc, so that a recycled PID is not mistaken for the parent.
set -u

parent=$1 parent_start=$2 workdir=$3
shift 3

start_time() { # field 22 of /proc/PID/stat; the command name before it may contain spaces
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    set -- $stat
    echo "${20}"
}

parent_alive() {
    [[ $(start_time "$parent") == "$parent_start" ]]
}

others=()
list_others() { # members of this process group but this shell
    # Into a file, not $(...): a command substitution's subshell would be a member itself.
    pgrep -g $$ >"$workdir/.members"
    local p
    others=()
    while read -r p; do
        [[ $p != "$$" ]] && others+=("$p")
    done <"$workdir/.members"
}

cleanup() {
    trap '' TERM INT HUP # the group-wide signal below reaches this shell too
    echo "supervise: stopping process group $$" >&2
    kill -TERM -- -$$ 2>/dev/null
    # vLLM forks engine and worker processes; wait for every member of the group.
    for _ in $(seq 150); do
        list_others
        ((${#others[@]} == 0)) && break
        sleep 0.2
    done
    ((${#others[@]} > 0)) && kill -KILL "${others[@]}" 2>/dev/null
    rm -rf "$workdir"
    exit 0
}
trap cleanup TERM INT HUP

"$@" </dev/null &
child=$!
while kill -0 "$child" 2>/dev/null && parent_alive; do
    sleep 1 &
    wait $! # unlike a foreground sleep, wait lets the trap run at once
done
if ! kill -0 "$child" 2>/dev/null; then
    wait "$child"
    echo "supervise: server exited with status $?" >&2
else
    echo "supervise: parent $parent is gone" >&2
fi
cleanup
