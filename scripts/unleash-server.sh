#!/usr/bin/env bash
# unleash-server.sh — a throwaway unleash-server 8.2.0 (from npm) on PostgreSQL (from Debian),
# both on 127.0.0.1 only, with known API tokens, for the real-server conformance tests of
# crates/unleash-client (tests/real_server.rs).
#
# Usage: scripts/unleash-server.sh start | stop | stop-app | start-app | env | status
#   start      install what is missing, start PostgreSQL and the server, wait until healthy,
#              write the env file; prints the env file's path as the last line on stdout.
#              Returns at once when the server is already up (idempotent).
#   stop       stop the server and PostgreSQL (by PID file and pg_ctl, never by name).
#   stop-app   stop only the server (node), keeping PostgreSQL and its data: a server outage.
#   start-app  start the server again after stop-app (PostgreSQL is started too if it is down).
#   env        print the env file (sourceable `export` lines) on stdout.
#   status     say what is running; exit 0 when the server is healthy.
#
# The env file ($STATE/unleash.env, by default target/unleash-server/unleash.env) sets:
#   UNLEASH_URL           http://127.0.0.1:<port> (the server root, without /api)
#   UNLEASH_API_TOKEN     a backend (client) token for /api/client/*
#   UNLEASH_ADMIN_TOKEN   an admin token for /api/admin/*
#   UNLEASH_FRONTEND_TOKEN, UNLEASH_SERVER_HOME, UNLEASH_SERVER_SCRIPT
#
# Needs: root on Debian 12 (apt-get for PostgreSQL when it is missing; PostgreSQL runs as the
# 'postgres' OS user), the npm registry, and node >= 20 (Debian 12's own nodejs is 18: when the
# machine's node is missing or older, a node 22 binary is installed from the npm registry into
# the state directory). Everything the script installs or writes, apart from the apt packages,
# lives in the state directory.
#
# Tunables (environment): UNLEASH_SERVER_HOME (state dir, default <repo>/target/unleash-server),
# UNLEASH_SERVER_VERSION (8.2.0), UNLEASH_PORT (4242), UNLEASH_PG_PORT (5433),
# UNLEASH_HEALTH_TIMEOUT (seconds, 180), UNLEASH_FORCE_APT=1 (run apt-get even when PostgreSQL
# is installed, to check that path). The ports and tokens used by `start` are remembered in
# the state dir, so `stop-app`/`start-app`/`env` need no variables.
#
# Timings seen here (2 cores): from nothing 40-55 s (apt-get ~10 s when PostgreSQL is missing,
# npm install 31-36 s, initdb + migrations + start 5-9 s); warm (installed, stopped) ~4 s;
# already running 0.06 s; stop ~2 s. The PostgreSQL cluster lives in $STATE/pg, or in
# /var/tmp/unleash-server-pg-<hash> when the 'postgres' user cannot enter $STATE.
set -euo pipefail

SCRIPT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
ROOT="$(cd "$(dirname "$SCRIPT")/.." && pwd)"
STATE="${UNLEASH_SERVER_HOME:-$ROOT/target/unleash-server}"
CONF="$STATE/server.conf"

log() { printf '[unleash-server %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---- configuration: remembered from the first start, so every subcommand agrees -----------
load_conf() {
  VERSION=8.2.0 PORT=4242 PG_PORT=5433 HEALTH_TIMEOUT=180
  if [[ -f "$CONF" ]]; then
    # shellcheck disable=SC1090
    . "$CONF"
  fi
  VERSION="${UNLEASH_SERVER_VERSION:-$VERSION}"
  PORT="${UNLEASH_PORT:-$PORT}"
  PG_PORT="${UNLEASH_PG_PORT:-$PG_PORT}"
  HEALTH_TIMEOUT="${UNLEASH_HEALTH_TIMEOUT:-$HEALTH_TIMEOUT}"
  ADMIN_TOKEN='*:*.metrics-hub-admin-token'
  CLIENT_TOKEN='default:development.metrics-hub-client-token'
  FRONTEND_TOKEN='default:development.metrics-hub-frontend-token'
  BASE_URL="http://127.0.0.1:$PORT"
  # PostgreSQL runs as the 'postgres' user, which must reach its data directory. When the
  # checkout lies under a directory it cannot enter (e.g. /root), the cluster goes to /var/tmp.
  PGROOT="$STATE"
  if [[ $(id -u) -eq 0 ]] && id postgres >/dev/null 2>&1 && [[ -d "$STATE" ]] \
      && ! runuser -u postgres -- test -x "$STATE" 2>/dev/null; then
    PGROOT="/var/tmp/unleash-server-pg-$(printf '%s' "$STATE" | md5sum | cut -c1-12)"
  fi
  PGDATA="$PGROOT/pg"
  PGSOCK="$PGROOT/pgsock"
  PGLOG="$PGROOT/pg.log"
  SERVER_DIR="$STATE/server"
  PIDFILE="$STATE/unleash.pid"
  ENVFILE="$STATE/unleash.env"
  DB_NAME=unleash DB_USER=unleash_user DB_PASS=unleash_pw
}

save_conf() {
  cat >"$CONF" <<EOF
VERSION='$VERSION'
PORT='$PORT'
PG_PORT='$PG_PORT'
HEALTH_TIMEOUT='$HEALTH_TIMEOUT'
EOF
}

write_env() {
  cat >"$ENVFILE" <<EOF
export UNLEASH_URL='$BASE_URL'
export UNLEASH_API_TOKEN='$CLIENT_TOKEN'
export UNLEASH_ADMIN_TOKEN='$ADMIN_TOKEN'
export UNLEASH_FRONTEND_TOKEN='$FRONTEND_TOKEN'
export UNLEASH_SERVER_HOME='$STATE'
export UNLEASH_SERVER_SCRIPT='$SCRIPT'
EOF
}

healthy() { curl -fsS --max-time 2 "$BASE_URL/health" 2>/dev/null | grep -q GOOD; }

app_pid() {
  # Our node process, only if the PID file still names a running unleash-server.
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid="$(cat "$PIDFILE")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null \
    && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q unleash-server \
    && echo "$pid"
}

# ---- installation ----------------------------------------------------------------------------
APT_UPDATED=0
apt_install() {
  [[ $(id -u) -eq 0 ]] || die "need root to apt-get install $*"
  export DEBIAN_FRONTEND=noninteractive
  if [[ $APT_UPDATED == 0 ]]; then
    log "apt-get update"
    apt-get update -qq >&2
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  apt-get install -y -qq --no-install-recommends "$@" >&2
}

find_pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

ensure_tools() {
  command -v curl >/dev/null || apt_install curl ca-certificates
  PG_BIN="$(find_pg_bin || true)"
  if [[ -z "$PG_BIN" || ! -x "$PG_BIN/initdb" || "${UNLEASH_FORCE_APT:-0}" == 1 ]]; then
    apt_install postgresql
    PG_BIN="$(find_pg_bin || true)"
  fi
  [[ -x "${PG_BIN:-}/initdb" ]] || die "initdb not found under /usr/lib/postgresql/*/bin after apt-get"
}

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

ensure_node() {
  # unleash-server 8.x needs node >= 20 (its engines field says 22; it runs on 20).
  NODE=""
  if command -v node >/dev/null && (( $(node_major node) >= 20 )); then
    NODE="$(command -v node)"
    NPM="$(command -v npm || true)"
    [[ -n "$NPM" ]] || { apt_install npm; NPM="$(command -v npm)"; }
    return
  fi
  local local_node="$STATE/node/node_modules/.bin/node"
  if [[ -x "$local_node" ]] && (( $(node_major "$local_node") >= 20 )); then
    NODE="$local_node"
  else
    # Debian 12 only has node 18: use it (and its npm) to fetch a node 22 binary from the
    # npm registry, where the official builds are published as node-linux-<arch> packages.
    command -v npm >/dev/null || apt_install nodejs npm
    local arch
    case "$(uname -m)" in
      x86_64) arch=x64 ;;
      aarch64) arch=arm64 ;;
      *) die "no node >= 20 and no npm package of node for $(uname -m)" ;;
    esac
    log "installing node 22 (node-linux-$arch) from the npm registry into $STATE/node"
    mkdir -p "$STATE/node"
    [[ -f "$STATE/node/package.json" ]] || echo '{"name":"unleash-node","private":true}' >"$STATE/node/package.json"
    (cd "$STATE/node" && npm install --no-audit --no-fund --loglevel=error "node-linux-$arch@22" >&2)
    ln -sf "../node-linux-$arch/bin/node" "$STATE/node/node_modules/.bin/node"
    NODE="$local_node"
    (( $(node_major "$NODE") >= 20 )) || die "could not install node >= 20"
  fi
  # Run npm's own JavaScript with the new node, so that it also works with Debian's npm.
  NPM="$(command -v npm)"
  export PATH="$(dirname "$NODE"):$PATH"
}

ensure_server_installed() {
  local installed
  installed="$("$NODE" -p "try{require('$SERVER_DIR/node_modules/unleash-server/package.json').version}catch(e){''}" 2>/dev/null || true)"
  [[ "$installed" == "$VERSION" ]] && return
  log "npm install unleash-server@$VERSION into $SERVER_DIR (about a minute)"
  mkdir -p "$SERVER_DIR"
  [[ -f "$SERVER_DIR/package.json" ]] || echo '{"name":"unleash-local","private":true}' >"$SERVER_DIR/package.json"
  if ! (cd "$SERVER_DIR" && "$NPM" install --no-audit --no-fund --loglevel=error --engine-strict=false \
        "unleash-server@$VERSION" >"$STATE/npm-install.log" 2>&1); then
    tail -30 "$STATE/npm-install.log" >&2
    die "npm install unleash-server@$VERSION failed (log: $STATE/npm-install.log)"
  fi
}

# ---- PostgreSQL ------------------------------------------------------------------------------
pg_run() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_pg() {
  PG_BIN="${PG_BIN:-$(find_pg_bin || true)}"
  [[ -x "${PG_BIN:-}/pg_ctl" ]] || die "PostgreSQL is not installed; run '$0 start'"
  if [[ $(id -u) -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    load_conf # the data directory's place depends on that user
  fi
  mkdir -p "$PGROOT" "$PGSOCK"
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- test -x "$PGROOT" \
      || die "the 'postgres' user cannot reach $PGROOT; set UNLEASH_SERVER_HOME to a directory it can enter"
  fi
  [[ $(id -u) -eq 0 ]] && chown postgres:postgres "$PGSOCK"
  if [[ ! -f "$PGDATA/PG_VERSION" ]]; then
    log "initdb $PGDATA"
    rm -rf "$PGDATA"
    mkdir -p "$PGDATA"
    [[ $(id -u) -eq 0 ]] && chown postgres:postgres "$PGDATA"
    pg_run "$PG_BIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  touch "$PGLOG"
  [[ $(id -u) -eq 0 ]] && chown postgres:postgres "$PGLOG"
  if ! pg_run "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    pg_run "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PGLOG" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PGSOCK" start >/dev/null \
      || { tail -20 "$PGLOG" >&2; die "PostgreSQL did not start"; }
  fi
  local psql=("$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qtA)
  [[ "$("${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname='$DB_USER'")" == 1 ]] \
    || "${psql[@]}" -c "CREATE ROLE $DB_USER LOGIN PASSWORD '$DB_PASS'" >/dev/null
  [[ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname='$DB_NAME'")" == 1 ]] \
    || "${psql[@]}" -c "CREATE DATABASE $DB_NAME OWNER $DB_USER" >/dev/null
}

stop_pg() {
  local pg_bin
  pg_bin="$(find_pg_bin || true)"
  if [[ -f "$PGDATA/postmaster.pid" && -n "$pg_bin" ]]; then
    log "stopping PostgreSQL (pid $(head -1 "$PGDATA/postmaster.pid"))"
    pg_run "$pg_bin/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null || log "pg_ctl stop failed"
  else
    log "PostgreSQL in $PGDATA is not running"
  fi
}

# ---- the server ------------------------------------------------------------------------------
start_app() {
  if app_pid >/dev/null && healthy; then
    log "unleash-server already running (pid $(app_pid))"
    return
  fi
  if curl -s --max-time 2 -o /dev/null "$BASE_URL/health"; then
    die "something that is not ours already answers on $BASE_URL; stop it or set UNLEASH_PORT"
  fi
  NODE="${NODE:-}"
  if [[ -z "$NODE" ]]; then
    if command -v node >/dev/null && (( $(node_major node) >= 20 )); then
      NODE="$(command -v node)"
    elif [[ -x "$STATE/node/node_modules/.bin/node" ]]; then
      NODE="$STATE/node/node_modules/.bin/node"
    else
      die "no node >= 20; run '$0 start'"
    fi
  fi
  [[ -f "$SERVER_DIR/node_modules/unleash-server/dist/server.js" ]] || die "unleash-server is not installed; run '$0 start'"
  log "starting unleash-server $VERSION on $BASE_URL"
  local t0=$SECONDS
  (
    cd "$SERVER_DIR"
    export DATABASE_URL="postgres://$DB_USER:$DB_PASS@127.0.0.1:$PG_PORT/$DB_NAME"
    export DATABASE_SSL=false
    export HTTP_HOST=127.0.0.1 HTTP_PORT="$PORT"
    export INIT_ADMIN_API_TOKENS="$ADMIN_TOKEN"
    export INIT_BACKEND_API_TOKENS="$CLIENT_TOKEN"
    export INIT_FRONTEND_API_TOKENS="$FRONTEND_TOKEN"
    export SEND_TELEMETRY=false CHECK_VERSION=false
    export LOG_LEVEL="${LOG_LEVEL:-warn}" TZ=UTC NODE_ENV=production
    # setsid: the server must outlive this script and the test process that may call it.
    exec setsid "$NODE" node_modules/unleash-server/dist/server.js >>"$STATE/unleash.log" 2>&1 </dev/null
  ) &
  echo $! >"$PIDFILE"
  local i
  for ((i = 0; i < HEALTH_TIMEOUT * 2; i++)); do
    app_pid >/dev/null || { tail -30 "$STATE/unleash.log" >&2; die "unleash-server exited (log: $STATE/unleash.log)"; }
    healthy && break
    sleep 0.5
  done
  healthy || { tail -30 "$STATE/unleash.log" >&2; die "unleash-server not healthy after ${HEALTH_TIMEOUT}s"; }
  # The tokens are inserted during start-up; wait until both are accepted.
  local client_code admin_code
  for ((i = 0; i < 60; i++)); do
    client_code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $CLIENT_TOKEN" "$BASE_URL/api/client/features")
    admin_code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $ADMIN_TOKEN" "$BASE_URL/api/admin/projects")
    [[ "$client_code" == 200 && "$admin_code" == 200 ]] && break
    sleep 0.5
  done
  [[ "$client_code" == 200 && "$admin_code" == 200 ]] \
    || die "tokens not accepted: client token -> $client_code, admin token -> $admin_code"
  log "unleash-server healthy after $((SECONDS - t0)) s (pid $(cat "$PIDFILE"))"
}

stop_app() {
  local pid
  if pid="$(app_pid)"; then
    log "stopping unleash-server (pid $pid)"
    kill -TERM "$pid"
    local i
    for ((i = 0; i < 30; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
      log "pid $pid still alive after 15 s, SIGKILL"
      kill -KILL "$pid"
    fi
  else
    log "unleash-server is not running"
  fi
  rm -f "$PIDFILE"
}

# ---- subcommands -----------------------------------------------------------------------------
cmd="${1:-}"
case "$cmd" in
  start)
    T0=$SECONDS
    mkdir -p "$STATE"
    STATE="$(cd "$STATE" && pwd)"
    CONF="$STATE/server.conf"
    load_conf
    if app_pid >/dev/null && healthy; then
      write_env
      log "already running (pid $(app_pid))"
      echo "$ENVFILE"
      exit 0
    fi
    save_conf
    ensure_tools
    ensure_node
    ensure_server_installed
    log "installed in $((SECONDS - T0)) s"
    start_pg
    start_app
    write_env
    log "ready in $((SECONDS - T0)) s; env file: $ENVFILE"
    echo "$ENVFILE"
    ;;
  start-app)
    load_conf
    [[ -f "$PGDATA/PG_VERSION" ]] || die "not set up; run '$0 start' first"
    start_pg
    start_app
    write_env
    ;;
  stop-app)
    load_conf
    stop_app
    ;;
  stop)
    load_conf
    stop_app
    stop_pg
    ;;
  env)
    load_conf
    [[ -f "$ENVFILE" ]] || die "no env file; run '$0 start' first"
    cat "$ENVFILE"
    ;;
  status)
    load_conf
    if pid="$(app_pid)" && healthy; then
      log "unleash-server healthy at $BASE_URL (pid $pid)"
      exit 0
    fi
    log "unleash-server not running"
    exit 1
    ;;
  *)
    echo "usage: $0 start | stop | stop-app | start-app | env | status" >&2
    exit 2
    ;;
esac
