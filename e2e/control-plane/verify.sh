#!/usr/bin/env bash
# verify.sh: run inside `control-plane.sh run DIR -- ./verify.sh`
# CRD round trip (schema minimum enforced), RBAC of an EXTRA_TOKENS user, helm.
set -euo pipefail
echo "== kubectl: $(command -v kubectl)"
kubectl version 2>&1 | sed 's/^/   /'
kubectl apply -f - <<'YAML'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.test.openspace.dev
spec:
  group: test.openspace.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 16}
          status:
            type: object
            properties:
              ready: {type: boolean}
YAML
kubectl wait --for=condition=Established --timeout=30s crd/widgets.test.openspace.dev
kubectl apply -f - <<'YAML'
apiVersion: test.openspace.dev/v1
kind: Widget
metadata: {name: good, namespace: default}
spec: {size: 16}
YAML
kubectl get widget good -o jsonpath='{.spec.size}{"\n"}'
kubectl patch widget good --subresource=status --type=merge -p '{"status":{"ready":true}}'
[[ $(kubectl get widget good -o jsonpath='{.status.ready}') == true ]]
if out=$(kubectl apply -f - 2>&1 <<'YAML'
apiVersion: test.openspace.dev/v1
kind: Widget
metadata: {name: bad, namespace: default}
spec: {size: 15}
YAML
); then
  echo "FAIL: invalid widget (size 15) was accepted: $out"; exit 1
fi
echo "== invalid widget rejected as expected: $out"
grep -q 'should be greater than or equal to 16' <<<"$out"
if kubectl get widget bad 2>/dev/null; then echo "FAIL: bad widget exists"; exit 1; fi
echo "== apiserver still alive after CRD traffic: $(kubectl get --raw /readyz)"
# EXTRA_TOKENS user: authenticated, but RBAC denies until a binding exists
[[ $(kubectl --context=system:serviceaccount:demo:agent auth can-i list pods -n demo 2>/dev/null || true) == no ]]
kubectl create ns demo
kubectl create role pod-reader -n demo --verb=get,list --resource=pods
kubectl create rolebinding agent-reads -n demo --role=pod-reader --user=system:serviceaccount:demo:agent
kubectl --context=system:serviceaccount:demo:agent get pods -n demo
if kubectl --context=system:serviceaccount:demo:agent get pods -n default 2>/dev/null; then
  echo "FAIL: agent can list pods in default"; exit 1
fi
echo "== RBAC for extra token user OK"
echo "== helm: $(helm version --short)"
helm list -A
echo "VERIFY OK"
