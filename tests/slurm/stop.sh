#!/usr/bin/env bash
# Stop the daemons tests/slurm/start.sh started, by the PIDs it recorded (nothing else).
#
# Usage: tests/slurm/stop.sh STATE_DIR
set -uo pipefail

state_dir=${1:?usage: stop.sh STATE_DIR}
state_dir=$(cd "$state_dir" && pwd) || exit 1
status=0
for name in slurmd slurmctld munged; do
    pid_file="$state_dir/run/$name.pid"
    [[ -f "$pid_file" ]] || continue
    pid=$(cat "$pid_file")
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -9 "$pid" || status=1
        fi
    fi
    rm -f "$pid_file"
done
# The system configuration link start.sh made, if it still points into this cluster.
link_record="$state_dir/run/system-conf-link"
if [[ -f "$link_record" ]]; then
    link=$(cat "$link_record")
    if [[ -L "$link" && "$(readlink "$link")" == "$state_dir/slurm.conf" ]]; then
        rm -f "$link"
    fi
    rm -f "$link_record"
fi
exit $status
