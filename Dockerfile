# Cleverom Identity — production image (docs/operations.md, "Docker").
# Build: native modules (argon2, better-sqlite3) and tsc → dist/; runtime: no compiler, no dev dependencies.

FROM node:20-bookworm-slim AS build
WORKDIR /app
# Toolchain for node-gyp when no prebuilt argon2 / better-sqlite3 binary matches.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim AS runtime
# Resident memory (issue 9, bench/README.md), at no measurable throughput cost:
# NODE_OPTIONS caps V8's young generation at 3 × 4 MiB (it grows to 3 × 16 MiB),
# about 25 MB less; MALLOC_ARENA_MAX=1 keeps glibc from giving each libuv
# thread its own arena, each of which kept a freed 19 MiB argon2 buffer.
ENV NODE_ENV=production \
    NODE_OPTIONS=--max-semi-space-size=4 \
    MALLOC_ARENA_MAX=1 \
    DATABASE_URL=file:/app/data/cleverom.db \
    HOST=0.0.0.0 \
    PORT=3000
WORKDIR /app
RUN groupadd --system --gid 10001 cleverom \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin cleverom \
 && mkdir -p /app/data \
 && chown 10001:10001 /app/data \
 && chmod 0700 /app/data
# Code and configuration stay root-owned (read-only for the service user).
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY bin/server.cjs ./bin/server.cjs
COPY drizzle ./drizzle
COPY config ./config
COPY package.json ./
USER 10001:10001
VOLUME ["/app/data"]
EXPOSE 3000
# Liveness over plain HTTP on the loopback (with TLS_CERT_FILE set, probe from outside instead).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# server.ts handles SIGTERM (docker stop): in-flight requests finish, the database closes.
CMD ["node", "bin/server.cjs"]
