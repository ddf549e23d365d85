#!/usr/bin/env bash
# make cluster-demo, inside e2e/cluster/cluster.sh's single-node cluster (e2e/cluster/run.sh sets
# KUBECONFIG, NODE_IP and CLUSTER_DIR): the chart as real pods, examples/session.yaml, its URL.
# Ctrl-C ends it; the cluster is then torn down.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${KUBECONFIG:?run through make cluster-demo}"
NS=openspace
RELEASE=openspace

helm install "$RELEASE" charts/openspace -n "$NS" --create-namespace -f e2e/cluster/values.yaml \
  --wait --timeout 3m
kubectl -n "$NS" get pods -o wide
kubectl -n "$NS" apply -f examples/session.yaml
if ! kubectl -n "$NS" wait --for=jsonpath='{.status.phase}'=Running openspacesession/demo --timeout=120s >/dev/null; then
  kubectl -n "$NS" get openspacesession demo -o yaml
  echo "cluster-demo: the session did not reach Running" >&2
  exit 1
fi
url=$(kubectl -n "$NS" get openspacesession demo -o jsonpath='{.status.url}')
frontend=$(kubectl -n "$NS" get pods -l app.kubernetes.io/component=frontend -o jsonpath='{.items[0].status.podIP}')
cat <<MSG

The chart runs as real pods on the node $NODE_NAME ($NODE_IP): two operators (one leads), the
agent DaemonSet's pod, the frontend. Open this URL in a browser on this machine:

    $url

Or the streaming frontend (its pod, on the pod network): http://$frontend:8090/

Try, in another shell (export KUBECONFIG=$KUBECONFIG; kubectl is in ${OPENSPACE_CACHE:-$HOME/.cache/openspace-k8s}/bin):
  kubectl -n $NS get pods,oss -o wide
  kubectl -n $NS delete pod -l app.kubernetes.io/component=agent   # the DaemonSet recreates it
  kubectl -n $NS delete oss demo                                    # the operator stops the instance
Logs: $CLUSTER_DIR/*.log (kubelet, containerd, ...); kubectl -n $NS logs POD
Watching the sessions (Ctrl-C tears the cluster down):
MSG
kubectl -n "$NS" get openspacesessions --watch
