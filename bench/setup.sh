#!/usr/bin/env bash
# Installs the Debian load tools the bench uses when missing: h2load (fixed-rate HTTP with a
# per-request latency log) and wrk (saturation). As root it installs them; otherwise it says what
# to install, and `bench/run.ts` skips the loads that need them, saying so in the report.
set -euo pipefail
need=()
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v wrk >/dev/null || need+=(wrk)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "bench/setup.sh: installing ${need[*]}" >&2
  # A failed install only costs the HTTP loads; the HBONE scenarios still run.
  if ! { apt-get update -qq >/dev/null &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; }; then
    echo "bench/setup.sh: could not install ${need[*]} (the HTTP loads will be skipped)" >&2
  fi
else
  echo "bench/setup.sh: please install: apt-get install ${need[*]} (the HTTP loads will be skipped)" >&2
fi
