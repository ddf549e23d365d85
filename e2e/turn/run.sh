#!/usr/bin/env bash
# The TURN tier: builds the test network (net.sh), runs e2e/turn's tests in it, and always tears
# it down, on failure and Ctrl-C too. Network namespaces need root (CAP_SYS_ADMIN): where that
# is missing the tier is skipped with the reason, and exits 0 so `make test` goes on.
# Needs the debug binaries (make turn builds them) and e2e/browser's node_modules.
set -euo pipefail
cd "$(dirname "$0")/../.."

# `ip netns add` bind-mounts /run/netns onto itself the first time; put the machine back as it
# was: that mount (and the folder) go again when this run made them and no namespace is left.
netns_dir=/run/netns
had_dir=0 had_mount=0
[ -d "$netns_dir" ] && had_dir=1
mountpoint -q "$netns_dir" 2>/dev/null && had_mount=1
restore_netns_dir() {
  [ -z "$(ip netns list 2>/dev/null)" ] || return 0
  if [ "$had_mount" = 0 ] && mountpoint -q "$netns_dir" 2>/dev/null; then umount "$netns_dir" || true; fi
  if [ "$had_dir" = 0 ]; then rmdir "$netns_dir" 2>/dev/null || true; fi
}
skip() { restore_netns_dir; echo "turn: SKIPPED: $* (the TURN tests need network namespaces)" >&2; exit 0; }
[ "$(id -u)" -eq 0 ] || { echo "turn: SKIPPED: not root (the TURN tests need network namespaces)" >&2; exit 0; }
command -v ip >/dev/null || skip "no 'ip' (iproute2)"
command -v iptables-restore >/dev/null || skip "no iptables"
command -v turnserver >/dev/null || skip "no turnserver (coturn)"
probe="ostprobe$$"
ip netns add "$probe" 2>/dev/null || skip "'ip netns add' is not permitted here"
ip netns del "$probe"

prefix="ost$$"
tests=""
# The tests' files (coturn's config with the secret, Chromium's wrapper) live here, so that they
# go with the network even when the runner is killed before its own cleanup.
OPENSPACE_TURN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/openspace-turn-XXXXXX")
export OPENSPACE_TURN_DIR
cleanup() {
  trap - EXIT INT TERM
  [ -z "$tests" ] || kill "$tests" 2>/dev/null || true
  e2e/turn/net.sh down "$prefix"
  rm -rf "$OPENSPACE_TURN_DIR"
  restore_netns_dir
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
e2e/turn/net.sh up "$prefix"
# In the background so that a signal interrupts `wait` at once: the trap ends the test runner,
# then net.sh ends whatever it had started inside the namespaces and deletes them.
# With an argument, that script (e2e/turn/bench.mjs) runs instead of the tests.
if [ $# -gt 0 ]; then
  OPENSPACE_TURN_NET="$prefix" node "$@" &
else
  OPENSPACE_TURN_NET="$prefix" node --test --test-concurrency=1 e2e/turn/ &
fi
tests=$!
status=0
wait "$tests" || status=$?
tests=""
exit "$status"
