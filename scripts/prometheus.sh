#!/usr/bin/env bash
# prometheus.sh — Debian's `prometheus` package (the server and `promtool`) for the tests that
# need a real Prometheus: the renderer's output checked by `promtool check metrics`, and the
# exporter scraped end to end by a real server.
#
# Usage: scripts/prometheus.sh install | promtool ARGS... | prometheus ARGS... | status
#   install     install the package when `promtool` or `prometheus` is missing (idempotent);
#               prints nothing on stdout. Never starts the Debian service.
#   promtool    run promtool with ARGS (installing first when missing).
#   prometheus  run the prometheus server with ARGS in the foreground (installing first).
#   status      print the paths and versions; exit 0 when both are installed.
#
# Needs root on Debian 12 and Debian's package registry for the first install (about 20 s
# here); afterwards it needs nothing. PROMETHEUS_BIN_DIR overrides where the binaries are looked
# up (default /usr/bin), for a machine where they come from elsewhere.
set -euo pipefail

BIN_DIR="${PROMETHEUS_BIN_DIR:-/usr/bin}"

log() { printf '[prometheus %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

installed() { [[ -x "$BIN_DIR/promtool" && -x "$BIN_DIR/prometheus" ]]; }

install() {
  installed && return 0
  [[ $(id -u) -eq 0 ]] || die "promtool is missing and installing Debian's prometheus package needs root"
  command -v apt-get >/dev/null || die "promtool is missing and this machine has no apt-get"
  log "installing Debian's prometheus package (promtool and the server)"
  # policy-rc.d keeps the package's service from being started by the install.
  local policy=/usr/sbin/policy-rc.d created=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
  fi
  local status=0
  {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus ||
      { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus; }
  } >&2 || status=$?
  [[ $created -eq 1 ]] && rm -f "$policy"
  [[ $status -eq 0 ]] || die "apt-get install prometheus failed (exit $status)"
  installed || die "the prometheus package is installed but $BIN_DIR/promtool is not there"
}

cmd="${1:-}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
  install) install ;;
  promtool) install; exec "$BIN_DIR/promtool" "$@" ;;
  prometheus) install; exec "$BIN_DIR/prometheus" "$@" ;;
  status)
    installed || { echo "not installed"; exit 1; }
    "$BIN_DIR/promtool" --version 2>&1 | head -1
    "$BIN_DIR/prometheus" --version 2>&1 | head -1 ;;
  *) echo "usage: $0 install | promtool ARGS... | prometheus ARGS... | status" >&2; exit 2 ;;
esac
