# syntax=docker/dockerfile:1
# The waypoint as one static-ish binary (`deno compile`) on distroless, non-root.
#   docker build --build-arg WAYPOINT_COMMIT=$(git rev-parse --short=12 HEAD) -t waypoint .
# The commit is a build argument because .git stays out of the build context (.dockerignore).

# Deno from npm, as everywhere in this project; the Node image only carries it.
FROM node:22-bookworm-slim AS build
ARG DENO_VERSION=2.9.6
ARG WAYPOINT_COMMIT=unknown
ENV DENO_DIR=/deno-cache \
    WAYPOINT_COMMIT=${WAYPOINT_COMMIT}
RUN npm install --global --no-fund --no-audit "deno@${DENO_VERSION}" && deno --version
WORKDIR /src
# Dependencies first, so a source change does not download them again.
COPY deno.json deno.lock ./
RUN deno install --frozen
COPY . .
# `deno task compile` stamps dist/build.json (commit, date) and compiles main.ts with it. It
# downloads denort; where that cannot be reached, pass a local copy with --build-arg DENORT_BIN.
ARG DENORT_BIN=
RUN if [ -z "${DENORT_BIN}" ]; then unset DENORT_BIN; fi \
    && deno task compile && ./dist/waypoint --version

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/dist/waypoint /usr/local/bin/waypoint
USER nonroot:nonroot
# HBONE, metrics, readiness (the admin port 15000 listens on loopback only).
EXPOSE 15008 15020 15021
ENTRYPOINT ["/usr/local/bin/waypoint"]
CMD ["run", "--kubernetes"]
