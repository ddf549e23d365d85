#!/bin/sh
# Starts coturn for openspace from environment variables; extra arguments go to turnserver.
#
#   TURN_SECRET_FILE   file with the secret shared with the agents (--turn-secret-file); required
#   TURN_REALM         realm (default: openspace)
#   TURN_PORT          listening port, UDP and TCP (default: 3478)
#   TURN_MIN_PORT, TURN_MAX_PORT   relay ports, UDP (default: 49152-49407: 128 viewers, 2 each)
#   TURN_LISTEN_IP     address to listen and relay on (default: every address)
#   TURN_EXTERNAL_IP   the public address, when the relay is behind 1:1 NAT (e.g. a cloud node)
#
# The secret goes to turnserver in a config file in /tmp (mode 600), not on its command line,
# where any process of the pod could read it.
set -eu
: "${TURN_SECRET_FILE:?TURN_SECRET_FILE must name the secret shared with the agents}"
secret=$(tr -d '\r\n' <"$TURN_SECRET_FILE")
[ -n "$secret" ] || { echo "openspace-turn: $TURN_SECRET_FILE is empty" >&2; exit 1; }
conf=/tmp/turnserver.conf
umask 077
printf 'static-auth-secret=%s\n' "$secret" >"$conf"
set -- -c "$conf" --use-auth-secret --realm "${TURN_REALM:-openspace}" \
  --listening-port "${TURN_PORT:-3478}" \
  --min-port "${TURN_MIN_PORT:-49152}" --max-port "${TURN_MAX_PORT:-49407}" \
  --no-tls --no-dtls --no-cli --fingerprint --log-file stdout --simple-log \
  --pidfile /tmp/turnserver.pid --userdb /tmp/turndb \
  ${TURN_LISTEN_IP:+--listening-ip "$TURN_LISTEN_IP" --relay-ip "$TURN_LISTEN_IP"} \
  ${TURN_EXTERNAL_IP:+--external-ip "$TURN_EXTERNAL_IP"} \
  "$@"
exec turnserver "$@"
