#!/usr/bin/env bash
# images.sh: build the container images the chart test on a real node needs, without a registry
# and without a Docker daemon, and write each as a docker-archive tar for `ctr images import`.
#
#   docker.io/library/debian:bookworm-slim  debootstrap (minbase) of the Debian mirror apt uses,
#                                           without docs, locales, apt lists, cached debs
#   localhost/pause:3.2                     the static pause binary of build-tools.sh --node
#   localhost/openspace-operator:test       docker/operator.Dockerfile --target prebuilt
#   localhost/openspace-agent:test          docker/agent.Dockerfile --target prebuilt
#   localhost/openspace-agent-x11:test      docker/agent.Dockerfile --target prebuilt-x11
#
# The openspace images are the shipped Dockerfiles with this machine's cargo binaries
# ($CARGO_TARGET_DIR/debug/ by default) instead of their rust build stage (no rust image can be
# pulled here); `buildah bud --pull=never --network host --layers`. Everything lives under
# ${OPENSPACE_CACHE:-$HOME/.cache/openspace-k8s}/images: the rootfs tar (debootstrap runs once per
# machine), buildah's storage (so layers are reused), the archives and their input keys. An
# image is rebuilt only when its inputs change (hash of the Dockerfile, the binaries, the base
# image and this recipe); a run with nothing changed takes a few seconds. Runs are serialised
# with a lock. Needs root, debootstrap, buildah; `import` needs ctr.
#
# Usage: images.sh [build] [--release] [--no-strip] [--quiet]
#        images.sh import SOCKET [--release] [--no-strip] [--quiet]
#   build            (default) build what changed; print IMAGE=ref ARCHIVE=path per image
#   import SOCKET    build, then import every archive into the containerd at SOCKET, namespace
#                    k8s.io (CONTAINERD_NAMESPACE), unpacked for CONTAINERD_SNAPSHOTTER (ctr's
#                    default: overlayfs); an image already there from the same archive is skipped
#   --release        binaries from $CARGO_TARGET_DIR/release instead of debug
#   --no-strip       copy the binaries as they are (default: strip --strip-debug, which keeps
#                    symbols, so backtraces still name functions)
#   --quiet          print only the IMAGE=... lines
# Environment:
#   OPENSPACE_CACHE     cache root (default $HOME/.cache/openspace-k8s)
#   CARGO_TARGET_DIR    cargo's target dir (default $OPENSPACE_CACHE/target); the binaries
#                       openspace-{agent,cmd,operator,frontend} must have been built there
#   PAUSE               the pause binary; default: the PAUSE= line of build-tools.sh --node
#                       (which builds Kubernetes' node binaries first if they are missing)
#   DEBIAN_MIRROR       default: the first bookworm URI in /etc/apt/sources.list.d/debian.sources
#                       (or /etc/apt/sources.list), else http://deb.debian.org/debian
# Output (stdout): one line per image, `IMAGE=<ref> ARCHIVE=<path>`; progress and the time each
# step took go to stderr.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE="${OPENSPACE_CACHE:-$HOME/.cache/openspace-k8s}"
IMAGES="$CACHE/images"
TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"

# Bumped when a recipe below changes in a way the keys cannot see.
RECIPE=2
SUITE=bookworm
BASE_REF=docker.io/library/debian:bookworm-slim
PAUSE_REF=localhost/pause:3.2
# name  ref  dockerfile  target  binaries (comma-separated)
APPS=(
  "openspace-operator localhost/openspace-operator:test docker/operator.Dockerfile prebuilt openspace-operator,openspace-frontend"
  "openspace-agent localhost/openspace-agent:test docker/agent.Dockerfile prebuilt openspace-agent,openspace-cmd"
  "openspace-agent-x11 localhost/openspace-agent-x11:test docker/agent.Dockerfile prebuilt-x11 openspace-agent,openspace-cmd"
)

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

CMD=build
SOCKET=
PROFILE=debug
STRIP=1
QUIET=0
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    build) CMD=build ;;
    import)
      CMD=import
      SOCKET="${args[i + 1]:-}"
      [[ -n $SOCKET && $SOCKET != -* ]] || { echo "images.sh: import needs the containerd socket" >&2; exit 2; }
      i=$((i + 1))
      ;;
    --release) PROFILE=release ;;
    --no-strip) STRIP=0 ;;
    --quiet | -q) QUIET=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "images.sh: unknown argument '${args[i]}' (try --help)" >&2; exit 2 ;;
  esac
done

log() { [[ $QUIET == 1 ]] || echo "images: $*" >&2; }
die() { echo "images: ERROR: $*" >&2; exit 1; }
# Seconds since $1 (an $EPOCHREALTIME), one decimal.
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
sha() { sha256sum | cut -c1-64; }

[[ $(id -u) == 0 ]] || die "run as root (debootstrap, buildah and ctr need it)"
for tool in buildah debootstrap sha256sum flock; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install $tool)"
done
[[ $CMD != import ]] || command -v ctr >/dev/null || die "ctr not found (apt-get install containerd)"

mkdir -p "$IMAGES"
exec 9>"$IMAGES/.lock"
if ! flock -n 9; then
  log "waiting for another images.sh run to finish"
  flock 9
fi
T_ALL=$EPOCHREALTIME

# ---- buildah's storage, under the cache so that a later run reuses layers.
# overlay (vfs would copy the whole tree for every layer); skip_mount_home: containers/storage
# may otherwise bind-mount its overlay folder onto itself. After a run nothing stays mounted
# (checked with `mount | grep -E 'buildah|overlay'`). The runroot holds mount counts and locks:
# reset it after a reboot, when none of it is true any more.
STORE="$IMAGES/storage"
mkdir -p "$STORE/root" "$STORE/run"
boot_id=$(cat /proc/sys/kernel/random/boot_id)
if [[ $(cat "$STORE/boot_id" 2>/dev/null) != "$boot_id" ]]; then
  rm -rf "$STORE/run" && mkdir -p "$STORE/run"
  echo "$boot_id" >"$STORE/boot_id"
fi
BUILDAH=(buildah --root "$STORE/root" --runroot "$STORE/run" --storage-driver overlay
  --storage-opt overlay.skip_mount_home=true)
# Working containers of an interrupted run would hold their layers: remove them on exit.
CONTAINERS=()
cleanup() {
  local c
  for c in "${CONTAINERS[@]}"; do "${BUILDAH[@]}" rm "$c" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

image_id() { "${BUILDAH[@]}" inspect --type image --format '{{.FromImageID}}' "$1" 2>/dev/null || true; }

# retire OLD REF: remove the image REF pointed at before it was rebuilt (buildah also removes
# its untagged parents that nothing else uses); the layers the new image shares stay.
retire() {
  [[ -n $1 && $1 != "$(image_id "$2")" ]] || return 0
  "${BUILDAH[@]}" rmi "$1" >/dev/null 2>&1 || true
}

# export REF NAME KEY: write REF to $IMAGES/NAME.tar and record KEY next to it.
export_archive() {
  local ref=$1 name=$2 key=$3 t=$EPOCHREALTIME
  rm -f "$IMAGES/$name.tar" "$IMAGES/$name.key" "$IMAGES/$name.tar.tmp"
  "${BUILDAH[@]}" push --quiet "$ref" "docker-archive:$IMAGES/$name.tar.tmp:$ref" >/dev/null
  mv "$IMAGES/$name.tar.tmp" "$IMAGES/$name.tar"
  echo "$key" >"$IMAGES/$name.key"
  log "$name: archive $(du -m "$IMAGES/$name.tar" | cut -f1) MB in $(since "$t") s"
}
# fresh NAME KEY REF: true when the archive of NAME was made from KEY and REF is in storage.
fresh() {
  [[ -f $IMAGES/$1.tar && $(cat "$IMAGES/$1.key" 2>/dev/null) == "$2" && -n $(image_id "$3") ]]
}
OUT=()

# ---- base: debian:bookworm-slim from debootstrap.
# The mirror apt uses here (deb822 first, then the one-line format).
mirror() {
  local m=${DEBIAN_MIRROR:-}
  if [[ -z $m && -r /etc/apt/sources.list.d/debian.sources ]]; then
    # The URIs of the first stanza whose Suites name bookworm itself (not -security).
    m=$(awk -v s="$SUITE" '
      /^[[:space:]]*$/ { if (uri != "" && ok) { print uri; exit } uri = ""; ok = 0; next }
      /^URIs:/ { uri = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
      END { if (uri != "" && ok) print uri }' /etc/apt/sources.list.d/debian.sources | head -1)
  fi
  if [[ -z $m && -r /etc/apt/sources.list ]]; then
    m=$(awk -v s="$SUITE" '$1 == "deb" && $3 == s { print $2; exit }' /etc/apt/sources.list)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}
MIRROR=$(mirror)
# Security updates come from debian-security next to the mirror, as in Debian's own image.
SECURITY_MIRROR=${MIRROR%/debian}/debian-security
[[ $SECURITY_MIRROR != "$MIRROR/debian-security" ]] || SECURITY_MIRROR=http://deb.debian.org/debian-security

ROOTFS_KEY=$(printf '%s\n' "$RECIPE" "$SUITE" minbase "$MIRROR" "$SECURITY_MIRROR" | sha | cut -c1-16)
ROOTFS="$IMAGES/base/rootfs-$SUITE-$ROOTFS_KEY.tar"
build_rootfs() {
  local t=$EPOCHREALTIME dir="$IMAGES/base/rootfs.tmp"
  log "base: debootstrap --variant=minbase $SUITE from $MIRROR (about a minute)"
  rm -rf "$dir" && mkdir -p "$dir"
  debootstrap --variant=minbase "$SUITE" "$dir" "$MIRROR" >"$IMAGES/base/debootstrap.log" 2>&1 ||
    die "debootstrap failed; see $IMAGES/base/debootstrap.log"
  # What Debian's slim image leaves out, also for packages installed later (dpkg path-exclude).
  rm -rf "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/info/* \
    "$dir"/usr/share/locale/* "$dir"/usr/share/lintian/* "$dir"/var/lib/apt/lists/* \
    "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb "$dir"/var/cache/debconf/*-old
  cat >"$dir/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
# images.sh: keep docs, man pages and translations out, as Debian's slim image does.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
  # apt as configured in Debian's image: no package caches or downloaded debs left in a layer
  # (without this an `apt-get install` layer carries 80 MB of /var/cache/apt/*.bin), no
  # translations, compressed lists; no services started by package scripts.
  cat >"$dir/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::Languages "none";' >"$dir/etc/apt/apt.conf.d/docker-no-languages"
  echo 'Acquire::GzipIndexes "true";' >"$dir/etc/apt/apt.conf.d/docker-gzip-indexes"
  printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
  chmod 0755 "$dir/usr/sbin/policy-rc.d"
  # apt's sources as in Debian's image (deb822), with this machine's mirror.
  rm -f "$dir/etc/apt/sources.list"
  cat >"$dir/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # The host's files that debootstrap copied in; the container runtime provides its own.
  rm -f "$dir/etc/resolv.conf" "$dir/etc/hostname"
  : >"$dir/etc/machine-id" 2>/dev/null || true
  find "$dir/var/log" -type f -exec truncate -s 0 {} +
  tar --numeric-owner -cf "$ROOTFS.tmp" -C "$dir" .
  mv "$ROOTFS.tmp" "$ROOTFS"
  rm -rf "$dir"
  log "base: rootfs $(du -m "$ROOTFS" | cut -f1) MB in $(since "$t") s"
}

step_base() {
  local t=$EPOCHREALTIME c id
  mkdir -p "$IMAGES/base"
  if [[ ! -f $ROOTFS ]]; then
    rm -f "$IMAGES"/base/rootfs-*.tar
    build_rootfs
  fi
  # The image in buildah's storage, made from this rootfs (its key is in the image's labels).
  id=$(image_id "$BASE_REF")
  if [[ -z $id || $("${BUILDAH[@]}" inspect --type image \
    --format '{{index .ImageAnnotations "org.openspace.rootfs"}}' "$BASE_REF") != "$ROOTFS_KEY" ]]; then
    local t1=$EPOCHREALTIME
    c=$("${BUILDAH[@]}" from --pull=never scratch); CONTAINERS+=("$c")
    # add, not copy: add unpacks the tar keeping its owners and modes (copy resets ownership).
    "${BUILDAH[@]}" add --quiet "$c" "$ROOTFS" / >/dev/null
    "${BUILDAH[@]}" config --cmd '["bash"]' \
      --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      --annotation "org.openspace.rootfs=$ROOTFS_KEY" "$c"
    "${BUILDAH[@]}" commit --quiet --rm "$c" "$BASE_REF" >/dev/null
    CONTAINERS=()
    retire "$id" "$BASE_REF"
    id=$(image_id "$BASE_REF")
    log "base: $BASE_REF committed in $(since "$t1") s"
  fi
  BASE_ID=$id
  local name=debian-bookworm-slim
  fresh "$name" "$BASE_ID" "$BASE_REF" || export_archive "$BASE_REF" "$name" "$BASE_ID"
  OUT+=("IMAGE=$BASE_REF ARCHIVE=$IMAGES/$name.tar")
  log "base: $(since "$t") s"
}

# ---- pause: the sandbox image, one static binary.
step_pause() {
  local t=$EPOCHREALTIME c key old name=pause
  if [[ -z ${PAUSE:-} ]]; then
    log "pause: asking e2e/control-plane/build-tools.sh --node for the pause binary"
    PAUSE=$("$REPO/e2e/control-plane/build-tools.sh" --quiet --node | sed -n 's/^PAUSE=//p')
  fi
  [[ -x $PAUSE ]] || die "pause binary '$PAUSE' not found"
  key=$(printf '%s\n' "$RECIPE" "$PAUSE_REF" "$(sha <"$PAUSE")" | sha)
  if ! fresh "$name" "$key" "$PAUSE_REF"; then
    old=$(image_id "$PAUSE_REF")
    c=$("${BUILDAH[@]}" from --pull=never scratch); CONTAINERS+=("$c")
    "${BUILDAH[@]}" copy --quiet --chmod 0755 "$c" "$PAUSE" /pause >/dev/null
    "${BUILDAH[@]}" config --entrypoint '["/pause"]' "$c"
    "${BUILDAH[@]}" commit --quiet --rm "$c" "$PAUSE_REF" >/dev/null
    CONTAINERS=()
    retire "$old" "$PAUSE_REF"
    export_archive "$PAUSE_REF" "$name" "$key"
  fi
  OUT+=("IMAGE=$PAUSE_REF ARCHIVE=$IMAGES/$name.tar")
  log "pause: $(since "$t") s"
}

# ---- the openspace images.
# bin_hash PATH: sha256 of a file, remembered by its size, mtime, ctime and inode so that a warm
# run does not read hundreds of MB of binaries again.
HASHES="$IMAGES/hashes"
bin_hash() {
  local stamp h
  stamp="$1 $(stat -c '%s %.9Y %.9Z %i' "$1")"
  h=$(awk -v s="$stamp" 'substr($0, 1, length(s)) == s { print $NF }' "$HASHES" 2>/dev/null | tail -1)
  if [[ -z $h ]]; then
    h=$(sha <"$1")
    { grep -v "^$1 " "$HASHES" 2>/dev/null || true; echo "$stamp $h"; } >"$HASHES.tmp"
    mv "$HASHES.tmp" "$HASHES"
  fi
  echo "$h"
}

step_app() {
  local name=$1 ref=$2 dockerfile=$3 target=$4 bins=$5 t=$EPOCHREALTIME
  local bin path key old ctx="$IMAGES/context/$name"
  local -a binlist
  IFS=, read -ra binlist <<<"$bins"
  key=$(
    printf '%s\n' "$RECIPE" "$ref" "$target" "$BASE_ID" "strip=$STRIP"
    sha <"$REPO/$dockerfile"
    for bin in "${binlist[@]}"; do
      path="$TARGET_DIR/$PROFILE/$bin"
      [[ -x $path ]] || die "$path not found: build it first (cargo build --workspace --bins$([[ $PROFILE == release ]] && echo ' --release'))"
      echo "$bin $(bin_hash "$path")"
    done
  )
  key=$(sha <<<"$key")
  if ! fresh "$name" "$key" "$ref"; then
    # A build context of its own holding only prebuilt/: the repository's .dockerignore does not
    # apply to it, and nothing else of the repository is sent.
    local t1=$EPOCHREALTIME
    rm -rf "$ctx" && mkdir -p "$ctx/prebuilt"
    for bin in "${binlist[@]}"; do
      path="$TARGET_DIR/$PROFILE/$bin"
      if [[ $STRIP == 1 ]]; then
        strip --strip-debug -o "$ctx/prebuilt/$bin" "$path"
      else
        cp "$path" "$ctx/prebuilt/$bin"
      fi
      chmod 0755 "$ctx/prebuilt/$bin"
    done
    log "$name: context ($(du -sm "$ctx" | cut -f1) MB, strip=$STRIP) in $(since "$t1") s"
    t1=$EPOCHREALTIME
    old=$(image_id "$ref")
    # --network host: otherwise buildah creates a cni-podman0 bridge and iptables chains that
    # stay after it exits. --pull=never: the base comes from step_base, never a registry.
    # --force-rm: no build container left behind by a failed step. --target prebuilt*: buildah
    # builds only the stages the target needs, so the rust stage (its image cannot be pulled
    # here) is skipped.
    if ! "${BUILDAH[@]}" bud --pull=never --network host --layers --force-rm \
      -f "$REPO/$dockerfile" --target "$target" -t "$ref" "$ctx" >"$IMAGES/$name.build.log" 2>&1; then
      tail -n 30 "$IMAGES/$name.build.log" >&2
      die "buildah bud of $dockerfile --target $target failed; see $IMAGES/$name.build.log"
    fi
    log "$name: buildah bud --target $target in $(since "$t1") s"
    retire "$old" "$ref"
    export_archive "$ref" "$name" "$key"
    rm -rf "$ctx"
  fi
  OUT+=("IMAGE=$ref ARCHIVE=$IMAGES/$name.tar")
  log "$name: $(since "$t") s"
}

step_base
step_pause
for app in "${APPS[@]}"; do
  # shellcheck disable=SC2086 # the fields are single words
  step_app $app
done
log "all images in $(since "$T_ALL") s"

# ---- import into containerd.
if [[ $CMD == import ]]; then
  [[ -S $SOCKET ]] || die "$SOCKET is not a socket (is containerd running?)"
  ns=${CONTAINERD_NAMESPACE:-k8s.io}
  CTR=(ctr --address "$SOCKET" --namespace "$ns")
  t=$EPOCHREALTIME
  for line in "${OUT[@]}"; do
    ref=${line#IMAGE=}; ref=${ref%% *}; archive=${line##*ARCHIVE=}
    name=$(basename "$archive" .tar)
    t1=$EPOCHREALTIME
    # The manifest digest ctr gave this archive last time: if the image still has it (and the
    # archive is unchanged), it is already there. The digest file is per archive key.
    digest_file="$IMAGES/$name.digest"
    want=$(awk -v k="$(cat "$IMAGES/$name.key")" '$1 == k { print $2 }' "$digest_file" 2>/dev/null || true)
    have=$("${CTR[@]}" images ls "name==$ref" 2>/dev/null | awk 'NR == 2 { print $3 }')
    if [[ -n $want && $want == "$have" ]]; then
      log "import: $ref already in $ns"
      continue
    fi
    "${CTR[@]}" images import ${CONTAINERD_SNAPSHOTTER:+--snapshotter "$CONTAINERD_SNAPSHOTTER"} \
      "$archive" >/dev/null
    have=$("${CTR[@]}" images ls "name==$ref" | awk 'NR == 2 { print $3 }')
    [[ -n $have ]] || die "import of $archive did not create $ref in $ns"
    echo "$(cat "$IMAGES/$name.key") $have" >"$digest_file"
    log "import: $ref in $(since "$t1") s"
  done
  log "import into $SOCKET ($ns): $(since "$t") s"
fi

printf '%s\n' "${OUT[@]}"
