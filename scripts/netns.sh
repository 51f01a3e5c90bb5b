#!/usr/bin/env bash
# The network-namespace mode's shell side (the lab itself is src/cli/demo/netns.ts, which
# `cdn demo --netns` and test/netns/ run).
#
#   scripts/netns.sh check            exit 0 when this machine can run it (root, ip netns, veth, tbf),
#                                     else prints why and exits 1
#   scripts/netns.sh list             the namespaces of every run still present (PREFIX-hub, ...)
#   scripts/netns.sh cleanup PREFIX   kills what runs in the namespaces PREFIX-* and deletes them
#                                     (idempotent; what a run does on exit, for one that died first)
#
# Each run names its namespaces with its own prefix (cdn + random hex), so parallel runs never
# collide and cleanup of one never touches another.
set -euo pipefail

log() { echo "netns: $*" >&2; }

check() {
  [ "$(uname -s)" = Linux ] || { log "network namespaces need Linux"; exit 1; }
  [ "$(id -u)" = 0 ] || { log "network namespaces need root"; exit 1; }
  command -v ip >/dev/null 2>&1 || { log "ip (iproute2) is missing"; exit 1; }
  command -v tc >/dev/null 2>&1 || { log "tc (iproute2) is missing"; exit 1; }
  CHECK_NS="cdncheck$$"
  trap 'ip netns del "$CHECK_NS" 2>/dev/null || true' EXIT
  local ns=$CHECK_NS
  ip netns add "$ns" || { log "ip netns add failed"; exit 1; }
  ip -n "$ns" link add va type veth peer name vb || { log "veth pairs unavailable"; exit 1; }
  tc -n "$ns" qdisc add dev va root tbf rate 1mbit burst 32kb latency 100ms ||
    { log "the tbf qdisc is unavailable"; exit 1; }
  echo "netns: ok"
}

cleanup() {
  local prefix=${1:?usage: scripts/netns.sh cleanup PREFIX}
  case "$prefix" in *[!a-z0-9]* | "") log "bad prefix: $prefix"; exit 1 ;; esac
  local ns pid
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^${prefix}-" || true); do
    for pid in $(ip netns pids "$ns" 2>/dev/null || true); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
}

case "${1:-}" in
  check) check ;;
  list) ip netns list | awk '{print $1}' | grep -E '^cdn[a-z0-9]+-hub$' || true ;;
  cleanup) cleanup "${2:-}" ;;
  *) echo "usage: scripts/netns.sh check|list|cleanup PREFIX" >&2; exit 2 ;;
esac
