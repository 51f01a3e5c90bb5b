#!/usr/bin/env bash
# A real etcd cluster for tests, CI and benchmarks: Debian's etcd-server (3.4), three members on
# loopback, so a test can kill one member and the cluster keeps a quorum.
#
#   scripts/etcd.sh start   install (apt, once) and start; prints the env line
#   scripts/etcd.sh env     prints the env line of the running cluster (eval "$(... env)")
#   scripts/etcd.sh stop    stops every member and removes the state directory
#   scripts/etcd.sh kill N  SIGKILLs member N (1-3), for failure tests
#   scripts/etcd.sh revive N  starts member N again with its data (it rejoins the cluster)
#
# The env line: CDN_TEST_ETCD_ENDPOINTS=http://127.0.0.1:P1,http://127.0.0.1:P2,http://127.0.0.1:P3
# (client URLs, in member order: member N's pid is line N of $DIR/pids, its data $DIR/mN).
# State lives under $CDN_ETCD_DIR (default /tmp/cdn-etcd). Members accept keepalive pings every
# 500 ms (etcd: 5 s), so a test can find a hung member by its client's keepalive in a second.
set -euo pipefail

DIR=${CDN_ETCD_DIR:-/tmp/cdn-etcd}
PKGS=(etcd-server etcd-client)

log() { echo "etcd: $*" >&2; }
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

start() {
  install_packages
  if running; then
    env_lines
    return 0
  fi
  stop_members
  rm -rf "$DIR"
  mkdir -p "$DIR"
  read -r c1 p1 c2 p2 c3 p3 < <(free_ports 6)
  local clients=("$c1" "$c2" "$c3") peers=("$p1" "$p2" "$p3") cluster="" i
  for i in 0 1 2; do cluster+="${cluster:+,}m$((i + 1))=http://127.0.0.1:${peers[$i]}"; done
  : >"$DIR/pids"
  for i in 0 1 2; do
    local name="m$((i + 1))"
    # The member's command line, kept so `revive` starts it again the same way.
    echo "--name $name --data-dir $DIR/$name \
      --listen-client-urls http://127.0.0.1:${clients[$i]} \
      --advertise-client-urls http://127.0.0.1:${clients[$i]} \
      --listen-peer-urls http://127.0.0.1:${peers[$i]} \
      --initial-advertise-peer-urls http://127.0.0.1:${peers[$i]} \
      --initial-cluster $cluster --initial-cluster-state new --initial-cluster-token cdn-test \
      --heartbeat-interval 100 --election-timeout 1000 --grpc-keepalive-min-time 500ms \
      --log-level warn" >"$DIR/$name.args"
    etcd --name "$name" --data-dir "$DIR/$name" \
      --listen-client-urls "http://127.0.0.1:${clients[$i]}" \
      --advertise-client-urls "http://127.0.0.1:${clients[$i]}" \
      --listen-peer-urls "http://127.0.0.1:${peers[$i]}" \
      --initial-advertise-peer-urls "http://127.0.0.1:${peers[$i]}" \
      --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token cdn-test \
      --heartbeat-interval 100 --election-timeout 1000 --grpc-keepalive-min-time 500ms \
      --log-level warn >"$DIR/$name.log" 2>&1 &
    echo $! >>"$DIR/pids"
  done
  local endpoints="http://127.0.0.1:$c1,http://127.0.0.1:$c2,http://127.0.0.1:$c3"
  local tries=0
  until ETCDCTL_API=3 etcdctl --endpoints "$endpoints" --command-timeout 2s endpoint health >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -gt 120 ] || ! running; then
      log "the members did not become healthy; logs in $DIR/m*.log"
      tail -5 "$DIR"/m*.log >&2 || true
      exit 1
    fi
    sleep 0.5
  done
  echo "CDN_TEST_ETCD_ENDPOINTS=$endpoints" >"$DIR/env"
  log "three members healthy at $endpoints"
  env_lines
}

stop_members() {
  [ -f "$DIR/pids" ] || return 0
  local pid
  while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$DIR/pids"
  while read -r pid; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done <"$DIR/pids"
}

member_pid() { sed -n "${1}p" "$DIR/pids"; }

kill_member() {
  local n=$1 pid
  pid=$(member_pid "$n")
  [ -n "$pid" ] || { log "no member $n"; exit 1; }
  kill -9 "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  log "member m$n (pid $pid) killed"
}

revive_member() {
  local n=$1 pid
  pid=$(member_pid "$n")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then return 0; fi
  # shellcheck disable=SC2046 # the saved arguments are split on purpose
  etcd $(cat "$DIR/m$n.args") >>"$DIR/m$n.log" 2>&1 &
  local new=$!
  sed -i "${n}s/.*/$new/" "$DIR/pids"
  log "member m$n revived (pid $new)"
}

case "${1:-}" in
  kill) kill_member "${2:?member number}" ;;
  revive) revive_member "${2:?member number}" ;;
  start) start ;;
  env) env_lines ;;
  stop)
    stop_members
    rm -rf "$DIR"
    ;;
  *)
    echo "usage: $0 start|env|stop" >&2
    exit 2
    ;;
esac
