# syntax=docker/dockerfile:1

# The openspace-agent image (with openspace-cmd). Build context: the repository root.
#
#   docker build -f docker/agent.Dockerfile -t openspace-agent:0.1.0 .
#
# The agent links libvpx.so.7 and libstdc++.so.6 besides glibc, so builder and runtime are both
# Debian 12 (bookworm): same glibc, same libvpx. See docker/README.md.
#
# Targets (the last stage is the default):
#   (default)     compiles the binaries in the rust stage
#   x11           the same plus what x11 instances run (Xvfb, Xorg with the dummy driver, Mesa)
#                 and a few X clients for tests
#   prebuilt      as the default, but the binaries come from prebuilt/openspace-agent and
#                 prebuilt/openspace-cmd of the build context; no rust stage is built
#   prebuilt-x11  x11 with the prebuilt binaries (prebuilt* is what e2e/cluster/images.sh builds)
#
#   docker build -f docker/agent.Dockerfile --target x11 -t openspace-agent-x11:0.1.0 .

ARG RUST_IMAGE=rust:1.89-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---- build
FROM ${RUST_IMAGE} AS build
# nasm:       openh264-sys2 assembles openh264's x86 SIMD kernels only when nasm is on PATH;
#             without it the build silently falls back to plain C (about 3x slower encoding).
# libvpx-dev: env-libvpx-sys links the system libvpx, found with pkg-config, and copies the
#             bindings pre-generated for exactly that version (bookworm: 1.12.0); no bindgen, so
#             no clang. A libvpx without pre-generated bindings (e.g. trixie's 1.15) fails the
#             build.
# pkg-config, g++ (openh264 is C++): already in the rust image; listed to make them explicit.
# No cmake: no -sys crate in Cargo.lock uses it (ring uses cc; rustls uses ring, not aws-lc).
RUN apt-get update \
 && apt-get install -y --no-install-recommends nasm libvpx-dev pkg-config g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only the workspace (every member: cargo loads all four manifests), so that edits to docs, the
# chart or e2e/ keep this layer and the build below.
COPY Cargo.toml Cargo.lock ./
COPY agent agent
COPY crds crds
COPY frontend frontend
COPY operator operator
COPY protocol protocol
COPY viewer viewer
# The release profile keeps line tables (debug = 1): 1 strips them when copying the binaries out
# (agent about 105 MB -> 16 MB; symbols stay, so backtraces still name functions); 0 keeps them.
ARG STRIP=1
# The registry and target dir live in cache mounts, so a rebuild compiles only what changed; the
# binaries are copied out of the mount within the same RUN (mounts are not part of the image).
RUN --mount=type=cache,id=openspace-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=openspace-target-agent,target=/src/target,sharing=locked \
    cargo build --release --locked -p openspace-agent --bin openspace-agent --bin openspace-cmd \
 && mkdir -p /out \
 && for bin in openspace-agent openspace-cmd; do \
      if [ "$STRIP" = 1 ]; then \
        strip --strip-debug -o "/out/$bin" "target/release/$bin"; \
      else \
        cp "target/release/$bin" "/out/$bin"; \
      fi; \
      chmod 0755 "/out/$bin"; \
    done

# ---- runtime: everything but the binaries (the base of the final stages)
FROM ${RUNTIME_IMAGE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="openspace-agent" \
      org.opencontainers.image.description="OpenSpace rendering server: command API, instance supervisor, WebRTC streaming" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
# libvpx7, libstdc++6: what the agent links besides glibc (libstdc++6 is in the slim image already).
# tini: PID 1 (see ENTRYPOINT). ca-certificates: for images built on this one (TLS clients).
# The user 65532 exists in /etc/passwd for programs that look their user up (X, OpenSpace);
# --no-log-init keeps useradd from writing a large sparse /var/log/lastlog.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libvpx7 libstdc++6 ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 nonroot \
 && useradd --uid 65532 --gid 65532 --no-log-init --no-create-home --home-dir /tmp \
      --shell /usr/sbin/nologin nonroot
# The chart mounts an emptyDir at /tmp under a read-only root filesystem; HOME points there.
ENV HOME=/tmp
WORKDIR /tmp
# Numeric, so that runAsNonRoot can verify it (the chart also sets runAsUser 65532).
USER 65532:65532
# Command WebSocket, HTTP (viewer page, /api/N, /signaling, probes, metrics), signaling.
# WebRTC media uses UDP on ephemeral ports (not listable here); instance API ports 4682+N are
# also reachable as /api/N on 4690.
EXPOSE 4699 4690 8443
# tini as PID 1: the agent waits for its own children and kills each instance's process group,
# but a process that leaves that group (e.g. a daemon an instance starts with setsid) is
# re-parented to PID 1 when its parent exits, and only tini reaps it. tini forwards SIGTERM to
# the agent, which then stops its instances gracefully, and exits with the agent's status.
# Every agent flag also reads an OPENSPACE_* variable (the chart sets them); args are appended.
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/openspace-agent"]

# ---- x11-runtime: runtime plus what x11 instances need (--instance-kind x11)
FROM runtime AS x11-runtime
LABEL org.opencontainers.image.title="openspace-agent-x11"
# xvfb: the agent starts one X server per slot (the only program it runs itself; it writes the
#       cookie file on its own, so no xauth): Xvfb by default, or with --x11-server xorg
# xserver-xorg-core + xserver-xorg-video-dummy: Xorg, with the dummy driver where there is no
#       GPU. On a GPU node the NVIDIA container toolkit mounts the nvidia X driver and its GLX
#       module (NVIDIA_DRIVER_CAPABILITIES graphics,display; the chart sets it), so the image
#       carries no NVIDIA file. The agent writes Xorg's configuration itself under /tmp.
# libgl1-mesa-dri, libglx-mesa0: Mesa's OpenGL (llvmpipe) for Xvfb and Xorg(dummy).
# xterm, mesa-utils (glxgears, glxinfo), x11-utils (xdpyinfo, xwininfo, ...): X clients to run
#       as instances and to look at a display.
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends xvfb xserver-xorg-core xserver-xorg-video-dummy \
      libgl1-mesa-dri libglx-mesa0 xterm mesa-utils x11-utils \
 && rm -rf /var/lib/apt/lists/*
USER 65532:65532

# ---- prebuilt, prebuilt-x11: binaries built elsewhere for the same Debian 12
FROM runtime AS prebuilt
COPY prebuilt/openspace-agent prebuilt/openspace-cmd /usr/local/bin/

FROM x11-runtime AS prebuilt-x11
COPY prebuilt/openspace-agent prebuilt/openspace-cmd /usr/local/bin/

# ---- x11, and agent (the default target): the binaries of the build stage above
FROM x11-runtime AS x11
COPY --from=build /out/openspace-agent /out/openspace-cmd /usr/local/bin/

FROM runtime AS agent
COPY --from=build /out/openspace-agent /out/openspace-cmd /usr/local/bin/
