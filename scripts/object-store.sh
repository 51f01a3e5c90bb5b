#!/usr/bin/env bash
# A real S3-compatible object store for tests, CI and benchmarks: OpenStack Swift from Debian's
# packages, one replica on loopback, with the s3api middleware and tempauth.
#
#   scripts/object-store.sh start   install (apt, once) and start; prints the env lines
#   scripts/object-store.sh env     prints the env lines of the running store (eval "$(... env)")
#   scripts/object-store.sh stop    stops it and removes its state directory
#
# The env lines: CDN_TEST_S3_ENDPOINT (the S3 endpoint), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
# AWS_REGION. State (configs, rings, devices as plain directories, pids, logs) lives under
# $CDN_OBJECT_STORE_DIR (default /tmp/cdn-object-store). Swift always reads its hash
# prefix/suffix from /etc/swift/swift.conf, so that file is written when missing (needs root).
# The servers run under Debian's /usr/bin/python3 (a python3 earlier on PATH may lack swift).
set -euo pipefail

DIR=${CDN_OBJECT_STORE_DIR:-/tmp/cdn-object-store}
PY=/usr/bin/python3
PKGS=(swift swift-proxy swift-object swift-container swift-account python3-swift memcached)
ACCESS_KEY='test:tester'
SECRET_KEY='testing'

log() { echo "object-store: $*" >&2; }
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

write_configs() {
  local proxy=$1 account=$2 container=$3 object=$4 memcache=$5
  mkdir -p "$DIR/etc" "$DIR/srv/d1" "$DIR/run" "$DIR/log"
  if [ ! -f /etc/swift/swift.conf ]; then
    mkdir -p /etc/swift
    printf '[swift-hash]\nswift_hash_path_suffix = cdn-test\nswift_hash_path_prefix = cdn-test\n\n[storage-policy:0]\nname = Policy-0\ndefault = yes\n' >/etc/swift/swift.conf
  fi
  local common="[DEFAULT]
devices = $DIR/srv
mount_check = false
bind_ip = 127.0.0.1
workers = 1
user = root
swift_dir = $DIR/etc
log_name = swift
log_facility = LOG_LOCAL0
"
  for kind in account container object; do
    local port_var=$kind
    printf '%sbind_port = %s\n\n[pipeline:main]\npipeline = %s-server\n\n[app:%s-server]\nuse = egg:swift#%s\n' \
      "$common" "${!port_var}" "$kind" "$kind" "$kind" >"$DIR/etc/$kind-server.conf"
  done
  cat >"$DIR/etc/proxy-server.conf" <<EOF
${common}bind_port = $proxy

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:s3api]
use = egg:swift#s3api
location = us-east-1

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = $SECRET_KEY .admin

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$memcache
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
EOF
}

# Three one-device, one-replica rings in one Python process (nine swift-ring-builder calls take
# about ten times longer).
build_rings() {
  local account=$1 container=$2 object=$3
  "$PY" - "$DIR/etc" "$account" "$container" "$object" <<'EOF'
import sys
from swift.common.ring import RingBuilder
etc, ports = sys.argv[1], dict(zip(('account', 'container', 'object'), map(int, sys.argv[2:5])))
for kind, port in ports.items():
    b = RingBuilder(8, 1, 1)
    b.add_dev({'id': 0, 'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': port,
               'device': 'd1', 'weight': 100, 'meta': ''})
    b.rebalance()
    b.save(f'{etc}/{kind}.builder')
    b.get_ring().save(f'{etc}/{kind}.ring.gz')
EOF
}

wait_port() {
  local port=$1 name=$2 i
  for i in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    running || { log "$name exited; its log:"; tail -n 30 "$DIR/log/"*.log >&2 || true; exit 1; }
    sleep 0.1
  done
  log "$name did not listen on $port"
  exit 1
}

start() {
  if running; then
    log "already running"
    env_lines
    return 0
  fi
  [ -d "$DIR" ] && stop_servers
  install_packages
  rm -rf "$DIR"
  mkdir -p "$DIR"
  local ports proxy account container object memcache
  ports=$(free_ports 5)
  read -r proxy account container object memcache <<<"$ports"
  write_configs "$proxy" "$account" "$container" "$object" "$memcache"
  build_rings "$account" "$container" "$object"
  : >"$DIR/pids"
  memcached -u root -l 127.0.0.1 -p "$memcache" -U 0 -m 16 >"$DIR/log/memcached.log" 2>&1 &
  echo $! >>"$DIR/pids"
  for kind in account container object proxy; do
    "$PY" "/usr/bin/swift-$kind-server" "$DIR/etc/$kind-server.conf" >"$DIR/log/$kind.log" 2>&1 &
    echo $! >>"$DIR/pids"
  done
  wait_port "$memcache" memcached
  wait_port "$account" account-server
  wait_port "$container" container-server
  wait_port "$object" object-server
  wait_port "$proxy" proxy-server
  local i
  for i in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$proxy/healthcheck" >/dev/null 2>&1 && break
    sleep 0.1
  done
  cat >"$DIR/env" <<EOF
export CDN_TEST_S3_ENDPOINT=http://127.0.0.1:$proxy
export AWS_ACCESS_KEY_ID=$ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$SECRET_KEY
export AWS_REGION=us-east-1
EOF
  log "Swift with s3api on http://127.0.0.1:$proxy (access key $ACCESS_KEY, secret $SECRET_KEY); state in $DIR"
  env_lines
}

stop_servers() {
  [ -f "$DIR/pids" ] || return 0
  local pid
  while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$DIR/pids"
  # Wait for each to go (bounded), then make sure.
  for _ in $(seq 1 50); do
    local alive=0
    while read -r pid; do kill -0 "$pid" 2>/dev/null && alive=1; done <"$DIR/pids"
    [ $alive = 0 ] && break
    sleep 0.1
  done
  while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done <"$DIR/pids"
  rm -f "$DIR/pids"
}

case "${1:-}" in
  start) start ;;
  env) env_lines ;;
  stop)
    stop_servers
    rm -rf "$DIR"
    log "stopped"
    ;;
  *)
    echo "usage: $0 start|stop|env" >&2
    exit 2
    ;;
esac
