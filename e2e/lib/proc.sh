# shellcheck shell=bash
# proc.sh: process bookkeeping shared by e2e/control-plane/control-plane.sh and
# e2e/cluster/cluster.sh (sourced, not run). The caller defines PROG, STOP_GRACE, usage, and
# sets DIR (resolve_dir); every process it starts keeps its pid in DIR/NAME.pid and has a
# path under DIR/ in its command line (how `ours` tells it from a reused pid).

log() { echo "$PROG: $*" >&2; }
die() { echo "$PROG: ERROR: $*" >&2; exit 1; }
now_ms() { local s; s=$(date +%s%N); echo $((s / 1000000)); }

# alive PID: the process exists and is not a zombie
alive() {
  local pid=$1 state
  [[ -n $pid && -r /proc/$pid/stat ]] || return 1
  state=$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ $state != Z && $state != X ]]
}

# ours PID: alive and started by us for this DIR (guards against PID reuse)
ours() {
  alive "$1" && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$DIR/"
}

read_pid() { if [[ -f $DIR/$1.pid ]]; then cat "$DIR/$1.pid"; fi; }

# resolve_dir PATH: DIR = PATH made absolute (created if missing)
resolve_dir() {
  [[ -n ${1:-} ]] || usage
  mkdir -p "$1"
  DIR=$(cd "$1" && pwd -P)
  [[ $DIR != *[[:space:]]* ]] || die "DIR must not contain whitespace: '$DIR'"
  [[ $DIR != / ]] || die "refusing to use / as DIR"
}

# stop_proc NAME: SIGTERM, SIGKILL after STOP_GRACE seconds, reap if it is our child; forgets
# its pid file
stop_proc() {
  local name=$1 pid i
  pid=$(read_pid "$name")
  [[ -n $pid ]] || return 0
  if ours "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_GRACE * 10; i++)); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
      log "$name (pid $pid) still running after ${STOP_GRACE}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
    fi
  fi
  wait "$pid" 2>/dev/null || true
  alive "$pid" && ours "$pid" && log "WARNING: $name (pid $pid) could not be killed"
  rm -f "$DIR/$name.pid"
}

# forward_signal SIG CODE: on SIG, SIGTERM the background command CHILD (a background job
# ignores SIGINT, so SIGINT is not passed on as such), SIGKILL it after STOP_GRACE seconds,
# then exit with CODE (the caller's EXIT trap tears down)
forward_signal() {
  local sig=$1 code=$2 i
  if [[ -n ${CHILD:-} ]] && alive "$CHILD"; then
    log "got SIG$sig; sending SIGTERM to the command (pid $CHILD)"
    kill -TERM "$CHILD" 2>/dev/null || true
    for ((i = 0; i < STOP_GRACE * 10; i++)); do alive "$CHILD" || break; sleep 0.1; done
    if alive "$CHILD"; then kill -KILL "$CHILD" 2>/dev/null || true; fi
    wait "$CHILD" 2>/dev/null || true
  fi
  exit "$code"
}
