# Shared by the scripts that start real components for tests, CI and benchmarks (etcd.sh,
# object-store.sh). Source it after setting DIR (the state directory) and PKGS (Debian
# packages), and defining log().

# Installs the missing packages of PKGS (root; one apt at a time on a shared machine).
install_packages() {
  local missing=()
  for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} = 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    log "missing Debian packages: ${missing[*]} (run as root, or: apt-get install ${missing[*]})"
    exit 1
  fi
  log "installing ${missing[*]}"
  local lock=${CDN_APT_LOCK:-/tmp/cdn-apt.lock}
  flock "$lock" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${missing[*]} >/dev/null"
}

# True when every pid in $DIR/pids is alive.
running() {
  [ -f "$DIR/pids" ] || return 1
  local pid
  while read -r pid; do kill -0 "$pid" 2>/dev/null || return 1; done <"$DIR/pids"
}

# The env lines of the running component.
env_lines() {
  [ -f "$DIR/env" ] || { log "not running (no $DIR/env): run: $0 start"; exit 1; }
  cat "$DIR/env"
}

# N free loopback ports, chosen by the kernel (held open together, so all N differ).
free_ports() {
  /usr/bin/python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(('127.0.0.1', 0)); socks.append(s)
print(' '.join(str(s.getsockname()[1]) for s in socks))
PY
}
