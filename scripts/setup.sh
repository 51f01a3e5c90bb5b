#!/bin/sh
# Installs what a fresh clone needs: ffmpeg/ffprobe from the system, then npm ci.
# Runs before any node_modules exist, so it is plain POSIX sh.
set -eu

have() { command -v "$1" >/dev/null 2>&1; }

need_packages=0
# openssl makes the certificates of the TLS tests (and of the demo's local CA).
have openssl || need_packages=1
{ [ -n "${FFMPEG_PATH:-}" ] && [ -x "$FFMPEG_PATH" ]; } || have ffmpeg || need_packages=1
{ [ -n "${FFPROBE_PATH:-}" ] && [ -x "$FFPROBE_PATH" ]; } || have ffprobe || need_packages=1

if [ "$need_packages" = 1 ]; then
  if have apt-get; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; elif have sudo; then SUDO="sudo"; else SUDO=""; fi
    if [ "$(id -u)" != 0 ] && [ -z "$SUDO" ]; then
      echo "setup: ffmpeg is missing; as root run: apt-get update && apt-get install -y ffmpeg" >&2
      exit 1
    fi
    echo "setup: installing ffmpeg and openssl with apt-get"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ffmpeg openssl
  else
    echo "setup: ffmpeg and ffprobe are required and were not found on PATH (or FFMPEG_PATH/FFPROBE_PATH)." >&2
    case "$(uname -s)" in
      Darwin) echo "setup: install them with: brew install ffmpeg" >&2 ;;
      *)
        if have dnf; then echo "setup: install them with: sudo dnf install -y ffmpeg (RPM Fusion)" >&2
        elif have pacman; then echo "setup: install them with: sudo pacman -S ffmpeg" >&2
        elif have apk; then echo "setup: install them with: sudo apk add ffmpeg" >&2
        else echo "setup: install your system's ffmpeg package (5.1 or later, with libx264 and AAC)" >&2
        fi ;;
    esac
    exit 1
  fi
fi

# A C compiler builds the edge's sendfile addon (scripts/build-native.sh); without one the edge
# still works, sending large disk hits from a buffer.
if ! have "${CC:-cc}"; then
  if have apt-get && { [ "$(id -u)" = 0 ] || have sudo; }; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    echo "setup: installing gcc with apt-get (the edge's sendfile addon)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq gcc libc6-dev
  else
    echo "setup: no C compiler: the edge will run without its sendfile addon (install gcc for it)" >&2
  fi
fi

echo "setup: $(ffmpeg -hide_banner -version 2>/dev/null | head -n 1 || echo "ffmpeg at $FFMPEG_PATH")"
npm ci --no-audit --no-fund
# tap builds its plugin set (package.json's "tap.plugin": no TypeScript loader, the tests run
# compiled) on its first run, but that first run still loads the default set's loader: build it now.
npx tap build >/dev/null
echo "setup: done. Next: npm start   (or: npx cdn --help)"
