#!/usr/bin/env bash
# The local demo: one rendering server (agent) on this machine with the built-in renderer, one
# instance started through the seed's command protocol, and the URL to watch and steer it.
# Ctrl-C stops everything. Set INSTANCE_COMMAND to run a program instead of the built-in renderer.
set -euo pipefail
cd "$(dirname "$0")/.."

COMMAND_ADDR=${COMMAND_ADDR:-127.0.0.1:4699}
HTTP_ADDR=${HTTP_ADDR:-0.0.0.0:4690}
SIGNALING_ADDR=${SIGNALING_ADDR:-0.0.0.0:8443}

echo "Building the agent (release; the first build takes a few minutes)..."
cargo build --quiet --release -p openspace-agent --bins
bin="${CARGO_TARGET_DIR:-target}/release"

if "$bin/openspace-cmd" --url "ws://$COMMAND_ADDR" --timeout 1 server-status >/dev/null 2>&1; then
  echo "demo: an agent already listens on $COMMAND_ADDR; stop it first (or set COMMAND_ADDR, HTTP_ADDR, SIGNALING_ADDR)" >&2
  exit 1
fi

args=(--command-listen "$COMMAND_ADDR" --http-listen "$HTTP_ADDR" --signaling-listen "$SIGNALING_ADDR")
[ -n "${INSTANCE_COMMAND:-}" ] && args+=(--instance-command "$INSTANCE_COMMAND")
RUST_LOG=${RUST_LOG:-info,webrtc=warn,rtc=warn} "$bin/openspace-agent" "${args[@]}" &
agent=$!
cleanup() {
  kill -TERM "$agent" 2>/dev/null || true
  wait "$agent" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

cmd() { "$bin/openspace-cmd" --url "ws://$COMMAND_ADDR" "$@"; }
for _ in $(seq 100); do
  if ! kill -0 "$agent" 2>/dev/null; then
    echo "demo: the agent did not start (see its log above; is another agent using these ports?)" >&2
    exit 1
  fi
  cmd server-status >/dev/null 2>&1 && break
  sleep 0.1
done

echo "== SERVER_STATUS";          cmd server-status
echo "== START (session demo)";   cmd start --session demo --width 1280 --height 720
echo "== STATUS 0";               cmd status 0
port=${HTTP_ADDR##*:}
cat <<MSG

The agent is up. Open this URL in a browser on this machine (drag to orbit, Shift+drag to pan,
wheel to zoom, WASD/arrows to turn, R to reset):

    http://127.0.0.1:$port/frontend/#/streaming?id=0&stats=1

  command API   ws://$COMMAND_ADDR   (try: $bin/openspace-cmd resolution 0 640 360)
  metrics       http://127.0.0.1:$port/metrics
Watching every slot change (Ctrl-C stops the agent and its instances):
MSG
cmd watch
