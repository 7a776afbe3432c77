# Shared by the load scripts: a release server on a free port, driven from
# outside by wrk. Sourced after lib.sh (PostgreSQL and Redis are running).

ensure_wrk() {
  command -v wrk >/dev/null 2>&1 && return 0
  [ "$(id -u)" -eq 0 ] || die "wrk is missing: sudo apt-get install -y wrk"
  say "installing wrk from Debian's packages"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null; }
}

# Builds the release binary once.
build_release() {
  say "building the release binary"
  cargo build --release --locked --bin questline >&2
  BIN="$ROOT/target/release/questline"
}

# Starts `questline serve` with a fresh database; sets SERVER_PID, BASE.
# Extra environment is passed as arguments (NAME=value ...).
start_server() {
  local port db
  port=$(free_port 18080)
  db="questline_bench_$$"
  psql -d postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
  psql -d postgres -qc "CREATE DATABASE $db" >/dev/null
  BENCH_DB=$db
  BASE="http://127.0.0.1:$port"
  local log="$VAR/bench-server.log"
  env $("$BIN" generate-secrets | tr '\n' ' ') \
    QUESTLINE_ENV=production LOG_FORMAT=json RUST_LOG=warn \
    DATABASE_URL="postgres://questline@127.0.0.1:$PGPORT/$db" REDIS_URL="$REDIS_URL" \
    REDIS_NAMESPACE="bench$$" BIND_ADDRESS="127.0.0.1:$port" PUBLIC_BASE_URL="$BASE" \
    UPLOAD_DIR="$VAR/bench-uploads" MAIL_DIR="$VAR/bench-mail" STATIC_DIR="$ROOT/static" \
    "$@" "$BIN" serve >"$log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    curl -fsS "$BASE/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 20 "$log" >&2; die "the server did not start"; }
    sleep 0.1
  done
  die "the server did not answer /healthz"
}

stop_server() {
  if [ -n "${SERVER_PID:-}" ]; then
    kill "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  [ -n "${BENCH_DB:-}" ] && psql -d postgres -qc "DROP DATABASE IF EXISTS $BENCH_DB WITH (FORCE)" >/dev/null
  SERVER_PID=
  return 0
}

# Resident memory of the server, in MiB.
server_rss_mib() {
  awk '/^VmRSS:/ { printf "%d", $2 / 1024 }' "/proc/$SERVER_PID/status"
}
