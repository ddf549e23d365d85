#!/usr/bin/env bash
# cluster.sh: a throw-away single-node Kubernetes v1.20.2 cluster on this machine, with a real
# kubelet and containerd, for running the chart's pods (e2e/cluster/run.sh, make cluster-demo).
#
# Usage:
#   cluster.sh start DIR             start everything, wait for the node to be Ready, import the
#                                    images (e2e/cluster/images.sh), print DIR/env
#   cluster.sh stop DIR              tear everything down (safe to repeat, and after a crash)
#   cluster.sh run DIR -- CMD...     start, run CMD with DIR/env exported and kubectl/helm on
#                                    PATH, always tear down (also on Ctrl-C); CMD's exit status
#   cluster.sh restart-apiserver DIR [SECONDS]
#                                    the apiserver down for SECONDS, then up again (same flags)
#
# What runs (all bound to this machine, logs in DIR/*.log):
#   etcd + kube-apiserver           e2e/control-plane/control-plane.sh, with ServiceAccount tokens,
#                                    Node,RBAC authorization, on the node address
#   kube-controller-manager, kube-scheduler, kube-proxy (iptables), kubelet (cgroupfs)
#   containerd                      Debian's, CRI v1alpha2 for kubelet 1.20, private root/state/
#                                    socket, CNI bridge + host-local + portmap
# Addresses (198.18.0.0/15 is reserved for benchmarking, RFC 2544, so no outside network uses it):
#   node      198.18.255.1/32 on a bridge of its own, `osk8s-node` (apiserver, kubelet,
#             hostNetwork pods); a bridge because this machine's kernel has no dummy links
#   pods      198.18.0.0/24 on the CNI plugin's bridge `osk8s-cni0` (gateway .1)
#   services  198.18.128.0/24 (`kubernetes` is 198.18.128.1)
# The node looks like a GPU node: label nvidia.com/gpu.present=true and GPU_COUNT (default 4)
# `nvidia.com/gpu` as an extended resource in its capacity (no device is attached).
#
# Needs root, cgroup v1, and the Debian packages containerd runc containernetworking-plugins
# iptables conntrack (installed if missing). One cluster per machine at a time (a lock).
#
# Teardown removes every process, mount, link, iptables chain (KUBE-*, CNI-*), cgroup (kubepods),
# sysctl and directory that the cluster changed or created outside DIR; DIR keeps only the logs.
set -euo pipefail

PROG=cluster.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE="${OPENSPACE_CACHE:-$HOME/.cache/openspace-k8s}"
CP="$ROOT/e2e/control-plane/control-plane.sh"
STOP_GRACE="${STOP_GRACE:-10}"
NODE_READY_TIMEOUT="${NODE_READY_TIMEOUT:-120}"
GPU_COUNT="${GPU_COUNT:-4}"

NODE_NAME=openspace-gpu-node
NODE_LINK=osk8s-node
NODE_IP=198.18.255.1
BRIDGE=osk8s-cni0
POD_CIDR=198.18.0.0/24
SERVICE_CIDR=198.18.128.0/24
KUBERNETES_SERVICE_IP=198.18.128.1
CNI_NETWORK=openspace
# The node components, in start order (checked alive after the start; stop_cluster has its own order).
COMPONENTS=(containerd kube-controller-manager kube-scheduler kube-proxy kubelet)
# Kernel settings the kubelet, kube-proxy and the CNI bridge change; restored on stop.
SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
         kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward
         net.ipv4.conf.all.route_localnet net.bridge.bridge-nf-call-iptables
         net.ipv4.conf.all.forwarding)
# Host paths the kubelet and containerd use whatever their flags say; removed on stop when the
# cluster created them.
HOST_PATHS=(/var/log/pods /var/log/containers /var/lib/kubelet /run/containerd /var/lib/cni
            /etc/cni /opt/cni)
LOCK=/run/openspace-cluster.lock

# shellcheck source=SCRIPTDIR/../lib/proc.sh
source "$HERE/../lib/proc.sh"
usage() { sed -n '2,31p' "$0" >&2; exit 2; }

# ------------------------------------------------------------------ prerequisites
preflight() {
  [[ $(id -u) == 0 ]] || die "needs root (kubelet, containerd, bridges, iptables)"
  [[ -d /sys/fs/cgroup/memory && -d /sys/fs/cgroup/cpu ]] \
    || die "needs cgroup v1 (Kubernetes 1.20's kubelet); /sys/fs/cgroup has no memory and cpu hierarchies"
  local missing=() p
  for p in containerd runc containernetworking-plugins iptables conntrack; do
    [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  fi
  local line
  while IFS= read -r line; do export "${line?}"; done \
    < <("$ROOT/e2e/control-plane/build-tools.sh" --quiet --node | grep '=')
}

# ------------------------------------------------------------------ processes
# launch NAME CMD...: in its own session (survives the caller's process group), logs to
# DIR/NAME.log, pid to DIR/NAME.pid
launch() {
  local name=$1; shift
  setsid "$@" </dev/null >>"$DIR/$name.log" 2>&1 &
  echo $! >"$DIR/$name.pid"
}

# wait_until WHAT SECONDS CMD...: poll CMD every 0.5 s
wait_until() {
  local what=$1 deadline=$(($(now_ms) + $2 * 1000)); shift 2
  until "$@" >/dev/null 2>&1; do
    (($(now_ms) < deadline)) || { log "timed out after ${2}s: $what"; return 1; }
    sleep 0.5
  done
}

kubectl_admin() { "$KUBECTL" --kubeconfig "$DIR/kubeconfig" "$@"; }

# ------------------------------------------------------------------ host state (saved, restored)
save_host_state() {
  local key path
  : >"$DIR/sysctl.saved"
  for key in "${SYSCTLS[@]}"; do
    path=/proc/sys/${key//.//}
    [[ -r $path ]] && echo "$key=$(cat "$path")" >>"$DIR/sysctl.saved"
  done
  : >"$DIR/paths.created"
  for path in "${HOST_PATHS[@]}"; do [[ -e $path ]] || echo "$path" >>"$DIR/paths.created"; done
}

restore_host_state() {
  local line key value path
  if [[ -f $DIR/sysctl.saved ]]; then
    while IFS='=' read -r key value; do
      path=/proc/sys/${key//.//}
      [[ -w $path && $(cat "$path" 2>/dev/null) != "$value" ]] || continue
      echo "$value" >"$path" 2>/dev/null || log "WARNING: could not restore $key=$value"
    done <"$DIR/sysctl.saved"
    rm -f "$DIR/sysctl.saved"
  fi
  if [[ -f $DIR/paths.created ]]; then
    while IFS= read -r line; do
      [[ -n $line ]] && rm -rf --one-file-system "$line"
    done <"$DIR/paths.created"
    rm -f "$DIR/paths.created"
  fi
}

# ------------------------------------------------------------------ network
setup_network() {
  ip link add "$NODE_LINK" type bridge
  ip addr add "$NODE_IP/32" dev "$NODE_LINK"
  ip link set "$NODE_LINK" up
  mkdir -p "$DIR/cni/net.d" "$DIR/cni/ipam"
  cat >"$DIR/cni/net.d/10-$CNI_NETWORK.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "$CNI_NETWORK",
  "plugins": [
    {
      "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$DIR/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

# Removes what kube-proxy, the kubelet and the CNI plugins put into iptables: every KUBE-* and
# CNI-* chain and every rule that jumps to one (both iptables back ends, IPv4 and IPv6).
clean_iptables() {
  local save restore table
  for save in iptables-nft-save iptables-legacy-save ip6tables-nft-save ip6tables-legacy-save; do
    command -v "$save" >/dev/null || continue
    restore=${save/-save/-restore}
    for table in filter nat mangle; do
      local rules
      rules=$("$save" -t "$table" 2>/dev/null) || continue
      grep -qE 'KUBE-|CNI-' <<<"$rules" || continue
      grep -vE 'KUBE-|CNI-' <<<"$rules" | "$restore" -T "$table" 2>/dev/null \
        || log "WARNING: $restore -T $table failed; chains may be left"
    done
  done
}

teardown_network() {
  local link
  ip link del "$BRIDGE" 2>/dev/null || true
  ip link del "$NODE_LINK" 2>/dev/null || true
  # veths whose pod namespace outlived the bridge (normally gone with their namespace)
  for link in $(ip -o link show type veth 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    [[ $(ip -o link show "$link" 2>/dev/null) == *"master $BRIDGE"* ]] && ip link del "$link" 2>/dev/null
  done
  clean_iptables
  rm -rf "$DIR/cni"
}

# ------------------------------------------------------------------ certificates and identities
write_certs() (
  # a subshell: the umask must not reach containerd (its snapshots would be unreadable to pods)
  local pki="$DIR/pki"
  mkdir -p "$pki"
  umask 077
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=openspace-test-ca" \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout "$pki/apiserver.key" \
    -out "$pki/apiserver.csr" 2>/dev/null
  printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth" \
    "subjectAltName=IP:$NODE_IP,IP:$KUBERNETES_SERVICE_IP,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" \
    >"$pki/apiserver.ext"
  openssl x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -CAcreateserial -days 2 -extfile "$pki/apiserver.ext" -out "$pki/apiserver.crt" 2>/dev/null
  # The apiserver's identity towards the kubelet (logs, exec): the kubelet accepts only clients
  # of this CA, and asks the apiserver (SubjectAccessReview) what they may do.
  openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=kube-apiserver-kubelet-client" \
    -keyout "$pki/kubelet-client.key" -out "$pki/kubelet-client.csr" 2>/dev/null
  printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=clientAuth" >"$pki/kubelet-client.ext"
  openssl x509 -req -in "$pki/kubelet-client.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -CAcreateserial -days 2 -extfile "$pki/kubelet-client.ext" -out "$pki/kubelet-client.crt" 2>/dev/null
)

# Static tokens of the components, as the identities kubeadm gives them (RBAC's defaults bind
# system:kube-controller-manager, system:kube-scheduler, system:kube-proxy; the Node authorizer
# knows system:node:NAME in system:nodes).
random_token() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
component_tokens() {
  echo "$(random_token),system:kube-controller-manager,kcm"
  echo "$(random_token),system:kube-scheduler,scheduler"
  echo "$(random_token),system:kube-proxy,kube-proxy"
  echo "$(random_token),system:node:$NODE_NAME,kubelet,system:nodes"
}

# component_kubeconfig USER FILE: the control plane's context for USER, on its own (the CA and
# the token embedded)
component_kubeconfig() {
  kubectl_admin config view --raw --minify --flatten --context "$1" >"$2"
  chmod 600 "$2"
}

# ------------------------------------------------------------------ containerd
start_containerd() {
  mkdir -p "$DIR/containerd/root" "$DIR/containerd/state" "$DIR/containerd/runc"
  cat >"$DIR/containerd/config.toml" <<EOF
version = 2
root = "$DIR/containerd/root"
state = "$DIR/containerd/state"
[grpc]
  address = "$DIR/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/pause:3.2"
  netns_mounts_under_state_dir = true
  # This machine withholds CAP_SYS_RESOURCE: runc cannot lower oom_score_adj below ours, and
  # every sandbox would fail with "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$DIR/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$DIR/cni/net.d"
EOF
  launch containerd containerd --config "$DIR/containerd/config.toml"
  wait_until "containerd's socket" 20 ctr -a "$DIR/containerd/containerd.sock" version \
    || { tail -n 30 "$DIR/containerd.log" >&2; die "containerd did not start"; }
}

ctr_k8s() { ctr -a "$DIR/containerd/containerd.sock" -n k8s.io "$@"; }

# Stops every container still there (the kubelet is gone by now): kill the tasks, remove them.
sweep_containers() {
  [[ -S $DIR/containerd/containerd.sock ]] && alive "$(read_pid containerd)" || return 0
  local id
  for id in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
  sleep 0.5
  for id in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks delete -f "$id" >/dev/null 2>&1 || true; done
  for id in $(ctr_k8s containers ls -q 2>/dev/null); do ctr_k8s containers delete "$id" >/dev/null 2>&1 || true; done
}

# Every process left in the pods' cgroups (a shim's orphan, a pod's daemon): SIGKILL.
kill_pod_processes() {
  local pid cg n=0
  for cg in /sys/fs/cgroup/memory/kubepods /sys/fs/cgroup/pids/kubepods; do
    [[ -d $cg ]] || continue
    for pid in $(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null); do
      kill -KILL "$pid" 2>/dev/null && n=$((n + 1))
    done
  done
  # the shims of this containerd
  for pid in $(pgrep -f "containerd-shim.*-address $DIR/containerd/containerd.sock" || true); do
    kill -KILL "$pid" 2>/dev/null && n=$((n + 1))
  done
  ((n == 0)) || { log "killed $n leftover pod processes"; sleep 0.5; }
}

remove_cgroups() {
  local d
  for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/*/kubepods.slice; do
    [[ -d $d ]] || continue
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    [[ -d $d ]] && log "WARNING: cgroup $d is still there (processes in it?)"
  done
  return 0
}

unmount_under() {
  local prefix=$1 m
  # deepest first; mountinfo's 5th field is the mount point (octal escapes for spaces)
  for m in $(awk -v p="$prefix" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "WARNING: could not unmount $m"
  done
}

# ------------------------------------------------------------------ start
start_cluster() {
  local t0 line c
  t0=$(now_ms)
  preflight
  ! ip link show "$NODE_LINK" >/dev/null 2>&1 \
    || die "the link $NODE_LINK exists: a cluster runs already (cluster.sh stop ITS-DIR), or one was left behind (ip link del $NODE_LINK)"
  if [[ -f $DIR/env ]]; then
    log "stale state in $DIR: tearing it down first"
    stop_cluster
  fi
  : >"$DIR/starting"
  save_host_state
  setup_network
  write_certs

  # etcd + apiserver on the node address
  EXTRA_TOKENS="$(component_tokens)" APISERVER_ADDRESS=$NODE_IP SERVICE_CIDR=$SERVICE_CIDR \
    AUTHORIZATION_MODE=Node,RBAC SERVICE_ACCOUNT_ADMISSION=1 \
    APISERVER_EXTRA_ARGS="--tls-cert-file=$DIR/pki/apiserver.crt --tls-private-key-file=$DIR/pki/apiserver.key --client-ca-file=$DIR/pki/ca.crt --kubelet-preferred-address-types=InternalIP --kubelet-client-certificate=$DIR/pki/kubelet-client.crt --kubelet-client-key=$DIR/pki/kubelet-client.key" \
    "$CP" start "$DIR/control-plane" >/dev/null
  while IFS= read -r line; do declare -g "${line%%=*}=${line#*=}"; done <"$DIR/control-plane/env"
  cp "$DIR/control-plane/kubeconfig" "$DIR/kubeconfig"
  sed -i -e '/insecure-skip-tls-verify/d' \
    -e "s|^    server: .*|    certificate-authority: $DIR/pki/ca.crt\n    server: $APISERVER|" "$DIR/kubeconfig"
  for c in kube-controller-manager kube-scheduler kube-proxy; do
    component_kubeconfig "system:$c" "$DIR/$c.kubeconfig"
  done
  component_kubeconfig "system:node:$NODE_NAME" "$DIR/kubelet.kubeconfig"

  start_containerd
  "$HERE/images.sh" import "$DIR/containerd/containerd.sock" >&2

  launch kube-controller-manager "$KUBE_CONTROLLER_MANAGER" \
    --kubeconfig="$DIR/kube-controller-manager.kubeconfig" \
    --authentication-kubeconfig="$DIR/kube-controller-manager.kubeconfig" \
    --authorization-kubeconfig="$DIR/kube-controller-manager.kubeconfig" \
    --service-account-private-key-file="$DIR/control-plane/sa.key" --root-ca-file="$DIR/pki/ca.crt" \
    --use-service-account-credentials --controllers='*' --leader-elect=false \
    --bind-address=127.0.0.1 --secure-port=0 --port=0 \
    --cluster-cidr=$POD_CIDR --service-cluster-ip-range=$SERVICE_CIDR
  launch kube-scheduler "$KUBE_SCHEDULER" --kubeconfig="$DIR/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig="$DIR/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig="$DIR/kube-scheduler.kubeconfig" \
    --leader-elect=false --bind-address=127.0.0.1 --secure-port=0 --port=0
  # conntrack limits 0: leave the host's conntrack table settings alone
  launch kube-proxy "$KUBE_PROXY" --kubeconfig="$DIR/kube-proxy.kubeconfig" \
    --hostname-override=$NODE_NAME --bind-address=$NODE_IP --proxy-mode=iptables \
    --cluster-cidr=$POD_CIDR --conntrack-max-per-core=0 --conntrack-min=0 \
    --conntrack-tcp-timeout-established=0 --conntrack-tcp-timeout-close-wait=0 \
    --healthz-bind-address= --metrics-bind-address=127.0.0.1:10249
  mkdir -p "$DIR/kubelet"
  launch kubelet "$KUBELET" --kubeconfig="$DIR/kubelet.kubeconfig" \
    --container-runtime=remote --container-runtime-endpoint="unix://$DIR/containerd/containerd.sock" \
    --cgroup-driver=cgroupfs --fail-swap-on=false --pod-infra-container-image=localhost/pause:3.2 \
    --root-dir="$DIR/kubelet" --cert-dir="$DIR/kubelet/pki" --node-ip=$NODE_IP --address=$NODE_IP \
    --hostname-override=$NODE_NAME --register-node \
    --node-labels=nvidia.com/gpu.present=true,openspace.io/test-node=true \
    --read-only-port=0 --healthz-port=0 --anonymous-auth=false \
    --authentication-token-webhook --authorization-mode=Webhook --client-ca-file="$DIR/pki/ca.crt" \
    --eviction-hard='memory.available<100Mi,nodefs.available<1%,imagefs.available<1%' \
    --image-gc-high-threshold=100 --image-gc-low-threshold=99 \
    --node-status-update-frequency=4s --sync-frequency=5s \
    --serialize-image-pulls=false --max-pods=50 --resolv-conf=/etc/resolv.conf \
    --runtime-request-timeout=2m

  wait_until "node $NODE_NAME Ready" "$NODE_READY_TIMEOUT" node_ready \
    || { dump_failure; die "the node did not become Ready"; }
  for c in "${COMPONENTS[@]}"; do
    alive "$(read_pid "$c")" || { dump_failure; die "$c exited during start-up (log: $DIR/$c.log)"; }
  done
  # A GPU node as the NVIDIA device plugin would advertise it (extended resource in capacity).
  kubectl_admin patch node $NODE_NAME --subresource=status --type=json \
    -p "[{\"op\":\"add\",\"path\":\"/status/capacity/nvidia.com~1gpu\",\"value\":\"$GPU_COUNT\"}]" >/dev/null
  wait_until "the default ServiceAccount's token" 60 default_token_ready \
    || { dump_failure; die "the token controller did not make the default ServiceAccount's token"; }
  {
    echo "KUBECONFIG=$DIR/kubeconfig"
    echo "APISERVER=$APISERVER"
    echo "NODE_NAME=$NODE_NAME"
    echo "NODE_IP=$NODE_IP"
    echo "POD_CIDR=$POD_CIDR"
    echo "SERVICE_CIDR=$SERVICE_CIDR"
    echo "CONTAINERD_ADDRESS=$DIR/containerd/containerd.sock"
    echo "CLUSTER_DIR=$DIR"
  } >"$DIR/env"
  chmod 600 "$DIR/env"
  rm -f "$DIR/starting"
  log "ready in $(($(now_ms) - t0)) ms: node $NODE_NAME ($NODE_IP), apiserver $APISERVER; logs in $DIR/*.log"
}

node_ready() {
  [[ $(kubectl_admin get node $NODE_NAME -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}
default_token_ready() {
  [[ -n $(kubectl_admin -n default get serviceaccount default -o jsonpath='{.secrets[0].name}' 2>/dev/null) ]]
}

dump_failure() {
  local c
  for c in "${COMPONENTS[@]}"; do
    [[ -f $DIR/$c.log ]] || continue
    echo "----- last 20 lines of $DIR/$c.log -----" >&2
    tail -n 20 "$DIR/$c.log" >&2
  done
}

# ------------------------------------------------------------------ stop
stop_cluster() {
  local t0 i c
  # Teardown goes on past any failure: each step below cleans what it can.
  set +e
  t0=$(now_ms)
  [[ -n ${KUBECTL:-} ]] || KUBECTL="$CACHE/bin/kubectl"
  # 1. No controller recreates pods; the kubelet stops every pod (CNI DEL frees its address,
  #    portmap its chains) while containerd still runs.
  stop_proc kube-controller-manager
  stop_proc kube-scheduler
  if alive "$(read_pid kubelet)" && [[ -f $DIR/kubeconfig ]]; then
    kubectl_admin delete pods --all --all-namespaces --force --grace-period=0 --wait=false \
      --request-timeout=10s >/dev/null 2>&1 || true
    for ((i = 0; i < 200; i++)); do
      [[ -z $(ctr_k8s tasks ls -q 2>/dev/null) ]] && break
      sleep 0.1
    done
  fi
  # 2. The node agents, then whatever is left of the pods, then containerd.
  stop_proc kubelet
  stop_proc kube-proxy
  sweep_containers
  kill_pod_processes
  stop_proc containerd
  kill_pod_processes
  # 3. Mounts (pod volumes, network namespaces, rootfs snapshots), the control plane, the host.
  unmount_under "$DIR/"
  [[ -d $DIR/control-plane ]] && "$CP" stop "$DIR/control-plane" 2>/dev/null
  teardown_network
  remove_cgroups
  unmount_under /run/containerd/
  restore_host_state
  for c in containerd kubelet; do rm -rf "${DIR:?}/$c"; done
  rm -rf "$DIR/pki" "$DIR/env" "$DIR/starting" "$DIR"/*.kubeconfig "$DIR/kubeconfig"
  log "torn down in $(($(now_ms) - t0)) ms (logs kept in $DIR)"
}

# One cluster per machine: the lock is held by the cluster.sh process that starts (and, with
# `run`, owns) it.
take_lock() {
  exec 8>"$LOCK"
  flock -n 8 || die "another cluster is starting or running on this machine (lock $LOCK held)"
}

# ------------------------------------------------------------------ main
cmd="${1:-}"
[[ $# -ge 1 ]] && shift
case $cmd in
  start)
    [[ $# -eq 1 ]] || usage
    resolve_dir "$1"
    trap 'if [[ -f $DIR/starting ]]; then dump_failure; stop_cluster; fi' EXIT
    take_lock
    start_cluster
    cat "$DIR/env"
    ;;
  stop)
    [[ $# -eq 1 ]] || usage
    resolve_dir "$1"
    stop_cluster
    ;;
  restart-apiserver)
    [[ $# -ge 1 && $# -le 2 ]] || usage
    resolve_dir "$1"
    "$CP" restart-apiserver "$DIR/control-plane" "${2:-0}"
    ;;
  run)
    [[ $# -ge 3 && $2 == -- ]] || usage
    # A folder this run creates goes again when the command succeeds (its logs only matter
    # when something failed); one that was there before is left alone.
    fresh=0
    [[ -e $1 ]] || fresh=1
    resolve_dir "$1"
    shift 2
    rc=1
    trap 'stop_cluster
          if [[ $rc == 0 && $fresh == 1 ]]; then rm -rf --one-file-system -- "${DIR:?}"; fi' EXIT
    CHILD=
    trap 'forward_signal INT 130' INT
    trap 'forward_signal TERM 143' TERM
    trap 'forward_signal HUP 129' HUP
    take_lock
    # In the background, so that Ctrl-C during the start is acted on at once: bash ignores a
    # SIGINT that arrives while a foreground child (a script with traps of its own) handles it.
    ( trap - EXIT INT TERM HUP; start_cluster ) &
    CHILD=$!
    rc=0
    wait "$CHILD" || rc=$?
    ((rc == 0)) || { log "start failed (status $rc)"; exit "$rc"; }
    set -a
    # shellcheck disable=SC1091  # written by start_cluster
    source "$DIR/env"
    set +a
    export PATH="$CACHE/bin:$PATH" CLUSTER_SH="$HERE/cluster.sh"
    "$@" <&0 &
    CHILD=$!
    rc=0
    wait "$CHILD" || rc=$?
    log "command exited with status $rc; tearing the cluster down"
    exit "$rc"
    ;;
  -h|--help|help) usage ;;
  *) usage ;;
esac
