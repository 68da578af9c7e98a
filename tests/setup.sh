#!/usr/bin/env bash
# Installs the Debian peers the tests use (a second HTTP/2 stack, load tools) when missing.
# As root it installs them; otherwise it says what to install and the tests that need them skip.
set -euo pipefail
need=()
/usr/bin/python3 -c 'import h2' 2>/dev/null || need+=(python3-h2)
command -v prometheus >/dev/null || need+=(prometheus)
command -v docker-registry >/dev/null || need+=(docker-registry)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "tests/setup.sh: installing ${need[*]}" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
else
  echo "tests/setup.sh: please install: apt-get install ${need[*]} (tests needing them will skip)" >&2
fi
