#!/usr/bin/env bash
# The test network of e2e/turn: three hosts (network namespaces) on one Ethernet segment, a
# bridge inside a fourth "switch" namespace, so nothing touches the machine's own interfaces:
#
#   viewer 198.18.210.10   headless Chromium, behind a strict firewall
#   node   198.18.210.20   the agent; only the relay may send it UDP
#   relay  198.18.210.30   coturn
#
# 198.18.0.0/15 is the benchmarking range (RFC 2544); the cluster tests use other /24s of it.
#
#   net.sh up PREFIX               creates PREFIX-{switch,viewer,node,relay}
#   net.sh firewall PREFIX RULES   replaces the firewalls: ingress | tcp-only | open (direct UDP
#                                  between viewer and node, for comparing in bench.mjs)
#   net.sh down PREFIX             ends what runs in them and deletes them (idempotent)
set -euo pipefail

SUBNET=198.18.210
VIEWER=$SUBNET.10
NODE=$SUBNET.20
RELAY=$SUBNET.30
TURN_PORT=3478
HOSTS=(viewer node relay)

usage() { echo "usage: $0 up|down PREFIX | firewall PREFIX ingress|tcp-only|no-relay|open" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1 prefix=$2
on() { local ns=$1; shift; ip netns exec "$prefix-$ns" "$@"; }

up() {
  ip netns add "$prefix-switch"
  ip -n "$prefix-switch" link add br0 type bridge
  ip -n "$prefix-switch" link set br0 up
  local i=0 addr
  for host in "${HOSTS[@]}"; do
    addr=("$VIEWER" "$NODE" "$RELAY")
    ip netns add "$prefix-$host"
    # The host's end is eth0; the switch's end, named after the host, is a bridge port.
    ip -n "$prefix-switch" link add "$host" type veth peer name eth0 netns "$prefix-$host"
    ip -n "$prefix-switch" link set "$host" master br0 up
    ip -n "$prefix-$host" addr add "${addr[$i]}/24" dev eth0
    ip -n "$prefix-$host" link set eth0 up
    ip -n "$prefix-$host" link set lo up
    # A host has a default route (on-link: it stays on this bridge, which leads nowhere), as
    # most do; turn.test.mjs removes the node's for the test of a node that has none.
    ip -n "$prefix-$host" route add default dev eth0
    i=$((i + 1))
  done
  firewall ingress
}

# The node is a cluster node without a public address: it answers TCP (its Service, the
# Ingress) from anyone, but media (UDP) only from the relay; `open` lets the viewer's in too.
node_firewall() {
  on node iptables-restore <<EOF
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A INPUT -p tcp -j ACCEPT
-A INPUT -p udp -s $RELAY -j ACCEPT
${1:-}
COMMIT
EOF
  on node conntrack -F >/dev/null 2>&1 || true
}

# The viewer sits behind a corporate firewall: it may open TCP to the node (the page, the
# signaling WebSocket, as through an Ingress) and reach the relay on its TURN port only (UDP and
# TCP, or TCP alone), nothing else; answers come back through conntrack.
firewall() {
  local udp_turn="-A OUTPUT -p udp -d $RELAY --dport $TURN_PORT -j ACCEPT" direct=""
  local tcp_turn="-A OUTPUT -p tcp -d $RELAY --dport $TURN_PORT -j ACCEPT"
  case $1 in
    ingress) ;;
    tcp-only) udp_turn="" ;;
    no-relay) udp_turn="" tcp_turn="" ;;
    open) direct="-A OUTPUT -p udp -d $NODE -j ACCEPT" ;;
    *) usage ;;
  esac
  on viewer iptables-restore <<EOF
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT DROP [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A OUTPUT -o lo -j ACCEPT
-A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A OUTPUT -p tcp -d $NODE -j ACCEPT
$tcp_turn
$udp_turn
$direct
COMMIT
EOF
  node_firewall "${direct:+-A INPUT -p udp -s $VIEWER -j ACCEPT}"
  # A flow the old rules let through stays ESTABLISHED in conntrack; forget them all.
  on viewer conntrack -F >/dev/null 2>&1 || true
}

# Every process inside our namespaces is one this test started (nothing else can enter them):
# TERM, a moment's grace, then KILL, each by its pid; then the namespaces, with their links and
# firewall rules, go.
down() {
  local pids ns
  for round in TERM KILL; do
    pids=()
    for host in switch "${HOSTS[@]}"; do
      ns="$prefix-$host"
      ip netns list | grep -qw -- "$ns" || continue
      mapfile -t -O "${#pids[@]}" pids < <(ip netns pids "$ns")
    done
    [ ${#pids[@]} -gt 0 ] || break
    kill -s "$round" "${pids[@]}" 2>/dev/null || true
    [ "$round" = KILL ] || for _ in $(seq 20); do
      sleep 0.1
      alive=0
      for pid in "${pids[@]}"; do [ -e "/proc/$pid" ] && alive=1; done
      [ $alive = 1 ] || break
    done
  done
  for host in "${HOSTS[@]}" switch; do
    ip netns del "$prefix-$host" 2>/dev/null || true
  done
}

case $cmd in
  up) up ;;
  down) down ;;
  firewall) [ $# -eq 3 ] || usage; firewall "$3" ;;
  *) usage ;;
esac
