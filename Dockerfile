# Tributary: one image for both processes.
#   docker-compose.yml runs it twice: `npm run api` (the default CMD) and `npm run worker`.
# tsx runs the TypeScript sources directly and is a runtime dependency; the one build step is the web
# console's static files (Vite, a runtime dependency too), built into dist/console.
FROM node:20-bookworm-slim

ENV NODE_ENV=production
WORKDIR /app

# Dependencies first, so source edits do not invalidate this layer.
COPY package.json package-lock.json ./
# `npm install` rather than `npm ci`: the lock file lists only the optional native binaries of the
# platform it was written on (npm 11), and the image may be another (arm64).
RUN npm install --omit=dev --no-audit --no-fund && npm cache clean --force

COPY . .
RUN node --import tsx scripts/build-console.ts

# Listen on every interface inside the container (the default, 127.0.0.1, is unreachable from outside).
ENV TRIBUTARY_API_HOST=0.0.0.0 \
    TRIBUTARY_API_PORT=8000 \
    TRIBUTARY_DATA_DIR=/data

# Owned by `node` so a named volume mounted here starts out writable.
RUN mkdir -p /data && chown node:node /data
USER node

EXPOSE 8000
CMD ["npm", "run", "api"]
