#!/usr/bin/env bash
# Makes Debian's `prometheus` available to the tests (installs it when missing, as root with apt);
# the tests start their own instance on an ephemeral 127.0.0.1 port. The package's own service is
# kept from starting during the install (policy-rc.d), so nothing else runs. Prints the binary path.
set -euo pipefail
if command -v prometheus >/dev/null 2>&1; then command -v prometheus; exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "prometheus: missing and cannot install it (needs root and apt-get)" >&2; exit 1
fi
POLICY=/usr/sbin/policy-rc.d
created=0
if [ ! -e "$POLICY" ]; then printf '#!/bin/sh\nexit 101\n' >"$POLICY"; chmod +x "$POLICY"; created=1; fi
trap '[ "$created" = 1 ] && rm -f "$POLICY"' EXIT
(timeout 300 apt-get update -qq || true) >/dev/null 2>&1
DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends prometheus >/dev/null
command -v prometheus
