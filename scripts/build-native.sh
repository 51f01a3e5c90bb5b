#!/bin/sh
# Builds the edge's sendfile addon (edge/native/sendfile.c) into dist/native/sendfile.node with the
# system's C compiler and the Node-API headers (node-api-headers, a devDependency): one binary for
# every Node version (Node-API is ABI-stable). Without a compiler, or off Linux, it says so and
# succeeds: the edge then sends large disk hits from a buffer (edge/native/sendfile.ts).
set -eu
cd "$(dirname "$0")/.."
out=dist/native/sendfile.node
mkdir -p dist/native
if [ "$(uname -s)" != Linux ]; then
  echo "build-native: sendfile addon skipped (Linux only)"
  exit 0
fi
cc=${CC:-cc}
if ! command -v "$cc" >/dev/null 2>&1; then
  echo "build-native: no C compiler ($cc): the edge will send large disk hits without sendfile (apt-get install gcc)" >&2
  exit 0
fi
headers=node_modules/node-api-headers/include
[ -f "$headers/node_api.h" ] || { echo "build-native: $headers missing (npm ci)" >&2; exit 1; }
# Built to a temp name, then renamed: a running edge never loads a half-written file.
"$cc" -O2 -Wall -Wextra -shared -fPIC -I "$headers" -o "$out.tmp" edge/native/sendfile.c
mv "$out.tmp" "$out"
