# One image for every role: `docker run IMAGE origin|edge|steering|demo ...` (see docs/demo.md).
# Node 24 (the current LTS) in both stages; the code also runs on Node 20.10+ (package.json engines).
# Built and checked by reading only: no docker engine runs where this was written.

# ---- build: compile TypeScript, then keep only production dependencies ----
FROM node:24-bookworm-slim AS build
# gcc builds the edge's sendfile addon (scripts/build-native.sh: dist/native/sendfile.node, Node-API).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would build before the sources are copied; we build below.
RUN npm ci --no-audit --no-fund --ignore-scripts
# Everything else (.dockerignore keeps local state and build output out).
COPY . .
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# ---- runtime: node + Debian's ffmpeg (and a font for the samples' burnt-in timecode), non-root ----
FROM node:24-bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ffmpeg fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Served at runtime: steering's pages (read from the source tree, not compiled) and the default topology.
COPY steering/public ./steering/public
COPY deploy ./deploy
# /data holds every node's state (mount a volume there); .cache holds generated sample sources.
RUN mkdir -p /data /app/.cache && chown node:node /data /app/.cache
USER node
VOLUME ["/data"]
# --initial-old-space-size: src/cli/node-flags.ts (NODE_FLAGS).
ENTRYPOINT ["node", "--initial-old-space-size=128", "/app/dist/src/cli/main.js"]
CMD ["--help"]
