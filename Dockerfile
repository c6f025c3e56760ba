# Multi-stage: production dependencies only, non-root, Node 24 (which runs the TypeScript sources
# directly by stripping types; there is no build step to go stale).
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Every runtime dependency is pure JavaScript; the dev-only `node` package is skipped with the rest.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
# 65532: an unprivileged uid with no shell entry; the chart also sets runAsNonRoot and a read-only root FS.
USER 65532:65532
EXPOSE 8443 9090
ENTRYPOINT ["node", "src/main.ts"]
CMD ["serve", "--config", "/etc/volsync-autorestore/config.yaml"]
