#!/usr/bin/env bash
# Start a one-node SLURM (munged, slurmctld, slurmd) by hand, without systemd, for tests.
#
# Usage: tests/slurm/start.sh STATE_DIR [CPUS] [MEMORY_MB]
#
# Everything lives under STATE_DIR: configuration (slurm.conf, gres.conf), munge key and
# socket, spool and state folders, logs and the daemons' PID files. The node offers one fake
# GPU through gres (Name=gpu Type=fake File=/dev/null), so jobs can ask for `--gpus=1`.
# Accounting is off: query job states with squeue. Point clients at the cluster with
#   export SLURM_CONF=STATE_DIR/slurm.conf
# and stop it with tests/slurm/stop.sh STATE_DIR (kills exactly the PIDs recorded here).
#
# Job steps started inside a job (srun, as Snakemake's SLURM executor does) do not see
# SLURM_CONF, so they read the system default path. When no configuration exists there, a
# symbolic link to STATE_DIR/slurm.conf is put in its place (and removed by stop.sh); an
# existing configuration is never replaced.
set -euo pipefail

state_dir=${1:?usage: start.sh STATE_DIR [CPUS] [MEMORY_MB]}
cpus=${2:-$(nproc)}
memory_mb=${3:-16000}

for tool in munged slurmctld slurmd sinfo; do
    command -v "$tool" >/dev/null || { echo "start.sh: $tool is not installed" >&2; exit 3; }
done

mkdir -p "$state_dir"
state_dir=$(cd "$state_dir" && pwd)
mkdir -p "$state_dir"/{munge,spool,state,log,run}
chmod 700 "$state_dir/munge"
node=$(hostname -s)

# munge: a fresh key for this cluster only.
head -c 1024 /dev/urandom > "$state_dir/munge/munge.key"
chmod 400 "$state_dir/munge/munge.key"
munged --force \
    --key-file="$state_dir/munge/munge.key" \
    --socket="$state_dir/munge/munge.socket" \
    --pid-file="$state_dir/run/munged.pid" \
    --log-file="$state_dir/log/munged.log" \
    --seed-file="$state_dir/munge/munged.seed"

cat > "$state_dir/slurm.conf" <<CONF
ClusterName=llemtest
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$state_dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$state_dir/state
SlurmdSpoolDir=$state_dir/spool
SlurmctldPidFile=$state_dir/run/slurmctld.pid
SlurmdPidFile=$state_dir/run/slurmd.pid
SlurmctldLogFile=$state_dir/log/slurmctld.log
SlurmdLogFile=$state_dir/log/slurmd.log
SlurmctldPort=${SLURMCTLD_PORT:-6817}
SlurmdPort=${SLURMD_PORT:-6818}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
GresTypes=gpu
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=600
SchedulerParameters=sched_interval=2
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory_mb Gres=gpu:fake:1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
cat > "$state_dir/gres.conf" <<CONF
NodeName=$node Name=gpu Type=fake File=/dev/null
CONF

system_conf=${LLEM_SLURM_SYSTEM_CONF:-/etc/slurm/slurm.conf}
if [[ -L "$system_conf" && "$(readlink "$system_conf")" == */slurm.conf && \
      ! -e "$(readlink "$system_conf")" ]]; then
    rm -f "$system_conf"  # left behind by an earlier run of this script
fi
if [[ -e "$system_conf" || -L "$system_conf" ]]; then
    echo "start.sh: $system_conf exists; refusing to replace a SLURM configuration" >&2
    exit 5
fi
mkdir -p "$(dirname "$system_conf")"
ln -s "$state_dir/slurm.conf" "$system_conf"
echo "$system_conf" > "$state_dir/run/system-conf-link"

export SLURM_CONF="$state_dir/slurm.conf"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"

# Wait until the node accepts jobs.
for _ in $(seq 1 60); do
    state=$(sinfo -h -n "$node" -o '%t' 2>/dev/null || true)
    if [[ "$state" == idle* ]]; then
        echo "SLURM_CONF=$SLURM_CONF"
        exit 0
    fi
    sleep 1
done
echo "start.sh: node $node did not become idle (state: ${state:-unknown}); see $state_dir/log" >&2
exit 4
