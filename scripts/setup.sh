#!/usr/bin/env bash
# Installs what building and testing need on Debian, only when missing. Idempotent and quick.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=()
command -v python3 >/dev/null || packages+=(python3)     # test instances that open a TCP port
command -v cc >/dev/null || packages+=(build-essential)
command -v pkg-config >/dev/null || packages+=(pkg-config)
command -v nasm >/dev/null || packages+=(nasm)           # openh264's SIMD assembly (3x faster)
command -v node >/dev/null || packages+=(nodejs npm)     # the browser tests' runner
[ -x /usr/bin/chromium ] || packages+=(chromium)         # headless browser for WebRTC tests
[ -x /usr/bin/firefox-esr ] || packages+=(firefox-esr)   # the browser without H.264 (codec tests)
pkg-config --exists vpx 2>/dev/null || packages+=(libvpx-dev)   # the VP8 encoder
# The agent's GStreamer encoders (cargo feature `gstreamer`): x264enc and vp8enc test that path.
pkg-config --exists gstreamer-app-1.0 2>/dev/null || packages+=(libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev)
for p in gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || packages+=("$p")
done
# `make bench` only: the reference sender (agent/examples/reference_sender.rs, feature
# reference-sender) is GStreamer's webrtcbin (plugins-bad) with libnice's ICE.
case " ${MAKECMDGOALS:-} " in
  *" bench "*)
    pkg-config --exists gstreamer-webrtc-1.0 2>/dev/null || packages+=(libgstreamer-plugins-bad1.0-dev)
    for p in gstreamer1.0-plugins-bad gstreamer1.0-nice; do
      [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || packages+=("$p")
    done ;;
esac
/usr/bin/python3 -c 'import websockets' 2>/dev/null || packages+=(python3-websockets)  # seed supervisor
/usr/bin/python3 -c 'import yaml' 2>/dev/null || packages+=(python3-yaml)  # scripts/chart-check.sh
python3 -c 'import ensurepip, venv' 2>/dev/null || packages+=(python3-venv)  # the openspace-api venv
command -v Xvfb >/dev/null || packages+=(xvfb)            # x11 instances' virtual displays
command -v xterm >/dev/null || packages+=(xterm)          # x11 tests' programs
command -v glxgears >/dev/null || packages+=(mesa-utils)  # x11 tests: OpenGL through Mesa
command -v xdpyinfo >/dev/null || packages+=(x11-utils)   # x11 tests read the display's size
# x11 instances on Xorg (--x11-server xorg): the server, its dummy video driver (CPU, Mesa's GLX;
# the nvidia driver comes from the node's driver on GPU machines) and the dummy's input-less config.
command -v Xorg >/dev/null || packages+=(xserver-xorg-core)
[ -e /usr/lib/xorg/modules/drivers/dummy_drv.so ] || packages+=(xserver-xorg-video-dummy)
command -v stellarium >/dev/null || packages+=(stellarium)  # the OpenGL stand-in for OpenSpace
command -v turnserver >/dev/null || packages+=(coturn)    # the TURN relay of e2e/turn
command -v ip >/dev/null || packages+=(iproute2)          # e2e/turn's network namespaces
# The real node of e2e/cluster: container runtime, pod network, image builds without a registry.
for p in containerd runc containernetworking-plugins iptables conntrack debootstrap buildah; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || packages+=("$p")
done

if ((${#packages[@]})); then
  echo "setup: installing ${packages[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  # Some maintainer scripts (coturn's) start their system service through invoke-rc.d; on a
  # machine without an init system (CI, containers) that start fails and leaves the package
  # half-configured, which breaks every later apt-get. Debian's way to say "start no services
  # here" is a policy-rc.d that exits 101, as container images ship: use one for this install
  # and put back whatever was there.
  policy=/usr/sbin/policy-rc.d saved=""
  if [ -e "$policy" ]; then saved=$(mktemp); $sudo cp -p "$policy" "$saved"; fi
  restore_policy() {
    if [ -n "$saved" ]; then $sudo cp -p "$saved" "$policy"; rm -f "$saved"; else $sudo rm -f "$policy"; fi
  }
  trap restore_policy EXIT
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}"
  restore_policy
  trap - EXIT
fi

if ! command -v cargo >/dev/null; then
  echo "setup: cargo is missing; install Rust (rustup) first" >&2
  exit 1
fi
if command -v rustup >/dev/null; then
  installed=$(rustup component list --installed 2>/dev/null || true)
  for c in rustfmt clippy; do
    grep -q "^$c" <<<"$installed" || rustup component add "$c"
  done
fi

# The browser tests' npm dependencies: playwright-core drives Chromium, puppeteer-core Firefox ESR.
if [ ! -d e2e/browser/node_modules/playwright-core ] || [ ! -d e2e/browser/node_modules/puppeteer-core ]; then
  (cd e2e/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

# OpenSpace's Python client (PyPI openspace-api, pinned) in a cached venv: the TCP API's tests.
scripts/python-api-venv.sh >/dev/null

# etcd + kube-apiserver v1.20.2 (built once from Debian's source, cached under ~/.cache), kubectl
# and helm: the operator's tests and `make demo` run a real control plane. The node's binaries
# (kubelet, scheduler, controller-manager, proxy, pause) only for what runs a real node.
case " ${MAKECMDGOALS:-} " in
  *" test "*|*" cluster "*|*" cluster-demo "*) e2e/control-plane/build-tools.sh --quiet --node >/dev/null ;;
  *) e2e/control-plane/build-tools.sh --quiet >/dev/null ;;
esac
