# syntax=docker/dockerfile:1

# The TURN relay (coturn, from Debian) that viewers behind NAT and firewalls reach the agents
# through. Build context: the repository root (only docker/turn-entrypoint.sh is used).
#
#   docker build -f docker/turn.Dockerfile -t openspace-turn:0.1.0 .
#
# Same base as the other images (Debian 12, bookworm-slim). Configured by environment only (the
# chart sets it), never by /etc/turnserver.conf; see docker/turn-entrypoint.sh for the variables.

ARG RUNTIME_IMAGE=debian:bookworm-slim
FROM ${RUNTIME_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="openspace-turn" \
      org.opencontainers.image.description="TURN relay (coturn) for OpenSpace streams, with per-viewer credentials (TURN REST, use-auth-secret)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
# coturn: turnserver. tini: PID 1 that forwards SIGTERM. The package's own service user and
# /etc/turnserver.conf are not used: the relay runs as 65532, as the other images do.
RUN apt-get update \
 && apt-get install -y --no-install-recommends coturn tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 nonroot \
 && useradd --uid 65532 --gid 65532 --no-log-init --no-create-home --home-dir /tmp \
      --shell /usr/sbin/nologin nonroot
COPY --chmod=0755 docker/turn-entrypoint.sh /usr/local/bin/openspace-turn
# The generated config (holding the secret), the pid file and coturn's user database go to /tmp:
# the chart mounts an emptyDir there under a read-only root filesystem.
ENV HOME=/tmp
WORKDIR /tmp
USER 65532:65532
# TURN over UDP and TCP; the relay ports (TURN_MIN_PORT..TURN_MAX_PORT, UDP) are not listable.
EXPOSE 3478/udp 3478/tcp
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/openspace-turn"]
