#!/usr/bin/env bash
# Installs the Debian tools the bench uses when missing: h2load (fixed-rate HTTP with a
# per-request latency log), wrk (saturation), curl (the upload) and haproxy (the industrial peer
# of http-1k and http-upload). As root it installs them; otherwise it says what to install, and
# `bench/run.ts` skips what needs them, saying so in the report.
#
# The bench never uses HAProxy's system service (here apt cannot start it: policy-rc.d denies it
# and there is no systemd): it runs the binary in the foreground with configs of its own
# (bench/_peer.ts) and stops it at the end.
set -euo pipefail
need=()
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v wrk >/dev/null || need+=(wrk)
command -v curl >/dev/null || need+=(curl)
command -v haproxy >/dev/null || need+=(haproxy)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "bench/setup.sh: installing ${need[*]}" >&2
  # A failed install only costs the loads that need it; the HBONE scenarios still run.
  if ! { apt-get update -qq >/dev/null &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; }; then
    echo "bench/setup.sh: could not install ${need[*]} (what needs them will be skipped)" >&2
  fi
else
  echo "bench/setup.sh: not root, so not installing: apt-get install ${need[*]}" \
    "(the HTTP loads without their tool, and the HAProxy peer rows, will be skipped)" >&2
fi
