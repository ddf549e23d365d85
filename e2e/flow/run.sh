#!/usr/bin/env bash
# The whole session flow end to end: a local control plane whose RBAC is really enforced, the
# chart's CRDs and RBAC installed with helm, the operator running as the chart's ServiceAccount
# (a static-token user of that name), two agents registered as Pods on loopback, and headless
# Chromium opening the URL the operator publishes. Needs the debug binaries (make e2e builds them).
set -euo pipefail
cd "$(dirname "$0")/../.."

e2e/control-plane/build-tools.sh --quiet >/dev/null
random() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
# The operator's and the frontend's identities: what pods of the chart's ServiceAccounts present.
# The control plane's kubeconfig gets a context for each (e2e/flow/lib/cluster.mjs uses them).
groups="system:serviceaccounts,system:serviceaccounts:openspace,system:authenticated"
export EXTRA_TOKENS="$(random),system:serviceaccount:openspace:openspace-operator,operator-uid,$groups
$(random),system:serviceaccount:openspace:openspace-frontend,frontend-uid,$groups"
dir="${TMPDIR:-/tmp}/openspace-e2e-$$"
# With an argument, that script (a benchmark) runs instead of the tests.
if [ $# -gt 0 ]; then
  exec e2e/control-plane/control-plane.sh run "$dir" -- node "$@"
fi
exec e2e/control-plane/control-plane.sh run "$dir" -- node --test --test-concurrency=1 e2e/flow/
