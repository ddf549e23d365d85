#!/usr/bin/env bash
# The whole session flow end to end: a local control plane whose RBAC is really enforced, the
# chart's CRDs and RBAC installed with helm, the operator running as the chart's ServiceAccount
# (a static-token user of that name), two agents registered as Pods on loopback, and headless
# Chromium opening the URL the operator publishes. Needs the debug binaries (make e2e builds them).
set -euo pipefail
cd "$(dirname "$0")/../.."

e2e/control-plane/build-tools.sh --quiet >/dev/null
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
export OPERATOR_TOKEN=$token
# The operator's identity: what a pod of the chart's ServiceAccount would present.
export EXTRA_TOKENS="$token,system:serviceaccount:openspace:openspace-operator,operator-uid,system:serviceaccounts,system:serviceaccounts:openspace,system:authenticated"
dir="${TMPDIR:-/tmp}/openspace-e2e-$$"
exec e2e/control-plane/control-plane.sh run "$dir" -- node --test --test-concurrency=1 e2e/flow/
