#!/usr/bin/env bash
# Start (or stop) a Docker engine for the docker-target tests. Never fails the build: when the engine
# cannot be installed or started, the tests skip and say why (tests/deploy/test_deploy_docker.py).
# Only a dockerd this script started is stopped, by its recorded pid. No bridge network and no
# iptables rules: containers use host networking bound to 127.0.0.1.
set -u
STATE=${DOCKER_ENGINE_STATE:-.cache/docker-engine}
mkdir -p "$STATE"
PIDFILE=$STATE/dockerd.pid

answers() { timeout 5 docker version >/dev/null 2>&1; }

case "${1:-start}" in
start)
  if answers; then echo "docker engine: already running"; exit 0; fi
  if ! command -v dockerd >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "docker engine: installing docker.io"
      (timeout 300 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 400 apt-get install -y -qq docker.io) \
        >"$STATE/install.log" 2>&1 || { echo "docker engine: install failed (see $STATE/install.log)"; exit 0; }
    else
      echo "docker engine: dockerd missing and cannot install it (needs root and apt-get)"; exit 0
    fi
  fi
  dockerd --bridge=none --iptables=false --ip6tables=false >"$STATE/dockerd.log" 2>&1 &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 60); do
    if answers; then echo "docker engine: started (pid $(cat "$PIDFILE"))"; exit 0; fi
    kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break
    sleep 0.5
  done
  echo "docker engine: dockerd did not come up (see $STATE/dockerd.log); docker tests will skip"
  tail -3 "$STATE/dockerd.log" 2>/dev/null
  exit 0
  ;;
stop)
  [ -f "$PIDFILE" ] || exit 0
  pid=$(cat "$PIDFILE")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    echo "docker engine: stopped (pid $pid)"
  fi
  rm -f "$PIDFILE"
  ;;
esac
