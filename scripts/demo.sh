#!/usr/bin/env bash
# The local demo, the whole session flow on one machine: a Kubernetes control plane (etcd +
# kube-apiserver, e2e/control-plane), the Helm chart installed into it (CRD, ServiceAccounts,
# RBAC, command-token Secret; its Deployment and DaemonSet never run, there is no kubelet), one
# rendering server (agent, the built-in renderer) as a local process registered as a Ready Pod the
# way a kubelet would, the operator as a local process under the chart's ServiceAccount identity
# (so its RBAC is enforced), and examples/session.yaml applied. It waits for Running and prints
# the URL from the session's status. Ctrl-C stops everything (operator, agent and its instances,
# control plane).
# Set INSTANCE_COMMAND to run a program instead of the built-in renderer.
set -euo pipefail
cd "$(dirname "$0")/.."

COMMAND_ADDR=${COMMAND_ADDR:-127.0.0.1:4699}
HTTP_ADDR=${HTTP_ADDR:-0.0.0.0:4690}
SIGNALING_ADDR=${SIGNALING_ADDR:-0.0.0.0:8443}
METRICS_ADDR=${METRICS_ADDR:-127.0.0.1:8080}
FRONTEND_ADDR=${FRONTEND_ADDR:-127.0.0.1:8090}
DIR=${DEMO_DIR:-${TMPDIR:-/tmp}/openspace-demo}
RELEASE=openspace
NS=openspace

echo "demo: building the agent and the operator (release; the first build takes a few minutes)..."
cargo build --quiet --release -p openspace-agent -p openspace-operator -p openspace-frontend --bins
bin="${CARGO_TARGET_DIR:-target}/release"

if (exec 3<>"/dev/tcp/${COMMAND_ADDR%:*}/${COMMAND_ADDR##*:}") 2>/dev/null; then
  echo "demo: something already listens on $COMMAND_ADDR; stop it first (or set COMMAND_ADDR, HTTP_ADDR, SIGNALING_ADDR)" >&2
  exit 1
fi

echo "demo: the control plane's tools (the first run builds kube-apiserver: about 4-8 minutes)..."
e2e/control-plane/build-tools.sh --quiet >/dev/null
mkdir -p "$DIR"
pids=()
cleanup() {
  trap - EXIT INT TERM
  echo; echo "demo: stopping..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  e2e/control-plane/control-plane.sh stop "$DIR" >/dev/null 2>&1 || true
  echo "demo: stopped (logs in $DIR)"
}
trap cleanup EXIT INT TERM
# The operator's and the frontend's identities: the users pods of the chart's ServiceAccounts
# authenticate as.
operator_user=system:serviceaccount:$NS:$RELEASE-operator
frontend_user=system:serviceaccount:$NS:$RELEASE-frontend
groups="system:serviceaccounts,system:serviceaccounts:$NS,system:authenticated"
random() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
EXTRA_TOKENS="$(random),$operator_user,operator,$groups;$(random),$frontend_user,frontend,$groups" \
  e2e/control-plane/control-plane.sh start "$DIR" >/dev/null
set -a; . "$DIR/env"; set +a
PATH="${OPENSPACE_CACHE:-$HOME/.cache/openspace-k8s}/bin:$PATH"

echo "demo: helm install $RELEASE charts/openspace (CRD, RBAC, ServiceAccounts, command token)..."
helm install "$RELEASE" charts/openspace -n "$NS" --create-namespace --set frontend.enabled=true >"$DIR/helm.log" 2>&1 \
  || { cat "$DIR/helm.log"; exit 1; }
kubectl wait --for=condition=Established crd/openspacesessions.openspace.io --timeout=60s >/dev/null
kubectl config view --raw --minify --flatten --context "$operator_user" >"$DIR/operator.kubeconfig"
kubectl config view --raw --minify --flatten --context "$frontend_user" >"$DIR/frontend.kubeconfig"
(umask 077 && kubectl -n "$NS" get secret "$RELEASE-command-token" -o jsonpath='{.data.token}' \
  | base64 -d >"$DIR/command-token")

args=(--command-listen "$COMMAND_ADDR" --http-listen "$HTTP_ADDR" --signaling-listen "$SIGNALING_ADDR"
  --token-file "$DIR/command-token")
[ -n "${INSTANCE_COMMAND:-}" ] && args+=(--instance-command "$INSTANCE_COMMAND")
RUST_LOG=${RUST_LOG:-info,webrtc=warn,rtc=warn} "$bin/openspace-agent" "${args[@]}" \
  >"$DIR/agent.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  "$bin/openspace-cmd" --url "ws://$COMMAND_ADDR" --token-file "$DIR/command-token" --timeout 1 \
    server-status >/dev/null 2>&1 && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$DIR/agent.log"; echo "demo: the agent did not start" >&2; exit 1; }
  sleep 0.1
done

# No kubelet here: the agent runs as a local process and its Pod (with the labels the chart's
# DaemonSet gives its pods) is marked Ready by hand.
command_ip=${COMMAND_ADDR%:*}
kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: $RELEASE-agent-local
  namespace: $NS
  labels:
    app.kubernetes.io/name: openspace
    app.kubernetes.io/component: agent
    app.kubernetes.io/instance: $RELEASE
spec:
  containers:
  - name: agent
    image: openspace-agent:local
    ports: [{name: command, containerPort: ${COMMAND_ADDR##*:}}]
YAML
kubectl -n "$NS" patch pod "$RELEASE-agent-local" --subresource=status --type=merge -p \
  "{\"status\":{\"phase\":\"Running\",\"podIP\":\"$command_ip\",\"podIPs\":[{\"ip\":\"$command_ip\"}],\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}" >/dev/null

# The flags the chart's Deployment sets through OPENSPACE_* variables, plus a local URL.
KUBECONFIG="$DIR/operator.kubeconfig" "$bin/openspace-operator" --agent-namespace "$NS" \
  --agent-selector "app.kubernetes.io/name=openspace,app.kubernetes.io/component=agent,app.kubernetes.io/instance=$RELEASE" \
  --lease-name "$RELEASE-operator" --lease-namespace "$NS" --command-token-file "$DIR/command-token" \
  --metrics-listen "$METRICS_ADDR" \
  --url-template "http://127.0.0.1:${HTTP_ADDR##*:}/frontend/#/streaming?id={id}&token={token}&stats=1" \
  >"$DIR/operator.log" 2>&1 &
pids+=($!)
# The streaming frontend, as the chart's frontend ServiceAccount.
KUBECONFIG="$DIR/frontend.kubeconfig" "$bin/openspace-frontend" --listen "$FRONTEND_ADDR" --namespace "$NS" \
  >"$DIR/frontend.log" 2>&1 &
pids+=($!)

kubectl apply -f examples/session.yaml
if ! kubectl wait --for=jsonpath='{.status.phase}'=Running openspacesession/demo --timeout=120s >/dev/null; then
  kubectl get openspacesession demo -o yaml
  echo "demo: the session did not reach Running; logs: $DIR/operator.log, $DIR/agent.log" >&2
  exit 1
fi
kubectl get openspacesessions
url=$(kubectl get openspacesession demo -o jsonpath='{.status.url}')
cat <<MSG

The session runs. Open this URL in a browser on this machine (drag to orbit, Shift+drag to pan,
wheel to zoom, WASD/arrows to turn, R to reset):

    $url

Or open the streaming frontend, http://$FRONTEND_ADDR/ , and press "Start a session" (each
browser gets one session of its own; closing the page ends it two minutes later).

Try, in another shell (export KUBECONFIG=$KUBECONFIG; kubectl is in ${OPENSPACE_CACHE:-$HOME/.cache/openspace-k8s}/bin):
  kubectl patch oss demo --type=merge -p '{"spec":{"resolution":{"width":640,"height":360}}}'
  kubectl delete oss demo        # the operator stops the instance
  kubectl apply -f examples/session.yaml
Logs: $DIR/operator.log, $DIR/frontend.log, $DIR/agent.log, $DIR/kube-apiserver.log
Watching the sessions (Ctrl-C stops everything):
MSG
kubectl get openspacesessions --watch
