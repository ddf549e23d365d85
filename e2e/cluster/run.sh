#!/usr/bin/env bash
# The chart on a real node: starts a single-node cluster (e2e/cluster/cluster.sh: the Kubernetes
# binaries and the images from the shipped Dockerfiles built or reused, kubelet, containerd, the
# control plane), runs the tests in e2e/cluster/*.test.mjs against it, and always tears it down.
# Needs root and the debug binaries (make cluster builds them). With an argument, that script
# runs instead of the tests (make cluster-demo).
set -euo pipefail
cd "$(dirname "$0")/../.."
# kubelet, containerd, bridges and iptables need root
if [ "$(id -u)" != 0 ]; then
  exec sudo --preserve-env=PATH,CARGO_TARGET_DIR,OPENSPACE_CACHE,HOME "$0" "$@"
fi

dir="${TMPDIR:-/tmp}/openspace-cluster-$$"
if [ $# -gt 0 ]; then
  exec e2e/cluster/cluster.sh run "$dir" -- "$@"
fi
exec e2e/cluster/cluster.sh run "$dir" -- node --test --test-concurrency=1 e2e/cluster/
