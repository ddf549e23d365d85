#!/usr/bin/env bash
# The GPU path on a machine with an NVIDIA GPU: not part of CI (`make test` never needs a GPU).
# Run it wherever a GPU machine is available and record what it prints in BENCHMARKS.md with the
# date and the GPU's name. On a machine without a GPU it runs what it can and says what it could
# not do.
#
#   scripts/gpu-check.sh            # uses target/release/openspace-agent (built when cargo is here)
#   OPENSPACE_AGENT=/path/to/openspace-agent scripts/gpu-check.sh
#
# What it does, each step saying what it found:
# 1. The GPU and driver: nvidia-smi's name and driver version, the kernel driver, the X driver
#    module (nvidia_drv.so) the agent's `--x11-driver auto` looks for.
# 2. Installs what is missing (Xorg, the dummy driver, mesa-utils, GStreamer's plugins) when apt
#    can reach Debian; otherwise names what is missing and goes on without it.
# 3. Starts the agent the way a GPU node runs it (`--instance-kind x11 --x11-server xorg
#    --x11-driver nvidia`, so Xorg runs with the configuration the agent writes), and for
#    comparison Xorg with the dummy driver and Xvfb, each at 1280x720 and 1920x1080, with an
#    instance that prints its GL renderer (`glxinfo -B`: on nvidia it must not be llvmpipe) and
#    runs glxgears fullscreen without vsync (the GL benchmark Debian ships in mesa-utils), and
#    prints its frame rate.
# 4. Tries each GStreamer encoder (`--encoder gst:ELEMENT`): which exist, and the time per frame
#    of 300 frames of 1280x720 and 1920x1080 (videotestsrc -> ELEMENT with the agent's low-delay
#    settings at 3 Mbit/s -> fakesink; the source's own time measured alone and subtracted).
set -uo pipefail
cd "$(dirname "$0")/.."

say() { printf '%s\n' "$*"; }
section() { printf '\n== %s\n' "$*"; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/openspace-gpu-check.XXXXXX")
AGENT_PID=""
cleanup() {
  [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- 1. the GPU and its driver
section "GPU and driver"
gpu=none
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  gpu=$(nvidia-smi --query-gpu=name,driver_version,pci.bus_id --format=csv,noheader | head -1)
  say "GPU: $gpu"
else
  say "no NVIDIA GPU visible (nvidia-smi missing or it lists none): the nvidia runs are skipped"
fi
if [ -r /proc/driver/nvidia/version ]; then
  say "kernel driver: $(head -1 /proc/driver/nvidia/version)"
  say "GPUs in /proc/driver/nvidia/gpus: $(ls /proc/driver/nvidia/gpus 2>/dev/null | tr '\n' ' ')"
else
  say "kernel driver: not loaded (/proc/driver/nvidia/version missing)"
fi
xmodule=""
for dir in /usr/lib/x86_64-linux-gnu/nvidia/xorg /usr/lib/aarch64-linux-gnu/nvidia/xorg \
           /usr/lib/xorg/modules/drivers /usr/lib64/xorg/modules/drivers; do
  [ -e "$dir/nvidia_drv.so" ] && { xmodule="$dir/nvidia_drv.so"; break; }
done
say "X driver module: ${xmodule:-missing (nvidia_drv.so; Debian: xserver-xorg-video-nvidia matching the kernel driver, or the display capability of the container toolkit)}"

# ---- 2. what the checks run
section "Tools"
need=()
command -v Xorg >/dev/null || need+=(xserver-xorg-core)
[ -e /usr/lib/xorg/modules/drivers/dummy_drv.so ] || need+=(xserver-xorg-video-dummy)
command -v Xvfb >/dev/null || need+=(xvfb)
command -v glxgears >/dev/null || need+=(mesa-utils)
command -v gst-launch-1.0 >/dev/null || need+=(gstreamer1.0-tools)
for p in gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || need+=("$p")
done
if ((${#need[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if timeout 60 $sudo apt-get update -qq >/dev/null 2>&1 \
     && DEBIAN_FRONTEND=noninteractive timeout 600 $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1; then
    say "installed: ${need[*]}"
  else
    say "could not install (no apt, or Debian unreachable): ${need[*]}; the steps needing them are skipped"
  fi
fi
for tool in Xorg Xvfb glxgears glxinfo gst-launch-1.0 gst-inspect-1.0; do
  command -v "$tool" >/dev/null && say "$tool: $(command -v "$tool")" || say "$tool: missing"
done

agent=${OPENSPACE_AGENT:-}
if [ -z "$agent" ]; then
  for candidate in target/release/openspace-agent "${CARGO_TARGET_DIR:-target}/release/openspace-agent"; do
    [ -x "$candidate" ] && { agent=$candidate; break; }
  done
fi
if [ -z "$agent" ] && command -v cargo >/dev/null; then
  say "building the agent (cargo build --release)..."
  cargo build --release --locked -p openspace-agent --bins >"$WORK/build.log" 2>&1 \
    && agent="${CARGO_TARGET_DIR:-target}/release/openspace-agent"
fi
cmd_bin="$(dirname "${agent:-/nonexistent}")/openspace-cmd"
if [ -z "$agent" ] || [ ! -x "$agent" ] || [ ! -x "$cmd_bin" ]; then
  say "agent: missing (set OPENSPACE_AGENT, or build with cargo): the X server runs are skipped"
  agent=""
else
  say "agent: $agent"
fi

# ---- 3. OpenGL on each X server, through the agent
section "OpenGL on the agent's X servers (glxgears fullscreen, no vsync)"
# The instance: its GL renderer, then glxgears' own frame rate lines, into files of its own.
cat >"$WORK/instance.sh" <<'EOF'
#!/bin/sh
out=$1
glxinfo -B >"$out.glxinfo" 2>&1
exec env vblank_mode=0 __GL_SYNC_TO_VBLANK=0 glxgears >"$out.fps" 2>&1
EOF
chmod +x "$WORK/instance.sh"

# run_gl NAME SERVER DRIVER: one agent, START at each size, 16 s of glxgears, STOP.
run_gl() {
  local name=$1 server=$2 driver=$3
  local port=$((24000 + RANDOM % 2000))
  "$agent" --command-listen "127.0.0.1:$port" --http-listen 127.0.0.1:0 --signaling-listen 127.0.0.1:0 \
    --api-base-port $((port + 10)) --api-tcp-base-port 0 --capacity 1 --instance-kind x11 \
    --instance-command "$WORK/instance.sh $WORK/$name-{width}x{height}" \
    --x11-server "$server" --x11-driver "$driver" --x11-display-base $((300 + RANDOM % 200)) \
    --start-timeout 30s >"$WORK/$name.agent.log" 2>&1 &
  AGENT_PID=$!
  local cmd=("$cmd_bin" --url "ws://127.0.0.1:$port")
  for _ in $(seq 50); do "${cmd[@]}" server-status >/dev/null 2>&1 && break; sleep 0.2; done
  if ! kill -0 "$AGENT_PID" 2>/dev/null; then
    say "$name: the agent did not start: $(grep -iE 'error|refus|nvidia' "$WORK/$name.agent.log" | tail -2)"
    AGENT_PID=""; return
  fi
  for size in 1280x720 1920x1080; do
    local w=${size%x*} h=${size#*x} base="$WORK/$name-$size"
    "${cmd[@]}" start --width "$w" --height "$h" >/dev/null
    local state=""
    for _ in $(seq 150); do
      state=$("${cmd[@]}" status 0 2>/dev/null | sed -n 's/.*"status":"\([A-Z]*\)".*/\1/p')
      [ "$state" = RUNNING ] || [ "$state" = IDLE ] && break
      sleep 0.2
    done
    if [ "$state" != RUNNING ]; then
      say "$name $size: not running ($("${cmd[@]}" status 0 2>/dev/null | sed -n 's/.*"reason":"\([^"]*\)".*/\1/p'))"
      "${cmd[@]}" stop 0 >/dev/null 2>&1; sleep 1; continue
    fi
    sleep 16   # glxgears prints its rate every 5 s; the first line includes its start
    local renderer fps
    renderer=$(sed -n 's/^OpenGL renderer string: //p' "$base.glxinfo" 2>/dev/null)
    fps=$(grep -o '= [0-9.]* FPS' "$base.fps" 2>/dev/null | tail -2 | awk '{s+=$2; n++} END {if (n) printf "%.0f", s/n}')
    say "$name $size: renderer: ${renderer:-unknown}; glxgears: ${fps:-?} fps"
    if [ "$driver" = nvidia ] && [[ "${renderer:-}" == *llvmpipe* ]]; then
      say "$name $size: FAIL: the nvidia Xorg renders with llvmpipe (the NVIDIA GLX module was not loaded)"
    fi
    "${cmd[@]}" stop 0 >/dev/null
    for _ in $(seq 50); do "${cmd[@]}" status 0 2>/dev/null | grep -q IDLE && break; sleep 0.2; done
  done
  kill "$AGENT_PID" 2>/dev/null; wait "$AGENT_PID" 2>/dev/null; AGENT_PID=""
}

if [ -n "$agent" ]; then
  if [ "$gpu" != none ] && [ -n "$xmodule" ] && command -v Xorg >/dev/null; then
    run_gl xorg-nvidia xorg nvidia
  else
    say "xorg-nvidia: skipped (needs the GPU, its kernel driver, nvidia_drv.so and Xorg)"
  fi
  if command -v Xorg >/dev/null; then run_gl xorg-dummy xorg dummy; else say "xorg-dummy: skipped (no Xorg)"; fi
  if command -v Xvfb >/dev/null; then run_gl xvfb xvfb auto; else say "xvfb: skipped (no Xvfb)"; fi
fi

# ---- 4. the GStreamer encoders
section "GStreamer encoders (300 frames, videotestsrc -> ELEMENT -> fakesink)"
if ! command -v gst-launch-1.0 >/dev/null; then
  say "skipped: no gst-launch-1.0 (gstreamer1.0-tools)"
else
  # The low-delay settings the agent gives each element (agent/src/media/encoder/gst.rs), 3 Mbit/s.
  settings() {
    case $1 in
      x264enc) echo "tune=zerolatency speed-preset=ultrafast bitrate=3000 key-int-max=300 bframes=0 threads=2" ;;
      vp8enc) echo "deadline=1 cpu-used=8 end-usage=cbr target-bitrate=3000000 lag-in-frames=0 threads=2" ;;
      nvh264enc) echo "preset=low-latency-hq rc-mode=cbr bitrate=3000 gop-size=300 bframes=0 zerolatency=true" ;;
      vah264enc) echo "rate-control=cbr bitrate=3000 key-int-max=300 b-frames=0" ;;
      *) echo "" ;;
    esac
  }
  # gst_ms SIZE [ELEMENT]: wall time in ms of 300 frames through ELEMENT (none: the source alone).
  gst_ms() {
    local w=${1%x*} h=${1#*x} element=${2:-}
    local pipeline=(videotestsrc num-buffers=300 pattern=smpte ! "video/x-raw,format=I420,width=$w,height=$h,framerate=30/1")
    # shellcheck disable=SC2206 # the element's properties are separate words
    [ -n "$element" ] && pipeline+=(! $element $(settings "$element"))
    pipeline+=(! fakesink sync=false)
    local t0 t1
    t0=$(date +%s%N)
    timeout 120 gst-launch-1.0 -q "${pipeline[@]}" >"$WORK/gst.log" 2>&1 || return 1
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
  }
  for size in 1280x720 1920x1080; do
    base_ms=$(gst_ms "$size") || base_ms=0
    for element in nvh264enc nvautogpuh264enc vah264enc vaapih264enc x264enc vp8enc; do
      if ! gst-inspect-1.0 "$element" >/dev/null 2>&1; then
        say "$size $element: not on this machine"
        continue
      fi
      if total=$(gst_ms "$size" "$element"); then
        say "$size $element: $(awk -v t="$total" -v b="$base_ms" 'BEGIN {printf "%.2f ms/frame", (t - b) / 300}') (total $total ms, source alone $base_ms ms)"
      else
        say "$size $element: present but failed: $(grep -iE 'error|fail' "$WORK/gst.log" | head -1)"
      fi
    done
  done
fi
say ""
say "gpu-check: done ($(date -u +%Y-%m-%d), GPU: $gpu)"
