#!/usr/bin/env bash
# control-plane.sh: a throw-away Kubernetes control plane (etcd + kube-apiserver
# v1.20.2, no kubelet/scheduler/controller-manager) on free 127.0.0.1 ports.
#
# Usage:
#   control-plane.sh start  DIR            start in the background, wait for /readyz,
#                                          print the contents of DIR/env
#   control-plane.sh stop   DIR            SIGTERM (then SIGKILL after STOP_GRACE s) both
#                                          processes, delete their data (DIR/*.log kept)
#   control-plane.sh status DIR            exit 0 and print DIR/env if running, else exit 1
#   control-plane.sh run    DIR -- CMD...  start, run CMD with KUBECONFIG, APISERVER,
#                                          ADMIN_TOKEN exported and the cached kubectl/helm
#                                          first on PATH, always stop; exits with CMD's status
#   control-plane.sh restart-apiserver DIR [SECONDS]
#                                          stop the apiserver, keep it down SECONDS (default 0),
#                                          start it again with the same flags and port, wait
#                                          for /readyz (etcd and its data stay)
#
# Files in DIR: kubeconfig (admin, insecure-skip-tls-verify, one extra context per
# EXTRA_TOKENS user), env (KEY=VALUE lines: KUBECONFIG, APISERVER, ADMIN_TOKEN,
# ETCD_ENDPOINT), tokens.csv, sa.key/sa.pub, etcd.log, kube-apiserver.log.
#
# Environment:
#   OPENSPACE_CACHE  cache used by build-tools.sh (default ~/.cache/openspace-k8s)
#   KUBE_APISERVER   apiserver binary (default $OPENSPACE_CACHE/bin/kube-apiserver-v1.20.2)
#   ETCD             etcd binary (default: etcd on PATH)
#   ADMIN_TOKEN      admin bearer token (default: random); user "admin", group system:masters
#   EXTRA_TOKENS     extra static-token users, one per line (or separated by ';'):
#                      TOKEN,USER,UID[,GROUP[,GROUP...]]
#                    e.g. EXTRA_TOKENS='t1,system:serviceaccount:ns1:agent,u1,system:serviceaccounts'
#   APISERVER_EXTRA_ARGS  extra kube-apiserver flags (split on whitespace)
#   APISERVER_ADDRESS     address it binds to and advertises (default 127.0.0.1); a real node's
#                    pods reach the `kubernetes` Service there, so e2e/cluster uses its node IP
#   SERVICE_CIDR     --service-cluster-ip-range (default 10.0.0.0/24)
#   AUTHORIZATION_MODE    --authorization-mode (default RBAC; e2e/cluster: Node,RBAC)
#   SERVICE_ACCOUNT_ADMISSION  1: keep the ServiceAccount admission plugin (pods get tokens; it
#                    needs a controller-manager's token controller); default 0: disabled
#   READY_TIMEOUT    seconds to wait for readiness (default 60)
#   STOP_GRACE       seconds between SIGTERM and SIGKILL (default 10)
set -euo pipefail

PROG=control-plane.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE="${OPENSPACE_CACHE:-$HOME/.cache/openspace-k8s}"
READY_TIMEOUT="${READY_TIMEOUT:-60}"
STOP_GRACE="${STOP_GRACE:-10}"
# files this script creates in DIR (and removes again on stop, except the logs)
STATE_FILES=(etcd-data certs sa.key sa.pub tokens.csv kubeconfig env etcd.pid kube-apiserver.pid
             kube-apiserver.args)
APISERVER_ADDRESS="${APISERVER_ADDRESS:-127.0.0.1}"
SERVICE_CIDR="${SERVICE_CIDR:-10.0.0.0/24}"
AUTHORIZATION_MODE="${AUTHORIZATION_MODE:-RBAC}"
SERVICE_ACCOUNT_ADMISSION="${SERVICE_ACCOUNT_ADMISSION:-0}"

# shellcheck source=SCRIPTDIR/../lib/proc.sh
source "$HERE/../lib/proc.sh"
usage() { sed -n '2,42p' "$0" >&2; exit 2; }

# ------------------------------------------------------------------ helpers

# listening TCP ports on this machine (decimal, one per line)
listening_ports() {
  local f sl laddr st
  for f in /proc/net/tcp /proc/net/tcp6; do
    [[ -r $f ]] || continue
    while read -r sl laddr _ st _; do
      [[ $sl == sl ]] && continue
      if [[ $st == 0A ]]; then echo $((16#${laddr##*:})); fi
    done <"$f"
  done
}

# pick N distinct free ports in 20000-32767 (below Linux's ephemeral range)
pick_ports() {
  local n=$1 used p picked=()
  used=" $(listening_ports | tr '\n' ' ') "
  while ((${#picked[@]} < n)); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 12768))
    [[ $used == *" $p "* ]] && continue
    used+="$p "
    picked+=("$p")
  done
  echo "${picked[@]}"
}

tail_log() {
  local f=$1
  [[ -f $f ]] || return 0
  echo "----- last 25 lines of $f -----" >&2
  tail -n 25 "$f" >&2
  echo "-----" >&2
}

find_binaries() {
  KUBE_APISERVER="${KUBE_APISERVER:-$CACHE/bin/kube-apiserver-v1.20.2}"
  [[ -x $KUBE_APISERVER ]] || die "kube-apiserver not found at $KUBE_APISERVER; run $HERE/build-tools.sh first"
  ETCD="${ETCD:-$(command -v etcd || true)}"
  [[ -n $ETCD && -x $ETCD ]] || die "etcd not found; run $HERE/build-tools.sh first (installs etcd-server)"
  command -v openssl >/dev/null || die "openssl not found; run $HERE/build-tools.sh first"
  command -v curl >/dev/null || die "curl not found; run $HERE/build-tools.sh first"
}


is_running() {
  local p
  for p in etcd kube-apiserver; do
    ours "$(read_pid "$p")" && return 0
  done
  return 1
}

# ------------------------------------------------------------------ stop
stop_cp() {
  local f
  # apiserver first: it needs etcd to shut down cleanly
  stop_proc kube-apiserver
  stop_proc etcd
  for f in "${STATE_FILES[@]}"; do rm -rf "${DIR:?}/$f"; done
}

# ------------------------------------------------------------------ start
write_tokens() {
  local line tok user uid groups
  umask 077
  echo "$ADMIN_TOKEN,admin,admin,\"system:masters\"" >"$DIR/tokens.csv"
  EXTRA_USERS=()
  EXTRA_USER_TOKENS=()
  while IFS= read -r line; do
    line="${line#"${line%%[![:space:]]*}"}"; line="${line%"${line##*[![:space:]]}"}"
    [[ -z $line || $line == \#* ]] && continue
    IFS=, read -r tok user uid groups <<<"$line"
    [[ -n $tok && -n $user ]] || die "bad EXTRA_TOKENS entry '$line' (want TOKEN,USER,UID[,GROUP...])"
    uid="${uid:-$user}"
    groups="${groups//\"/}"
    if [[ -n $groups ]]; then
      echo "$tok,$user,$uid,\"$groups\"" >>"$DIR/tokens.csv"
    else
      echo "$tok,$user,$uid" >>"$DIR/tokens.csv"
    fi
    EXTRA_USERS+=("$user")
    EXTRA_USER_TOKENS+=("$tok")
  done < <(printf '%s\n' "${EXTRA_TOKENS:-}" | tr ';' '\n')
}

write_kubeconfig() {
  local server=$1 i
  umask 077
  {
    echo "apiVersion: v1"
    echo "kind: Config"
    echo "clusters:"
    echo "- name: local"
    echo "  cluster:"
    echo "    server: $server"
    echo "    insecure-skip-tls-verify: true"
    echo "users:"
    echo "- name: admin"
    echo "  user:"
    echo "    token: \"$ADMIN_TOKEN\""
    for i in "${!EXTRA_USERS[@]}"; do
      echo "- name: \"${EXTRA_USERS[$i]}\""
      echo "  user:"
      echo "    token: \"${EXTRA_USER_TOKENS[$i]}\""
    done
    echo "contexts:"
    echo "- name: admin"
    echo "  context: {cluster: local, user: admin, namespace: default}"
    for i in "${!EXTRA_USERS[@]}"; do
      echo "- name: \"${EXTRA_USERS[$i]}\""
      echo "  context: {cluster: local, user: \"${EXTRA_USERS[$i]}\", namespace: default}"
    done
    echo "current-context: admin"
  } >"$DIR/kubeconfig"
}

# launch NAME CMD...: start in the background, logs to DIR/NAME.log, pid to DIR/NAME.pid
LAUNCHED=0
launch() {
  local name=$1; shift
  LAUNCHED=1
  if [[ $DETACH == 1 ]]; then
    # own session: survives the terminal / this script's process group
    setsid "$@" </dev/null >"$DIR/$name.log" 2>&1 &
  else
    "$@" </dev/null >"$DIR/$name.log" 2>&1 &
  fi
  echo $! >"$DIR/$name.pid"
}

# wait_for NAME URL DEADLINE_MS REGEX [curl args...]: poll URL until its body
# matches REGEX. Returns 0 ready, 1 timeout, 2 process died, 3 died on a port clash
wait_for() {
  local name=$1 url=$2 deadline=$3 re=$4 pid body; shift 4
  pid=$(read_pid "$name")
  while (($(now_ms) < deadline)); do
    if ! alive "$pid"; then
      grep -q 'address already in use' "$DIR/$name.log" 2>/dev/null && return 3
      return 2
    fi
    body=$(curl -sk --max-time 2 "$@" "$url" 2>/dev/null || true)
    [[ $body =~ $re ]] && return 0
    sleep 0.2
  done
  return 1
}

start_once() {
  local etcd_port peer_port api_port deadline rc
  read -r etcd_port peer_port api_port <<<"$(pick_ports 3)"
  ETCD_ENDPOINT="http://127.0.0.1:$etcd_port"
  APISERVER="https://$APISERVER_ADDRESS:$api_port"
  deadline=$(($(now_ms) + READY_TIMEOUT * 1000))

  rm -rf "$DIR/etcd-data"
  launch etcd "$ETCD" --name local --data-dir "$DIR/etcd-data" \
    --listen-client-urls "$ETCD_ENDPOINT" --advertise-client-urls "$ETCD_ENDPOINT" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "local=http://127.0.0.1:$peer_port" \
    --logger zap --log-outputs stderr
  rc=0; wait_for etcd "$ETCD_ENDPOINT/health" "$deadline" '"health":"true"' || rc=$?
  case $rc in
    0) ;;
    3) return 3 ;;
    2) tail_log "$DIR/etcd.log"; die "etcd exited during start-up" ;;
    *) tail_log "$DIR/etcd.log"; die "etcd not healthy within ${READY_TIMEOUT}s" ;;
  esac

  mkdir -p "$DIR/certs"
  local extra=() admission=()
  # shellcheck disable=SC2206  # word splitting of APISERVER_EXTRA_ARGS is intended
  extra=(${APISERVER_EXTRA_ARGS:-})
  [[ $SERVICE_ACCOUNT_ADMISSION == 1 ]] || admission=(--disable-admission-plugins=ServiceAccount)
  local args=("$KUBE_APISERVER"
    --etcd-servers="$ETCD_ENDPOINT"
    --cert-dir="$DIR/certs"
    --secure-port="$api_port" --bind-address="$APISERVER_ADDRESS" --advertise-address="$APISERVER_ADDRESS"
    --service-cluster-ip-range="$SERVICE_CIDR"
    --service-account-issuer=https://kubernetes.default.svc
    --service-account-key-file="$DIR/sa.pub"
    --service-account-signing-key-file="$DIR/sa.key"
    --token-auth-file="$DIR/tokens.csv"
    --authorization-mode="$AUTHORIZATION_MODE"
    --allow-privileged=true
    "${admission[@]}"
    "${extra[@]}")
  # kept for restart-apiserver (NUL-separated: flags may hold spaces)
  printf '%s\0' "${args[@]}" >"$DIR/kube-apiserver.args"
  launch kube-apiserver "${args[@]}"
  rc=0; wait_for kube-apiserver "$APISERVER/readyz" "$deadline" '^ok$' \
    -H "Authorization: Bearer $ADMIN_TOKEN" || rc=$?
  case $rc in
    0) return 0 ;;
    3) return 3 ;;
    2) tail_log "$DIR/kube-apiserver.log"; die "kube-apiserver exited during start-up" ;;
    *) tail_log "$DIR/kube-apiserver.log"
       curl -sk --max-time 5 -H "Authorization: Bearer $ADMIN_TOKEN" "$APISERVER/readyz?verbose" >&2 || true
       die "kube-apiserver not ready within ${READY_TIMEOUT}s" ;;
  esac
}

start_cp() {
  local t0 attempt rc
  t0=$(now_ms)
  find_binaries
  if is_running; then
    die "a control plane is already running in $DIR (use: $PROG stop $DIR)"
  fi
  stop_cp   # clear stale state from an earlier crashed run
  ADMIN_TOKEN="${ADMIN_TOKEN:-$(openssl rand -hex 24)}"
  openssl genrsa -out "$DIR/sa.key" 2048 2>/dev/null
  openssl rsa -in "$DIR/sa.key" -pubout -out "$DIR/sa.pub" 2>/dev/null
  chmod 600 "$DIR/sa.key"
  write_tokens

  for attempt in 1 2 3; do
    rc=0; start_once || rc=$?
    ((rc == 0)) && break
    # rc 3: another process grabbed one of our ports between picking and binding
    log "port clash (attempt $attempt); retrying on other ports"
    stop_proc kube-apiserver; stop_proc etcd
    ((attempt < 3)) || die "could not bind free ports after 3 attempts"
  done

  write_kubeconfig "$APISERVER"
  umask 077
  {
    echo "KUBECONFIG=$DIR/kubeconfig"
    echo "APISERVER=$APISERVER"
    echo "ADMIN_TOKEN=$ADMIN_TOKEN"
    echo "ETCD_ENDPOINT=$ETCD_ENDPOINT"
  } >"$DIR/env"
  log "ready in $(( $(now_ms) - t0 )) ms: apiserver $APISERVER (pid $(read_pid kube-apiserver)), etcd $ETCD_ENDPOINT (pid $(read_pid etcd)); logs in $DIR/*.log"
}

# restart_apiserver SECONDS: the same apiserver (flags, port) down for SECONDS, then ready again
restart_apiserver() {
  local down=$1 args=() deadline rc
  [[ -f $DIR/kube-apiserver.args && -f $DIR/env ]] || die "no control plane started in $DIR"
  mapfile -d '' args <"$DIR/kube-apiserver.args"
  # shellcheck disable=SC1091  # written by start_cp
  source "$DIR/env"
  stop_proc kube-apiserver
  log "kube-apiserver stopped; starting it again in ${down}s"
  sleep "$down"
  DETACH=1
  mv -f "$DIR/kube-apiserver.log" "$DIR/kube-apiserver.log.$(date +%s)"
  launch kube-apiserver "${args[@]}"
  deadline=$(($(now_ms) + READY_TIMEOUT * 1000))
  rc=0; wait_for kube-apiserver "$APISERVER/readyz" "$deadline" '^ok$' \
    -H "Authorization: Bearer $ADMIN_TOKEN" || rc=$?
  ((rc == 0)) || { tail_log "$DIR/kube-apiserver.log"; die "kube-apiserver not ready again (rc $rc)"; }
  log "kube-apiserver ready again (pid $(read_pid kube-apiserver))"
}

# ------------------------------------------------------------------ main
cmd="${1:-}"
[[ $# -ge 1 ]] && shift
case $cmd in
  start)
    [[ $# -eq 1 ]] || usage
    resolve_dir "$1"
    DETACH=1
    STARTED_OK=0
    # on a failed start, tear down only what this invocation launched
    trap 'if [[ $STARTED_OK == 0 && $LAUNCHED == 1 ]]; then stop_cp; fi' EXIT
    start_cp
    STARTED_OK=1
    cat "$DIR/env"
    ;;
  stop)
    [[ $# -eq 1 ]] || usage
    resolve_dir "$1"
    if is_running; then
      stop_cp
      log "stopped; data removed from $DIR (logs kept)"
    else
      stop_cp
      log "nothing running in $DIR"
    fi
    ;;
  status)
    [[ $# -eq 1 ]] || usage
    resolve_dir "$1"
    if is_running; then
      cat "$DIR/env"
    else
      log "not running ($DIR)"
      exit 1
    fi
    ;;
  run)
    [[ $# -ge 3 && $2 == -- ]] || usage
    # A folder this run creates goes again when the command succeeds (its logs only matter
    # when something failed); one that was there before is left alone.
    fresh=0
    [[ -e $1 ]] || fresh=1
    resolve_dir "$1"
    shift 2
    DETACH=0
    rc=1
    # never touch a control plane that this invocation did not launch
    trap 'if [[ $LAUNCHED == 1 ]]; then stop_cp; fi
          if [[ $rc == 0 && $fresh == 1 ]]; then rm -rf -- "${DIR:?}"; fi' EXIT
    CHILD=
    trap 'forward_signal INT 130' INT
    trap 'forward_signal TERM 143' TERM
    trap 'forward_signal HUP 129' HUP
    start_cp
    export KUBECONFIG="$DIR/kubeconfig" APISERVER ADMIN_TOKEN ETCD_ENDPOINT
    export PATH="$CACHE/bin:$PATH"
    # run in the background so that signals to this script are handled at once
    # (bash defers traps while a foreground child runs); keep our stdin for it
    "$@" <&0 &
    CHILD=$!
    rc=0
    wait "$CHILD" || rc=$?
    log "command exited with status $rc; stopping the control plane"
    exit "$rc"
    ;;
  restart-apiserver)
    [[ $# -ge 1 && $# -le 2 ]] || usage
    resolve_dir "$1"
    find_binaries
    restart_apiserver "${2:-0}"
    ;;
  -h|--help|help) usage ;;
  *) usage ;;
esac
