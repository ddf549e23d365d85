#!/usr/bin/env bash
# The local demo: one rendering server (agent) on loopback, one instance started through the
# seed's command protocol, and every slot change printed live. Ctrl-C stops everything.
#
# Until the built-in renderer lands, the instance is a small shell program that reports the
# placeholders it was started with; set INSTANCE_COMMAND to run something else.
set -euo pipefail
cd "$(dirname "$0")/.."

COMMAND_ADDR=${COMMAND_ADDR:-127.0.0.1:4699}
HTTP_ADDR=${HTTP_ADDR:-127.0.0.1:4690}
INSTANCE_COMMAND=${INSTANCE_COMMAND:-"sh -c 'echo instance {id} started at {width}x{height}, profile {profile}, API port {api_port}; exec sleep 86400'"}

cargo build --quiet -p openspace-agent --bins
bin="${CARGO_TARGET_DIR:-target}/debug"

"$bin/openspace-agent" --command-listen "$COMMAND_ADDR" --http-listen "$HTTP_ADDR" \
  --instance-command "$INSTANCE_COMMAND" &
agent=$!
cleanup() {
  kill -TERM "$agent" 2>/dev/null || true
  wait "$agent" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

cmd() { "$bin/openspace-cmd" --url "ws://$COMMAND_ADDR" "$@"; }
for _ in $(seq 100); do cmd server-status >/dev/null 2>&1 && break; sleep 0.1; done

echo "== SERVER_STATUS";         cmd server-status
echo "== START (session demo)";  cmd start --session demo --width 1280 --height 720
echo "== STATUS 0";              cmd status 0
echo
echo "The agent is up:"
echo "  command API   ws://$COMMAND_ADDR   (try: $bin/openspace-cmd stop 0)"
echo "  metrics       http://$HTTP_ADDR/metrics"
echo "Watching every slot change (Ctrl-C stops the agent and its instances):"
cmd watch
