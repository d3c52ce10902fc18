# Shared by the benchmark scripts (source it): the data set every benchmark runs on, a portal
# on it, and small helpers. Nothing here measures anything.
#
# The data set lives in a portal data directory, BENCH_DATA (default /var/tmp/recall-bench-data):
# the portal's own PostgreSQL cluster with bench/dataset.sql loaded into it, once. Its
# parameters are in $BENCH_DATA/bench-dataset.env; a directory loaded with other parameters is
# loaded again from scratch. BENCH_SIZE=small loads a 100,000-unit version (for trying the
# scripts out); the default is the full size of bench/dataset.sql.
#
# After `bench_data`:   UNITS MODELS AT_A AT_B SALES REGS TWINS SEED (the data set),
#                       ADMIN_PW (admin@demo.example's password), LOAD_MS (how long it took).
# After `start_portal`: PORTAL_PID, BASE (http://127.0.0.1:port), PG_URL (its PostgreSQL).

set -euo pipefail
BENCH_DATA=${BENCH_DATA:-/var/tmp/recall-bench-data}
BENCH_SIZE=${BENCH_SIZE:-full}
SEED=${SEED:-1}
target=${CARGO_TARGET_DIR:-target}
# PORTAL_BIN: another build of the portal to measure (e.g. the one before a change).
bin=${PORTAL_BIN:-$target/release/recall-portal}

command -v psql >/dev/null || { echo "psql is needed (apt-get install postgresql-client)"; exit 1; }
command -v oha >/dev/null || cargo install oha --locked

ms() { python3 -c "import time; print(int(time.time()*1000))"; }

# The machine line every section prints.
machine() {
  local cpu
  cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  echo "$(nproc) cores ($cpu), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, $(uname -sr), $(psql --version)"
}

_bench_pids=()
_bench_cleanup() {
  for p in "${_bench_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -n "${BENCH_WORK:-}" ]] && rm -rf "$BENCH_WORK"
  return 0
}
trap _bench_cleanup EXIT

# A scratch directory for this script's files, removed at exit.
BENCH_WORK=$(mktemp -d /var/tmp/recall-bench-work.XXXXXX)
chmod 755 "$BENCH_WORK" # PostgreSQL (user postgres) reads files COPY names from here

# Remembers a background process to stop at exit.
track() { _bench_pids+=("$1"); }

# start_portal PORT [portal flags…]: the portal on BENCH_DATA, in the background, with no
# per-address lookup limit (the load generator is one address), the demo admin signing in with
# its password alone (the recall benchmark launches through the admin pages), and logs in
# $BENCH_WORK/portal.log.
start_portal() {
  local port=$1; shift
  PORTAL_LOOKUP_RATE_PER_MINUTE=0 PORTAL_REQUIRE_2FA=off RUST_LOG=${RUST_LOG:-warn} "$bin" --data-dir "$BENCH_DATA" \
    --bind "127.0.0.1:$port" "$@" > "$BENCH_WORK/portal.log" 2>&1 &
  PORTAL_PID=$!
  track "$PORTAL_PID"
  for _ in $(seq 1 1200); do
    grep -q "Portal listening" "$BENCH_WORK/portal.log" && break
    kill -0 "$PORTAL_PID" 2>/dev/null || { cat "$BENCH_WORK/portal.log"; exit 1; }
    sleep 0.1
  done
  grep -q "Portal listening" "$BENCH_WORK/portal.log" || { cat "$BENCH_WORK/portal.log"; exit 1; }
  local pg_port
  pg_port=$(sed -n 4p "$BENCH_DATA/postgres/postmaster.pid")
  PG_URL="postgres://postgres:$(cat "$BENCH_DATA/postgres.password")@127.0.0.1:$pg_port/portal"
  BASE="http://127.0.0.1:$port"
  # Each start starts the portal's PostgreSQL with empty shared buffers. A portal that has
  # answered for a while has what lookups read in them: so is every measurement's (pg_prewarm;
  # about 2 GB at full size, read from the kernel's page cache in a few seconds).
  P -q -c "SET client_min_messages = warning" -c "CREATE EXTENSION IF NOT EXISTS pg_prewarm" \
    -c "SELECT sum(pg_prewarm(r)) FROM unnest(ARRAY['units', 'units_serial_key_model', 'units_pkey',
          'product_models', 'product_models_pkey', 'lots', 'lots_pkey', 'recall_units',
          'recall_units_pkey', 'recall_campaigns', 'recall_campaigns_pkey']::regclass[]) AS r" > /dev/null
}

# Stops the portal (and so its PostgreSQL) and waits until it is gone.
stop_portal() {
  kill "$PORTAL_PID" 2>/dev/null || true
  wait "$PORTAL_PID" 2>/dev/null || true
}

P() { psql -X -q -v ON_ERROR_STOP=1 "$PG_URL" "$@"; }

# Makes sure BENCH_DATA holds the data set (loading it when it does not) and reads its
# parameters.
bench_data() {
  local want
  if [[ "$BENCH_SIZE" == small ]]; then
    want="UNITS=100000 MODELS=200 AT_A=20000 AT_B=10000 SALES=10000 REGS=20000 TWINS=100 RECALLED_MODELS=10 SEED=$SEED"
  else
    want="UNITS=10000000 MODELS=200 AT_A=2000000 AT_B=1000000 SALES=1000000 REGS=2000000 TWINS=1000 RECALLED_MODELS=10 SEED=$SEED"
  fi
  if [[ -f "$BENCH_DATA/bench-dataset.env" ]] && grep -qxF "# $want" "$BENCH_DATA/bench-dataset.env"; then
    # shellcheck disable=SC1091
    source "$BENCH_DATA/bench-dataset.env"
    return
  fi
  [[ ! -e "$BENCH_DATA" ]] || { echo "== $BENCH_DATA holds another data set: loading again"; rm -rf "$BENCH_DATA"; }
  mkdir -p "$BENCH_DATA"
  chmod 755 "$BENCH_DATA"
  echo "== loading the data set into $BENCH_DATA ($want)"
  start_portal 18199 --run-worker false
  local admin_pw t0 load_ms
  admin_pw=$(awk '$2 == "admin@demo.example" { print $3 }' "$BENCH_WORK/portal.log")
  [[ -n "$admin_pw" ]] || { echo "no demo admin password in the log"; cat "$BENCH_WORK/portal.log"; exit 1; }
  eval "$want"
  t0=$(ms)
  P -v seed="$SEED" -v units="$UNITS" -v models="$MODELS" -v at_a="$AT_A" -v at_b="$AT_B" \
    -v sales="$SALES" -v regs="$REGS" -v twins="$TWINS" \
    -v recalled_models="$RECALLED_MODELS" -f bench/dataset.sql
  load_ms=$(( $(ms) - t0 ))
  stop_portal
  {
    echo "# $want"
    echo "$want" | tr ' ' '\n'
    echo "ADMIN_PW='$admin_pw'"
    echo "LOAD_MS=$load_ms"
  } > "$BENCH_DATA/bench-dataset.env"
  echo "   loaded in $((load_ms / 1000)) s"
  # shellcheck disable=SC1091
  source "$BENCH_DATA/bench-dataset.env"
}

# The oha regex of random existing dataset serials: BC00000000 … BC(UNITS-1), UNITS a power of
# ten.
serial_regex() {
  local digits=$(( ${#UNITS} - 1 ))
  echo "BC$(printf '0%.0s' $(seq 1 $((8 - digits))))[0-9]{$digits}"
}

# GTIN-14 of dataset product model i (09506001 and i in five digits, then the check digit).
model_gtin() {
  python3 -c "
b = '09506001%05d' % $1
s = sum(int(d) * (3 if p % 2 == 0 else 1) for p, d in enumerate(b))
print(b + str((10 - s % 10) % 10))"
}

# Signs in as the demo admin into cookie jar $BENCH_WORK/cookies; prints nothing.
sign_in() {
  local jar="$BENCH_WORK/cookies" token
  token=$(curl -s -c "$jar" -b "$jar" "$BASE/login" | csrf_of)
  curl -s -o /dev/null -c "$jar" -b "$jar" -H "Origin: $BASE" \
    --data-urlencode "csrf_token=$token" --data-urlencode "email=admin@demo.example" \
    --data-urlencode "password=$ADMIN_PW" "$BASE/login"
}
csrf_of() { grep -o 'name="csrf_token" value="[^"]*"' | head -1 | sed 's/.*value="//; s/"$//'; }

# Replaces the section of BENCHMARKS.md whose heading starts with $1 by the file $2 (or adds
# it before "## How to run").
put_section() {
  python3 - "$1" "$2" <<'PY'
import re, sys
heading, path = sys.argv[1], sys.argv[2]
section = open(path).read().strip() + "\n"
try:
    text = open("BENCHMARKS.md").read()
except FileNotFoundError:
    text = "# Benchmarks\n"
pattern = r"\n" + re.escape(heading) + r".*?(?=\n## |\Z)"
if re.search(pattern, text, flags=re.S):
    text = re.sub(pattern, lambda _: "\n" + section, text, count=1, flags=re.S)
elif "\n## How to run" in text:
    text = text.replace("\n## How to run", "\n" + section + "\n## How to run", 1)
else:
    text = text.rstrip() + "\n\n" + section
open("BENCHMARKS.md", "w").write(text)
PY
}
