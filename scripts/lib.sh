# Shared set-up for scripts/dev and scripts/test. Sourced, not run.
#
# Installs what is missing from Debian's packages (when root), starts a private
# PostgreSQL and Redis under ./var unless DATABASE_URL / REDIS_URL point
# elsewhere, and exports the variables the app and the tests read.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VAR="$ROOT/var"
mkdir -p "$VAR"

PG_PORT=${QUESTLINE_PG_PORT:-55432}
REDIS_PORT=${QUESTLINE_REDIS_PORT:-56379}

# True when something already listens on 127.0.0.1:$1.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The first port from $1 up that nothing listens on, so a checkout never
# collides with another checkout's (or the machine's) servers.
free_port() {
  local p=$1
  while port_in_use "$p"; do p=$((p + 1)); done
  echo "$p"
}

# Minutes and seconds since the outermost script started (shared with the
# scripts it calls), so every line says when it happened.
QUESTLINE_T0=${QUESTLINE_T0:-$(date +%s)}
export QUESTLINE_T0
elapsed() {
  local s=$(($(date +%s) - QUESTLINE_T0))
  printf '%dm%02ds' $((s / 60)) $((s % 60))
}
say() { printf '\033[1;34m==>\033[0m [%s] %s\n' "$(elapsed)" "$*" >&2; }

# Named stages for the closing table of `scripts/test`: `stage NAME` ends
# the stage before it. The log is shared with the scripts it calls; a
# script run on its own (no log set) only prints the line.
STAGE_LOG=${STAGE_LOG:-}
stage() {
  say "$*"
  if [ -n "$STAGE_LOG" ]; then printf '%s\t%s\n' "$(date +%s)" "$*" >>"$STAGE_LOG"; fi
}
# Prints each stage's duration and the total, then forgets the log.
print_stages() {
  [ -n "$STAGE_LOG" ] && [ -f "$STAGE_LOG" ] || return 0
  printf '\n%-48s %8s\n' "stage" "time" >&2
  awk -F'\t' -v now="$(date +%s)" -v t0="$QUESTLINE_T0" '
    { start[NR] = $1; name[NR] = $2 }
    END {
      for (i = 1; i <= NR; i++) {
        end = (i < NR) ? start[i + 1] : now
        printf "%-48s %5dm%02ds\n", name[i], (end - start[i]) / 60, (end - start[i]) % 60
      }
      printf "%-48s %5dm%02ds\n", "total", (now - t0) / 60, (now - t0) % 60
    }' "$STAGE_LOG" >&2
  rm -f "$STAGE_LOG"
}
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null 2>&1 || die "cargo not found: install the Rust toolchain (https://rustup.rs) first"

pg_bindir() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

# Debian package names for whatever this machine lacks.
missing_packages() {
  local pkgs=()
  command -v cc >/dev/null 2>&1 || pkgs+=(gcc libc6-dev)
  command -v pkg-config >/dev/null 2>&1 || pkgs+=(pkg-config)
  { pkg-config --exists libpq 2>/dev/null || command -v pg_config >/dev/null 2>&1; } || pkgs+=(libpq-dev)
  if [ -z "${DATABASE_URL:-}" ]; then
    [ -n "$(pg_bindir)" ] && [ -x "$(pg_bindir)/initdb" ] || pkgs+=(postgresql)
  fi
  command -v psql >/dev/null 2>&1 || pkgs+=(postgresql-client)
  command -v redis-server >/dev/null 2>&1 || pkgs+=(redis-server)
  echo "${pkgs[@]:-}"
}

ensure_packages() {
  local pkgs
  pkgs=$(missing_packages)
  [ -z "$pkgs" ] && return 0
  if [ "$(id -u)" -eq 0 ]; then
    say "installing from Debian's packages: $pkgs"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
    # Debian's postinst may start a system cluster and Redis on the default
    # ports; ours run on their own ports, so those are left as they are.
  else
    die "missing system packages. Run:  sudo apt-get install -y $pkgs   and try again"
  fi
}

# PostgreSQL refuses to run as root, so as root the cluster belongs to the
# postgres user, which must be able to reach the data directory.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_data_dir() {
  local dir="$VAR/postgres"
  if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$VAR" 2>/dev/null; then
    # The checkout sits somewhere the postgres user cannot enter (say /root).
    dir="/var/tmp/questline-$(printf '%s' "$ROOT" | md5sum | cut -c1-12)/postgres"
  fi
  echo "$dir"
}

start_postgres() {
  if [ -n "${DATABASE_URL:-}" ]; then
    say "using DATABASE_URL from the environment"
    return 0
  fi
  local bin data
  bin=$(pg_bindir)
  data=$(pg_data_dir)
  mkdir -p "$data"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$data" && chmod 700 "$data"
  if [ ! -f "$data/PG_VERSION" ]; then
    say "creating a private PostgreSQL cluster in $data"
    as_pg "$bin/initdb" -D "$data" -U questline --auth=trust -E UTF8 --locale=C >/dev/null
  fi
  if as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    PG_PORT=$(sed -n 4p "$data/postmaster.pid")
  else
    PG_PORT=$(free_port "$PG_PORT")
    say "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    as_pg "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
      -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $data -c max_connections=300 -c fsync=${QUESTLINE_PG_FSYNC:-on}" \
      start >/dev/null || { tail -n 20 "$data/server.log" >&2; die "PostgreSQL did not start"; }
  fi
  export PGHOST=127.0.0.1 PGPORT=$PG_PORT PGUSER=questline
  if ! psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'questline'" | grep -q 1; then
    psql -d postgres -qc "CREATE DATABASE questline" >/dev/null
  fi
  export DATABASE_URL="postgres://questline@127.0.0.1:$PG_PORT/questline"
}

start_redis() {
  if [ -n "${REDIS_URL:-}" ]; then
    say "using REDIS_URL from the environment"
    return 0
  fi
  local dir="$VAR/redis"
  mkdir -p "$dir"
  if [ -f "$dir/port" ] && redis-cli -p "$(cat "$dir/port")" ping >/dev/null 2>&1 && [ -f "$dir/redis.pid" ] && kill -0 "$(cat "$dir/redis.pid")" 2>/dev/null; then
    REDIS_PORT=$(cat "$dir/port")
  else
    REDIS_PORT=$(free_port "$REDIS_PORT")
    echo "$REDIS_PORT" >"$dir/port"
    say "starting Redis on 127.0.0.1:$REDIS_PORT"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --dir "$dir" \
      --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --save "" --appendonly no
    for _ in $(seq 1 50); do
      redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
      sleep 0.1
    done
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 || die "Redis did not start (see $dir/redis.log)"
  fi
  export REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
}

# Development secrets are made once and kept, so sessions survive restarts.
ensure_dev_secrets() {
  local file="$VAR/secrets.env"
  if [ ! -f "$file" ]; then
    say "generating development secrets in $file"
    umask 077
    {
      echo "SESSION_SECRET=$(head -c 64 /dev/urandom | base64 -w0)"
      echo "MASTER_KEY=$(head -c 32 /dev/urandom | base64 -w0)"
    } >"$file"
  fi
  set -a
  # shellcheck disable=SC1090
  . "$file"
  set +a
}

# cargo-deny from crates.io, built once into ~/.cargo/bin.
ensure_cargo_deny() {
  if ! cargo deny --version >/dev/null 2>&1; then
    stage "installing cargo-deny (crates.io, once)"
    cargo install --locked cargo-deny >/dev/null
  fi
}

# deny.toml's policy: licences (compatible with the AGPL), sources (only
# crates.io) and bans, read from Cargo.lock; then the RustSec advisories,
# from the current database when the network reaches it, else from the
# snapshot in ../shared/advisory-db. Vulnerabilities fail the run.
run_deny() {
  stage "cargo deny: licences, sources, bans"
  # Every platform's crates, which cargo metadata reads (a build fetches
  # only this one's); then nothing below needs the registry.
  cargo fetch --locked >/dev/null 2>&1 || cargo fetch --locked
  cargo deny --offline check licenses sources bans || die "a dependency breaks deny.toml (licence, source or ban)"
  stage "cargo deny: advisories"
  local status=0
  timeout 120 cargo deny check advisories 2>"$VAR/deny-fetch.log" || status=$?
  [ "$status" -eq 0 ] && return 0
  # Unreachable (a refused connection, a lookup that fails, or no answer
  # within the timeout) falls back to the snapshot; anything else is the
  # check's own verdict.
  if [ "$status" -ne 124 ] && ! grep -q "failed to fetch advisory database\|failed to acquire" "$VAR/deny-fetch.log"; then
    cat "$VAR/deny-fetch.log" >&2
    die "cargo deny found vulnerable dependencies (or could not read the advisory database: see above)"
  fi
  local snapshot_tar="$ROOT/../shared/advisory-db/advisory-db.tar.gz"
  if [ ! -f "$snapshot_tar" ]; then
    say "warning: the advisory database is out of reach and $snapshot_tar is missing; advisories not checked"
    return 0
  fi
  # cargo-deny keeps each database in a directory named after its URL,
  # which a failed fetch names; a killed one says nothing, so ask again.
  local dbs="$VAR/advisory-dbs" config="$VAR/deny-offline.toml" name
  # [advisories] is deny.toml's last table: the line lands in it.
  { cat "$ROOT/deny.toml"; printf 'db-path = "%s"\n' "$dbs"; } >"$config"
  name=$(grep -o 'advisory-db-[0-9a-f]\{16\}' "$VAR/deny-fetch.log" | head -n 1 || true)
  if [ -z "$name" ]; then
    name=$(timeout 60 cargo deny --config "$config" check advisories 2>&1 | grep -o 'advisory-db-[0-9a-f]\{16\}' | head -n 1 || true)
  fi
  [ -n "$name" ] || { cat "$VAR/deny-fetch.log" >&2; die "cannot tell where cargo-deny keeps its advisory database"; }
  local db="$dbs/$name"
  if [ ! -f "$db/.snapshot-of" ] || ! cmp -s "$db/.snapshot-of" <(sha256sum "$snapshot_tar" | cut -d' ' -f1); then
    rm -rf "$db" && mkdir -p "$db"
    tar -xzf "$snapshot_tar" -C "$db"
    # Committed at the snapshot's own date (its newest advisory), so its
    # age is the real one.
    local newest
    newest=$(find "$db/crates" -type f -printf '%T@\n' | sort -n | tail -n 1 | cut -d. -f1)
    git -C "$db" init -q -b main
    git -C "$db" add -A
    GIT_COMMITTER_DATE="@$newest" GIT_AUTHOR_DATE="@$newest" \
      git -C "$db" -c user.name=snapshot -c user.email=snapshot@localhost commit -qm snapshot
    sha256sum "$snapshot_tar" | cut -d' ' -f1 >"$db/.snapshot-of"
  fi
  local taken age
  taken=$(git -C "$db" log -1 --format=%cs)
  age=$(( ($(date +%s) - $(git -C "$db" log -1 --format=%ct)) / 86400 ))
  say "the advisory database is out of reach: using the snapshot in ../shared/advisory-db, as of $taken ($age days old)"
  cargo deny --offline --config "$config" check advisories || die "cargo deny found vulnerable dependencies"
}

# The browser tests' tools: Debian's Chromium and ChromeDriver, and axe-core
# (pinned in tests/browser/package-lock.json) from the npm registry.
ensure_browser_tools() {
  local pkgs=()
  command -v chromium >/dev/null 2>&1 || pkgs+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || pkgs+=(chromium-driver)
  command -v npm >/dev/null 2>&1 || pkgs+=(npm)
  if [ ${#pkgs[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
      say "installing from Debian's packages: ${pkgs[*]}"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
    else
      die "missing system packages. Run:  sudo apt-get install -y ${pkgs[*]}   and try again"
    fi
  fi
  local dir="$ROOT/tests/browser"
  if [ ! -f "$dir/node_modules/axe-core/axe.min.js" ]; then
    say "installing axe-core from the npm registry"
    (cd "$dir" && npm ci --no-audit --no-fund --silent)
  fi
  export CHROME_BIN=${CHROME_BIN:-$(command -v chromium)}
  export CHROMEDRIVER_BIN=${CHROMEDRIVER_BIN:-$(command -v chromedriver)}
  export AXE_CORE_JS="$dir/node_modules/axe-core/axe.min.js"
}
