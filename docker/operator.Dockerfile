# syntax=docker/dockerfile:1

# The openspace-operator image (with openspace-frontend). Build context: the repository root.
#
#   docker build -f docker/operator.Dockerfile -t openspace-operator:0.1.0 .
#
# The binaries link only libc, libm and libgcc_s (glibc 2.36, Debian 12), so builder and runtime
# are both Debian 12 (bookworm). The runtime is debian:bookworm-slim with the user 65532 of the
# agent image. See docker/README.md.
#
# Targets (the last stage is the default):
#   (default)  compiles the binaries in the rust stage
#   prebuilt   the binaries come from prebuilt/openspace-operator and prebuilt/openspace-frontend
#              of the build context instead; no rust stage is built (e2e/cluster/images.sh)

ARG RUST_IMAGE=rust:1.89-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---- build
FROM ${RUST_IMAGE} AS build
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
# The release profile keeps line tables (debug = 1): 1 strips them when copying the binary out
# (about 142 MB -> 20 MB; symbols stay, so backtraces still name functions); 0 keeps them.
ARG STRIP=1
# The registry and target dir live in cache mounts, so a rebuild compiles only what changed; the
# binary is copied out of the mount within the same RUN (mounts are not part of the image).
RUN --mount=type=cache,id=openspace-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=openspace-target-operator,target=/src/target,sharing=locked \
    cargo build --release --locked -p openspace-operator --bin openspace-operator \
      -p openspace-frontend --bin openspace-frontend \
 && mkdir -p /out \
 && for bin in openspace-operator openspace-frontend; do \
      if [ "$STRIP" = 1 ]; then \
        strip --strip-debug -o /out/$bin target/release/$bin; \
      else \
        cp target/release/$bin /out/$bin; \
      fi; \
      chmod 0755 /out/$bin; \
    done

# ---- runtime: everything but the binaries (the base of both final stages)
FROM ${RUNTIME_IMAGE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="openspace-operator" \
      org.opencontainers.image.description="Kubernetes operator for OpenSpace WebRTC sessions (OpenSpaceSession)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
# ca-certificates: rustls takes its roots from the system (rustls-native-certs; no webpki-roots in
# Cargo.lock), which the frontend's relay needs for wss:// to agents behind https:// session URLs.
# The user 65532 exists in /etc/passwd, as in the agent image; --no-log-init keeps useradd from
# writing a large sparse /var/log/lastlog.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 nonroot \
 && useradd --uid 65532 --gid 65532 --no-log-init --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin nonroot
# Numeric, so that runAsNonRoot can verify it (the chart also sets runAsUser 65532).
USER 65532:65532
# Metrics, /healthz and /readyz (OPENSPACE_METRICS_LISTEN, default 0.0.0.0:8080).
EXPOSE 8080
# Every flag also reads an OPENSPACE_* variable (the chart sets them); extra args are appended.
ENTRYPOINT ["/usr/local/bin/openspace-operator"]

# ---- prebuilt: binaries built elsewhere, for the same Debian 12 (docker build --target prebuilt)
FROM runtime AS prebuilt
COPY prebuilt/openspace-operator prebuilt/openspace-frontend /usr/local/bin/

# ---- operator (the default target): the binaries of the build stage above
FROM runtime AS operator
COPY --from=build /out/openspace-operator /out/openspace-frontend /usr/local/bin/
