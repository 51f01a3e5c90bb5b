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
if [ ! -f "$headers/node_api.h" ]; then
  echo "build-native: $headers missing (npm ci): the edge will send large disk hits without sendfile" >&2
  rm -f "$out"
  exit 0
fi
# Built to a temp name, then renamed: a running edge never loads a half-written file. A compiler
# that fails (no libc headers, say) leaves no addon, and says so: the build itself goes on.
# 64-bit file offsets on every target (sendfile's off_t).
if "$cc" -O2 -Wall -Wextra -D_FILE_OFFSET_BITS=64 -shared -fPIC -I "$headers" -o "$out.tmp" edge/native/sendfile.c; then
  mv "$out.tmp" "$out"
else
  rm -f "$out.tmp" "$out"
  echo "build-native: the sendfile addon did not compile (see above): the edge will send large disk hits without it" >&2
fi
