#!/usr/bin/env bash
# Brings up a real single-node Slurm on this machine (controller and compute node on
# localhost), for trying jobs/psfphot.slurm and for the `slurm` ctest label.
#
#   bash scripts/start-slurm.sh            # needs root; after `bash scripts/setup.sh`
#   START_SLURM_TIMEOUT=120 bash scripts/start-slurm.sh
#
# What it does (each step is skipped when already done, so running it twice is safe):
#   1. munged: creates /run/munge (and the key if missing), starts it as user munge;
#   2. writes /etc/slurm/slurm.conf for this host (node = `hostname -s` at 127.0.0.1 with
#      the CPU topology `slurmd -C` reports, one partition "main"); no cgroup plugins
#      (proctrack/linuxproc, task/affinity) so it also works inside containers; state in
#      /var/spool/slurm{ctld,d}, logs in /var/log/slurm/. An /etc/slurm/slurm.conf that
#      this script did not write is never replaced: the script stops with a message;
#   3. starts slurmctld and slurmd (with systemctl when systemd runs the machine,
#      directly otherwise); restarts them when the config it writes has changed;
#   4. waits until `sinfo` shows the node usable (idle, mixed or allocated), resuming it
#      when it is down or drained from an earlier run.
# Never waits forever: after START_SLURM_TIMEOUT seconds (default 90) it prints what it
# saw and the ends of the daemon logs, and exits 1. Exit 0 means `sbatch` works now.
set -euo pipefail

TIMEOUT_S=${START_SLURM_TIMEOUT:-90}
CONF=/etc/slurm/slurm.conf
MARKER="# Written by psfphot scripts/start-slurm.sh"
LOG_DIR=/var/log/slurm
NODE=$(hostname -s)
DEADLINE=$((SECONDS + TIMEOUT_S))

say() { echo "start-slurm: $*"; }
die() {
  echo "start-slurm: ERROR: $*" >&2
  exit 1
}
time_left() { [ "$SECONDS" -lt "$DEADLINE" ]; }
# Bounded client calls: a controller that does not answer must not hang us.
q() { timeout 15 "$@" 2>/dev/null; }
alive() { # alive PIDFILE NAME: the process in PIDFILE exists and is NAME
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}
show_logs() {
  for f in "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" /var/log/munge/munged.log; do
    [ -f "$f" ] && {
      echo "----- last lines of $f" >&2
      tail -n 15 "$f" >&2
    }
  done
  return 0
}
give_up() {
  echo "start-slurm: ERROR: $* (after ${TIMEOUT_S}s; START_SLURM_TIMEOUT sets the limit)" >&2
  show_logs
  exit 1
}

[ "$(id -u)" -eq 0 ] || die "needs root (it starts munged, slurmctld and slurmd)"
for exe in munged munge unmunge slurmctld slurmd sinfo scontrol sbatch; do
  command -v "$exe" >/dev/null || [ -x "/usr/sbin/$exe" ] ||
    die "$exe not found: run 'bash scripts/setup.sh' (Debian packages slurm-wlm and munge)"
done
export PATH="$PATH:/usr/sbin:/sbin"

# One at a time: two test runs starting together must not both start daemons.
# The daemons started below get `9>&-`: a daemon inheriting the lock's descriptor would hold
# the lock for its whole life, and the next start-slurm.sh would time out on it.
exec 9>/run/psfphot-start-slurm.lock
flock -w "$TIMEOUT_S" 9 || die "another start-slurm.sh still holds /run/psfphot-start-slurm.lock"

SYSTEMD=0
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then SYSTEMD=1; fi

# ---- 1. munge -------------------------------------------------------------------------
munge_ok() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }
if munge_ok; then
  say "munged already running"
else
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge /etc/munge
  if [ ! -s /etc/munge/munge.key ]; then
    say "creating /etc/munge/munge.key"
    if command -v mungekey >/dev/null; then
      mungekey --create --keyfile=/etc/munge/munge.key
    else
      dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  if [ "$SYSTEMD" -eq 1 ]; then
    systemctl start munge
  else
    # --force: a socket left behind by a munged that died must not stop a new one.
    runuser -u munge -- /usr/sbin/munged --force 9>&-
  fi
  until munge_ok; do
    time_left || give_up "munged does not answer (munge -n | unmunge fails)"
    sleep 0.5
  done
  say "munged started"
fi

# ---- 2. slurm.conf --------------------------------------------------------------------
if [ -f "$CONF" ] && ! grep -qF "$MARKER" "$CONF"; then
  if q sinfo -h >/dev/null; then
    say "$CONF was not written by this script but Slurm answers; using it as it is"
    exit 0
  fi
  die "$CONF exists and was not written by this script; not replacing it (move it away to use this script)"
fi

# The node line from slurmd's own view of the hardware, so the topology matches what
# slurmd registers with; RealMemory a little under the total so the node is never
# drained for "low RealMemory".
hw=$(slurmd -C 2>/dev/null | head -n 1) || true
topo=$(echo "$hw" | grep -oE '(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=[0-9]+' | tr '\n' ' ' | sed 's/ *$//')
[ -n "$topo" ] || topo="CPUs=$(nproc)"
mem_mb=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.95}' /proc/meminfo)
SLURM_USER=slurm
id slurm >/dev/null 2>&1 || SLURM_USER=root

new_conf=$(
  cat <<EOF
$MARKER for a single-node test cluster.
# Re-running the script rewrites it; edit the script, not this file.
ClusterName=psfphot
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=$SLURM_USER
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
# No cgroup plugins: they fail in containers. linuxproc tracks a job's processes by
# parentage; task/affinity binds tasks to CPUs with sched_setaffinity.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldTimeout=60
SlurmdTimeout=120
InactiveLimit=0
# Finished jobs stay visible to scontrol for 5 minutes (exit codes in tests).
MinJobAge=300
# Seconds between the SIGTERM at the time limit (or scancel) and the SIGKILL.
KillWait=30
Waittime=0
MailProg=/bin/true
NodeName=$NODE NodeAddr=127.0.0.1 $topo RealMemory=$mem_mb State=UNKNOWN
PartitionName=main Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
)

changed=0
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$new_conf" ]; then
  install -d -m 0755 /etc/slurm
  printf '%s\n' "$new_conf" >"$CONF.tmp.$$"
  chmod 0644 "$CONF.tmp.$$"
  mv -f "$CONF.tmp.$$" "$CONF"
  changed=1
  say "wrote $CONF ($topo RealMemory=$mem_mb)"
fi
install -d -o "$SLURM_USER" -g "$SLURM_USER" -m 0755 /var/spool/slurmctld "$LOG_DIR"
install -d -m 0755 /var/spool/slurmd

# ---- 3. daemons -----------------------------------------------------------------------
ctld_up() { q scontrol ping | grep -q 'is UP'; }

stop_daemons() {
  say "config changed: restarting slurmctld and slurmd"
  if [ "$SYSTEMD" -eq 1 ]; then
    systemctl stop slurmd slurmctld || true
    return 0
  fi
  local f pid
  for f in slurmd slurmctld; do
    if alive "/run/$f.pid" "$f"; then
      pid=$(cat "/run/$f.pid")
      kill -TERM "$pid" || true
      for _ in $(seq 1 40); do
        [ -d "/proc/$pid" ] || break
        sleep 0.25
      done
    fi
  done
}
if [ "$changed" -eq 1 ] && { alive /run/slurmctld.pid slurmctld || alive /run/slurmd.pid slurmd; }; then
  stop_daemons
fi

if ctld_up; then
  say "slurmctld already running"
elif [ "$SYSTEMD" -eq 1 ]; then
  systemctl restart slurmctld
elif ! alive /run/slurmctld.pid slurmctld; then
  slurmctld 9>&- || give_up "slurmctld failed to start"
  say "slurmctld started"
fi
until ctld_up; do
  time_left || give_up "slurmctld does not answer (scontrol ping)"
  sleep 0.5
done

if [ "$SYSTEMD" -eq 1 ]; then
  systemctl is-active --quiet slurmd || systemctl restart slurmd
elif alive /run/slurmd.pid slurmd; then
  say "slurmd already running"
else
  slurmd 9>&- || give_up "slurmd failed to start"
  say "slurmd started"
fi

# ---- 4. wait for the node -------------------------------------------------------------
state=""
last_resume=-100
while :; do
  state=$(q sinfo -h -N -n "$NODE" -o '%T' | head -n 1 || true)
  case "$state" in
    idle | mixed | allocated | completing)
      break
      ;;
    down* | drain* | fail*)
      # Left down/drained by an earlier run (e.g. slurmd restarted under a running job).
      if [ $((SECONDS - last_resume)) -ge 5 ]; then
        q scontrol update NodeName="$NODE" State=RESUME || true
        last_resume=$SECONDS
      fi
      ;;
  esac
  if [ "$SYSTEMD" -eq 0 ] && ! alive /run/slurmd.pid slurmd; then
    give_up "slurmd is not running"
  fi
  time_left || give_up "node $NODE not usable (sinfo state: '${state:-no answer}')"
  sleep 0.5
done
say "node $NODE is $state; partition main is ready (sinfo below)"
q sinfo || true
