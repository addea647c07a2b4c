#!/usr/bin/env bash
# A single-node SLURM cluster on localhost, for tests of `grokpipe run --executor slurm`.
#
#   bash scripts/slurm-local.sh start    # installs if missing, starts munged, slurmctld, slurmd;
#                                        # prints the SLURM_CONF path on stdout (nothing else)
#   bash scripts/slurm-local.sh status   # exit 0 when all three daemons run and the node is up
#   bash scripts/slurm-local.sh stop     # stops the daemons by their PID files
#
# Idempotent (start on a running cluster only prints the path), bounded by timeouts, no systemd.
# Everything lives under $GROKPIPE_SLURM_DIR (default /tmp/grokpipe-slurm); nothing is exported
# globally: callers run `export SLURM_CONF=$(bash scripts/slurm-local.sh start)`.
# Environment: GROKPIPE_SLURM_DIR, GROKPIPE_SLURM_CPUS (CPUs of the node, default nproc),
# GROKPIPE_SLURM_PORT (slurmctld port, default 6817; slurmd uses the next one).
set -euo pipefail

STATE=${GROKPIPE_SLURM_DIR:-/tmp/grokpipe-slurm}
CONF=$STATE/slurm.conf
MUNGE=$STATE/munge
SOCKET=$MUNGE/munge.socket.2
CPUS=${GROKPIPE_SLURM_CPUS:-$(nproc)}
PORT=${GROKPIPE_SLURM_PORT:-6817}
ME=$(id -un)

log() { echo "slurm-local: $*" >&2; }
die() { log "$*"; exit 1; }

# Whether the process in PID file $1 is alive.
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Waits up to $1 seconds for command "${@:2}" to succeed.
wait_for() {
  local limit=$1; shift
  local end=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -ge "$end" ] && return 1
    sleep 0.2
  done
}

install() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null && command -v munged >/dev/null; then
    return
  fi
  [ "$(id -u)" = 0 ] || die "SLURM is not installed and we are not root: install slurmctld slurmd slurm-client munge"
  log "installing slurmctld slurmd slurm-client munge"
  export DEBIAN_FRONTEND=noninteractive
  if ! timeout 300 apt-get install -y -qq slurmctld slurmd slurm-client munge >&2; then
    timeout 300 apt-get update -qq >&2
    timeout 300 apt-get install -y -qq slurmctld slurmd slurm-client munge >&2
  fi
}

write_conf() {
  mkdir -p "$STATE"/{log,ctld,spool} "$MUNGE"
  chmod 0755 "$STATE" "$MUNGE"
  cat >"$CONF.new" <<CONF
# Written by scripts/slurm-local.sh: one node, localhost.
ClusterName=grokpipe
SlurmctldHost=localhost
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=$ME
SlurmdUser=$ME
AuthType=auth/munge
AuthInfo=socket=$SOCKET
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=0
MinJobAge=600
ReturnToService=2
SlurmdParameters=config_overrides
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
  mv "$CONF.new" "$CONF"
}

start_munge() {
  alive "$MUNGE/munged.pid" && [ -S "$SOCKET" ] && return
  if [ ! -s "$MUNGE/munge.key" ]; then
    dd if=/dev/urandom of="$MUNGE/munge.key" bs=1024 count=1 status=none
    chmod 0400 "$MUNGE/munge.key"
  fi
  rm -f "$SOCKET" "$SOCKET.lock"
  munged --force --socket="$SOCKET" --key-file="$MUNGE/munge.key" --pid-file="$MUNGE/munged.pid" \
    --log-file="$MUNGE/munged.log" --seed-file="$MUNGE/munged.seed"
  wait_for 10 test -S "$SOCKET" || die "munged did not start (see $MUNGE/munged.log)"
  chmod 0755 "$MUNGE"
}

node_up() {
  local s
  s=$(SLURM_CONF=$CONF timeout 5 sinfo -h -n localhost -o %t 2>/dev/null) || return 1
  case "$s" in idle*|mix*|alloc*|comp*) return 0 ;; *) return 1 ;; esac
}

start() {
  install
  if alive "$STATE/slurmctld.pid" && alive "$STATE/slurmd.pid" && alive "$MUNGE/munged.pid" && node_up; then
    echo "$CONF"
    return
  fi
  write_conf
  start_munge
  export SLURM_CONF=$CONF
  if ! alive "$STATE/slurmctld.pid"; then
    timeout 30 slurmctld -c -f "$CONF" || die "slurmctld did not start (see $STATE/log/slurmctld.log)"
  fi
  wait_for 20 timeout 5 scontrol ping || die "slurmctld does not answer (see $STATE/log/slurmctld.log)"
  if ! alive "$STATE/slurmd.pid"; then
    timeout 30 slurmd -f "$CONF" -N localhost || die "slurmd did not start (see $STATE/log/slurmd.log)"
  fi
  if ! wait_for 30 node_up; then
    timeout 5 scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true
    wait_for 15 node_up || die "node localhost is not up: $(timeout 5 sinfo -h -o '%t %E' 2>&1) (see $STATE/log/)"
  fi
  log "cluster up ($CPUS CPUs); export SLURM_CONF=$CONF"
  echo "$CONF"
}

stop_pid() {
  local file=$1 name=$2
  alive "$file" || { rm -f "$file"; return 0; }
  local pid; pid=$(cat "$file")
  kill -TERM "$pid" 2>/dev/null || true
  local end=$((SECONDS + 10))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$end" ]; then kill -KILL "$pid" 2>/dev/null || true; break; fi
    sleep 0.2
  done
  rm -f "$file"
  log "stopped $name ($pid)"
}

stop() {
  stop_pid "$STATE/slurmd.pid" slurmd
  stop_pid "$STATE/slurmctld.pid" slurmctld
  stop_pid "$MUNGE/munged.pid" munged
}

status() {
  local ok=0
  for d in "slurmctld:$STATE/slurmctld.pid" "slurmd:$STATE/slurmd.pid" "munged:$MUNGE/munged.pid"; do
    if alive "${d#*:}"; then echo "${d%%:*} running ($(cat "${d#*:}"))"; else echo "${d%%:*} stopped"; ok=1; fi
  done
  if [ "$ok" = 0 ] && node_up; then echo "node localhost up; SLURM_CONF=$CONF"; else echo "node localhost not up"; ok=1; fi
  return "$ok"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
