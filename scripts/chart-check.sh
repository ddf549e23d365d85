#!/usr/bin/env bash
# Checks charts/openspace without a cluster: `helm lint --strict`, `helm template` with the
# defaults and with every option, the schema refusing bad values, and the properties the security
# model relies on (the command port never in a Service or Ingress, non-root pods, the token from a
# Secret). The chart's install into a real apiserver is tested by e2e/flow.
set -euo pipefail
cd "$(dirname "$0")/.."

e2e/control-plane/build-tools.sh --quiet >/dev/null
helm="${OPENSPACE_CACHE:-$HOME/.cache/openspace-k8s}/bin/helm"
chart=charts/openspace
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

fail() { echo "chart-check: $*" >&2; exit 1; }
# render NAME [helm template flags...]: renders into $out/NAME.yaml (release "rel", ns "openspace").
render() {
  local name=$1; shift
  "$helm" template rel "$chart" -n openspace "$@" >"$out/$name.yaml" || fail "helm template ($name) failed"
}
has() { grep -qE -- "$2" "$out/$1.yaml" || fail "$1: expected /$2/"; }
lacks() { ! grep -qE -- "$2" "$out/$1.yaml" || fail "$1: unexpected /$2/"; }
# refuse WHAT REASON [flags...]: the chart must refuse these values, saying REASON (a regex).
refuse() {
  local what=$1 reason=$2; shift 2
  if "$helm" template rel "$chart" "$@" >/dev/null 2>"$out/err"; then fail "accepted $what"; fi
  grep -qE -- "$reason" "$out/err" || fail "refused $what, but not for /$reason/: $(cat "$out/err")"
}

for crd in openspacesession openspacepool; do
  cmp -s "crds/$crd.yaml" "$chart/crds/$crd.yaml" \
    || fail "$chart/crds/$crd.yaml differs from crds/: run 'make crds'"
done

"$helm" lint --strict "$chart" >/dev/null || "$helm" lint --strict "$chart"
"$helm" lint --strict "$chart" --set ingress.enabled=true --set ingress.host=viewer.example.org >/dev/null \
  || fail "lint with the Ingress"

# ---- defaults
render defaults
for kind in Deployment DaemonSet ClusterRole ClusterRoleBinding Role RoleBinding ServiceAccount \
  Secret Service NetworkPolicy PodDisruptionBudget; do
  has defaults "^kind: $kind$"
done
lacks defaults '^kind: Ingress$'
has defaults 'nvidia.com/gpu: "1"'
has defaults 'nvidia.com/gpu.present: "true"'
has defaults 'automountServiceAccountToken: false'
has defaults 'runAsNonRoot: true'
has defaults 'readOnlyRootFilesystem: true'
has defaults 'name: OPENSPACE_COMMAND_TOKEN_FILE'
has defaults 'name: OPENSPACE_TOKEN_FILE'
has defaults 'value: "app.kubernetes.io/name=openspace,app.kubernetes.io/component=agent,app.kubernetes.io/instance=rel"'
has defaults 'value: "http://\{host\}:4690/frontend/#/streaming\?id=\{id\}&token=\{token\}"'
lacks defaults 'hostNetwork: true'
lacks defaults 'runtimeClassName'
# The agent Service carries http and signaling only: the command port is pod-to-pod.
/usr/bin/python3 - "$out/defaults.yaml" <<'PY' || fail "agent Service or NetworkPolicy"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
svc = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "rel-openspace-agent")
assert sorted(p["name"] for p in svc["spec"]["ports"]) == ["http", "signaling"], svc["spec"]["ports"]
pol = next(d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "rel-openspace-agent")
command = [r for r in pol["spec"]["ingress"] if any(p.get("port") == 4699 for p in r.get("ports", []))]
assert len(command) == 1 and command[0]["from"] == [{"podSelector": {"matchLabels": {
    "app.kubernetes.io/name": "openspace", "app.kubernetes.io/instance": "rel",
    "app.kubernetes.io/component": "operator"}}}], command
role = next(d for d in docs if d["kind"] == "ClusterRole")
verbs = {v for r in role["rules"] for v in r["verbs"]}
assert "delete" not in verbs and "*" not in verbs, verbs
PY

# ---- every option
render options \
  --set agent.hostNetwork=true --set agent.runtimeClassName=nvidia --set agent.publicIpFromHost=true \
  --set agent.publicHost=gpu.example.org --set 'agent.iceServers={stun:stun.example.org:3478}' \
  --set agent.gpu.count=2 --set agent.capacity=5 --set operator.replicaCount=3 \
  --set ingress.enabled=true --set ingress.host=viewer.example.org --set ingress.className=nginx \
  --set ingress.tls.secretName=viewer-tls --set commandToken.existingSecret=mine \
  --set commandToken.existingSecretKey=k --set operator.placement=packed
has options 'hostNetwork: true'
has options 'dnsPolicy: ClusterFirstWithHostNet'
has options 'runtimeClassName: nvidia'
has options 'fieldPath: status.hostIP'
has options 'openspace.io/public-host: "gpu.example.org"'
has options 'value: "stun:stun.example.org:3478"'
has options 'nvidia.com/gpu: "2"'
has options 'replicas: 3'
has options '^kind: Ingress$'
has options 'secretName: viewer-tls'
has options 'value: "https://viewer.example.org/frontend/#/streaming\?id=\{id\}&token=\{token\}"'
has options 'secretName: mine'
has options 'key: k'
lacks options '^kind: Secret$'
for path in /frontend /api /signaling; do has options "path: $path$"; done

render small --set operator.replicaCount=1 --set networkPolicy.enabled=false --set rbac.create=false
lacks small '^kind: PodDisruptionBudget$'
lacks small '^kind: NetworkPolicy$'
lacks small '^kind: ClusterRole$'

render frontend --set frontend.enabled=true --set frontend.maxSessions=7
has frontend 'name: rel-openspace-frontend'
has frontend 'command: \["/usr/local/bin/openspace-frontend"\]'
has frontend 'verbs: \["create", "get", "list", "watch", "delete"\]'
has frontend 'value: "7"'
has frontend 'type: Recreate'
lacks defaults 'openspace-frontend'
lacks frontend '^kind: Ingress$'
lacks frontend 'OPENSPACE_POOL'
lacks defaults '^kind: OpenSpacePool$'
has defaults 'resources: \["openspacepools"\]'
render pool --set frontend.enabled=true --set pool.enabled=true --set pool.warm=3 --set pool.maxInstances=9
has pool '^kind: OpenSpacePool$'
has pool 'warm: 3'
has pool 'maxInstances: 9'
has pool 'name: OPENSPACE_POOL'
refuse 'a negative pool.warm' 'minimum' --set pool.warm=-1
render frontend-ingress --set frontend.enabled=true --set frontend.ingress.host=start.example.org \
  --set frontend.ingress.tlsSecretName=start-tls
has frontend-ingress 'host: "start.example.org"'
has frontend-ingress 'secretName: start-tls'

# ---- the TURN relay: the agents and coturn share one generated secret, mounted as a file
lacks defaults 'OPENSPACE_TURN'
lacks defaults 'component: turn'
render turn --set turn.enabled=true --set turn.host=relay.example.org
has turn 'value: "turn:relay.example.org:3478\?transport=udp,turn:relay.example.org:3478\?transport=tcp"'
has turn 'name: OPENSPACE_ICE_TRANSPORT'
render turn-lb --set turn.enabled=true --set turn.host=relay.example.org --set turn.hostNetwork=false \
  --set turn.iceTransport=relay --set 'turn.transports={tcp}' --set turn.externalIp=203.0.113.7
has turn-lb 'value: "turn:relay.example.org:3478\?transport=tcp"'
/usr/bin/python3 - "$out/turn.yaml" "$out/turn-lb.yaml" <<'PY' || fail "the TURN relay"
import sys, yaml
def load(path):
    return [d for d in yaml.safe_load_all(open(path)) if d]
def get(docs, kind, name):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)
def env(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}
for path, host_network in [(sys.argv[1], True), (sys.argv[2], False)]:
    docs = load(path)
    secret = get(docs, "Secret", "rel-openspace-turn-secret")
    assert list(secret["data"]) == ["secret"], secret
    relay = get(docs, "Deployment", "rel-openspace-turn")["spec"]["template"]["spec"]
    agent = get(docs, "DaemonSet", "rel-openspace-agent")["spec"]["template"]["spec"]
    # Both read the same Secret from a file: never an environment value, never an argument.
    for pod in (relay, agent):
        vol = next(v for v in pod["volumes"] if v["name"] == "turn-secret")
        assert vol["secret"]["secretName"] == "rel-openspace-turn-secret", vol
        c = pod["containers"][0]
        assert any(m["name"] == "turn-secret" and m["readOnly"] for m in c["volumeMounts"]), c
        assert not any("secretKeyRef" in str(e) for e in c.get("env", [])), c["env"]
    assert env(relay["containers"][0])["TURN_SECRET_FILE"] == env(agent["containers"][0])["OPENSPACE_TURN_SECRET_FILE"]
    assert relay["securityContext"]["runAsNonRoot"] is True
    assert relay["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    assert relay.get("hostNetwork", False) is host_network, relay.get("hostNetwork")
    services = [d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "rel-openspace-turn"]
    agent_policy = get(docs, "NetworkPolicy", "rel-openspace-agent")
    udp = [r for r in agent_policy["spec"]["ingress"] if any(p.get("protocol") == "UDP" for p in r["ports"])]
    assert len(udp) == 1, udp
    if host_network:
        assert not services, "a relay with hostNetwork needs no Service"
        assert "from" not in udp[0], udp  # its packets come from the node's address
        assert env(agent["containers"][0])["OPENSPACE_ICE_TRANSPORT"] == "all"
    else:
        svc = services[0]["spec"]
        assert svc["type"] == "LoadBalancer"
        assert sorted((p["port"], p["protocol"]) for p in svc["ports"]) == [(3478, "TCP"), (3478, "UDP")], svc
        # Agents take media from the relay alone, and the relay's relay ports from the agents.
        assert udp[0]["from"] == [{"podSelector": {"matchLabels": {
            "app.kubernetes.io/name": "openspace", "app.kubernetes.io/instance": "rel",
            "app.kubernetes.io/component": "turn"}}}], udp
        relay_policy = get(docs, "NetworkPolicy", "rel-openspace-turn")["spec"]["ingress"]
        ranged = next(r for r in relay_policy if any("endPort" in p for p in r["ports"]))
        assert ranged["ports"] == [{"port": 49152, "endPort": 49407, "protocol": "UDP"}], ranged
        assert ranged["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "agent"
        assert env(agent["containers"][0])["OPENSPACE_ICE_TRANSPORT"] == "relay"
        assert env(relay["containers"][0])["TURN_EXTERNAL_IP"] == "203.0.113.7"
PY
render turn-own --set turn.enabled=true --set turn.host=relay.example.org \
  --set turn.secret.existingSecret=coturn --set turn.secret.existingSecretKey=shared
lacks turn-own 'name: rel-openspace-turn-secret'
has turn-own 'secretName: coturn'
has turn-own 'key: shared'

# ---- x11 instances on Xorg: the server and driver flags, and the toolkit's driver capabilities
has defaults 'value: "compute,utility,video"'
lacks defaults 'OPENSPACE_X11_SERVER'
render xorg --set agent.instanceKind=x11 --set agent.instanceCommand=glxgears --set agent.x11.server=xorg
has xorg 'name: OPENSPACE_X11_SERVER'
has xorg 'value: "xorg"'
has xorg 'value: "compute,utility,video,graphics,display"'
render xorg-nogpu --set agent.instanceKind=x11 --set agent.instanceCommand=glxgears --set agent.x11.server=xorg \
  --set agent.x11.driver=dummy --set agent.gpu.count=0
has xorg-nogpu 'value: "dummy"'
lacks xorg-nogpu 'NVIDIA_DRIVER_CAPABILITIES'

# ---- values the schema or the templates refuse
refuse "a relay without a host" "turn.host is required" --set turn.enabled=true
refuse "an unknown TURN transport" "/turn/transports/0': value must be one of" --set 'turn.transports={sctp}'
refuse "a TURN host with a port" "/turn/host': '.*' does not match pattern" --set turn.host=relay:3478
refuse "relay ports out of order" "turn.minPort must not exceed turn.maxPort" \
  --set turn.enabled=true --set turn.host=relay.example.org --set turn.minPort=50000 --set turn.maxPort=49999
refuse "frontend.maxSessions 0" "/frontend/maxSessions': minimum" --set frontend.maxSessions=0
refuse "a string capacity" "/agent/capacity': got string" --set-string agent.capacity=three
refuse "capacity 0" "/agent/capacity': minimum" --set agent.capacity=0
refuse "an unknown key" "'capacityy' not allowed" --set agent.capacityy=3
refuse "an unknown placement" "/operator/placement': value must be one of" --set operator.placement=random
refuse "an Ingress without a host" "ingress.host is required" --set ingress.enabled=true
refuse "an unknown X server" "/agent/x11/server': value must be one of" --set agent.x11.server=xwayland
refuse "a bad duration" "'soon' does not match pattern" --set operator.leaderElection.leaseDuration=soon

echo "chart-check: ok"
