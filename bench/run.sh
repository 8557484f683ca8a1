#!/usr/bin/env bash
# Benchmarks the token server (issue 7): builds the release binaries, starts gatehouse-server on loopback
# against SQLite (a temp file) and PostgreSQL (tests/services/postgres.sh, a fresh database), times its cold
# start to /readyz, reads its RSS, registers clients through the admin API and runs every scenario with
# gatehouse-bench. Prints Markdown tables. Exits non-zero if any request failed (timings are never asserted).
#
#   bash bench/run.sh                 full run: 2 s warm-up + 10 s per scenario, 32 connections
#   bash bench/run.sh --smoke         CI: every scenario ~1 s at 4 connections; asserts zero errors only.
#                                     Uses the dev profile (the binaries CI builds anyway) unless --release.
#
# Flags (or environment): --duration S (BENCH_DURATION), --warmup S (BENCH_WARMUP), --concurrency N
# (BENCH_CONCURRENCY), --backends sqlite,postgres (BENCH_BACKENDS), --scenarios a,b (BENCH_SCENARIOS),
# --cold-runs N, --max-load L (wait, a bounded number of times, until the 1-minute load is below L),
# --release / --debug (cargo profile; full runs are always meant to be --release), --no-build (reuse
# the binaries in target/).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

duration="${BENCH_DURATION:-10}"
warmup="${BENCH_WARMUP:-2}"
concurrency="${BENCH_CONCURRENCY:-32}"
backends="${BENCH_BACKENDS:-sqlite,postgres}"
scenarios="${BENCH_SCENARIOS:-all}"
cold_runs=5
idle_sample=1
max_load=0.5
load_tries=6
build=1
smoke=0
profile=""

while [[ $# -gt 0 ]]; do
  case "$1" in
    --smoke) smoke=1; duration=1; warmup=0.2; concurrency=4; cold_runs=2; idle_sample=0.1; load_tries=0 ;;
    --duration) duration="$2"; shift ;;
    --warmup) warmup="$2"; shift ;;
    --concurrency) concurrency="$2"; shift ;;
    --backends) backends="$2"; shift ;;
    --scenarios) scenarios="$2"; shift ;;
    --cold-runs) cold_runs="$2"; shift ;;
    --max-load) max_load="$2"; shift ;;
    --no-build) build=0 ;;
    --release) profile=release ;;
    --debug) profile=debug ;;
    -h|--help) sed -n '2,14p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "unknown flag $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [[ -z $profile ]]; then
  if [[ $smoke -eq 1 ]]; then profile=debug; else profile=release; fi
fi
profile_flag=(); [[ $profile == release ]] && profile_flag=(--release)
if [[ $build -eq 1 ]]; then
  log "cargo build ${profile_flag[*]} -p gatehouse-server -p gatehouse-bench"
  cargo build "${profile_flag[@]}" -p gatehouse-server -p gatehouse-bench >&2
fi
target_dir="${CARGO_TARGET_DIR:-$root/target}"
server_bin="$target_dir/$profile/gatehouse-server"
bench_bin="$target_dir/$profile/gatehouse-bench"
for bin in "$server_bin" "$bench_bin"; do
  [[ -x $bin ]] || { echo "missing $bin: run without --no-build" >&2; exit 1; }
done

work="$(mktemp -d -t gatehouse-bench.XXXXXX)"
server_pid=""
pg_admin_url=""
pg_databases=()
cleanup() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ -n $pg_admin_url ]]; then
    for db in "${pg_databases[@]}"; do
      psql -q "$pg_admin_url" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    done
  fi
  rm -rf "$work"
}
trap cleanup EXIT

random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
load1() { cut -d' ' -f1 /proc/loadavg; }
status_mib() { awk -v f="$2:" '$1 == f { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "-"; }

# Waits (a bounded number of times) for other work on the machine to settle before measuring.
wait_for_quiet() {
  local try
  for ((try = 1; try <= load_tries; try++)); do
    if awk -v l="$(load1)" -v m="$max_load" 'BEGIN { exit !(l < m) }'; then
      return 0
    fi
    log "1-minute load $(load1) is above $max_load; waiting 20 s ($try/$load_tries)"
    sleep 20
  done
  [[ $load_tries -eq 0 ]] || log "load still $(load1) after $load_tries waits; measuring anyway (see the load column)"
}

machine="$(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -n1), $(uname -sr)"
kek="$(random_hex 32)"
admin_token="$(random_hex 24)"
rows="$work/rows.md"
startup="$work/startup.md"
: >"$rows"
: >"$startup"
failures=()

server_args() { # url port admin_port
  echo --listen "127.0.0.1:$2" --admin-listen "127.0.0.1:$3" --issuer "http://127.0.0.1:$2" \
    --database-url "$1" --admin-token "$admin_token" --key-encryption-key "$kek" --log-format json
}

database_url() { # backend name -> URL of a fresh, empty database
  case "$1" in
    sqlite) echo "sqlite://$work/$2.db?mode=rwc" ;;
    postgres)
      local db="bench_$2_$$"
      psql -q "$pg_admin_url" -c "CREATE DATABASE $db" >/dev/null
      pg_databases+=("$db")
      echo "${pg_admin_url%/*}/$db"
      ;;
  esac
}

run_backend() {
  local backend="$1" cold_url url port admin_port cold ready_ok=0 i
  if [[ $backend == postgres && -z $pg_admin_url ]]; then
    pg_admin_url="$(bash "$root/tests/services/postgres.sh" | tail -n 1)"
  fi
  local server_log="$work/server-$backend.log"

  wait_for_quiet
  # Cold start: exec to the first 200 from /readyz. Run 1 meets an empty database (migrations, first
  # signing key); later runs find it.
  cold_url="$(database_url "$backend" cold)"
  port="$("$bench_bin" free-port)"; admin_port="$("$bench_bin" free-port)"
  log "$backend: cold start x$cold_runs"
  # shellcheck disable=SC2046
  cold="$("$bench_bin" cold-start --addr "127.0.0.1:$port" --runs "$cold_runs" -- \
    "$server_bin" $(server_args "$cold_url" "$port" "$admin_port") 2>>"$server_log")" || {
    failures+=("$backend: cold start failed (log: $server_log)"); tail -n 20 "$server_log" >&2; return; }
  local first median rss
  first="$(sed -n 's/.*first_ms=\([^ ]*\).*/\1/p' <<<"$cold")"
  median="$(sed -n 's/.*median_ms=\([^ ]*\).*/\1/p' <<<"$cold")"
  rss="$(sed -n 's/.*idle_rss_kib=\([^ ]*\).*/\1/p' <<<"$cold")"

  # The server under load.
  url="$(database_url "$backend" load)"
  port="$("$bench_bin" free-port)"; admin_port="$("$bench_bin" free-port)"
  # shellcheck disable=SC2046
  "$server_bin" $(server_args "$url" "$port" "$admin_port") >>"$server_log" 2>&1 &
  server_pid=$!
  for ((i = 0; i < 300; i++)); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null; then ready_ok=1; break; fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [[ $ready_ok -ne 1 ]]; then
    failures+=("$backend: server not ready (log: $server_log)"); tail -n 20 "$server_log" >&2; return
  fi
  sleep 1
  local idle_rss
  idle_rss="$(status_mib "$server_pid" VmRSS)"

  wait_for_quiet
  log "$backend: scenarios $scenarios, ${concurrency} connections, ${warmup} s warm-up + ${duration} s"
  if ! "$bench_bin" load --addr "127.0.0.1:$port" --admin-addr "127.0.0.1:$admin_port" \
    --admin-token "$admin_token" --backend "$backend" --scenarios "$scenarios" \
    --concurrency "$concurrency" --warmup "$warmup" --duration "$duration" \
    --idle-sample "$idle_sample" --server-pid "$server_pid" >>"$rows"; then
    failures+=("$backend: scenarios reported errors (above; server log: $server_log)")
  fi
  local hwm
  hwm="$(status_mib "$server_pid" VmHWM)"
  printf '| %s | %s | %s | %s | %s | %s |\n' "$backend" "$first" "$median" \
    "$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')" "$idle_rss" "$hwm" >>"$startup"
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

started=$SECONDS
IFS=',' read -r -a backend_list <<<"$backends"
for backend in "${backend_list[@]}"; do
  case "$backend" in
    sqlite|postgres) run_backend "$backend" ;;
    *) echo "unknown backend $backend (sqlite, postgres)" >&2; exit 2 ;;
  esac
done

# The bound of the password grant and the login form: argon2id on one core, with the server's code.
argon2_seconds=5; [[ $smoke -eq 1 ]] && argon2_seconds=0.2
wait_for_quiet
argon2="$("$bench_bin" argon2 --seconds "$argon2_seconds")" || failures+=("argon2: the verification failed")

mode="full, $profile build"; [[ $smoke -eq 1 ]] && mode="smoke, $profile build: timings meaningless"
cat <<EOF

## Gatehouse benchmark ($mode)

- Machine: $machine
- Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); this run took $((SECONDS - started)) s
- Command: \`bash bench/run.sh$([[ $smoke -eq 1 ]] && echo " --smoke") --$profile --duration $duration --warmup $warmup --concurrency $concurrency --backends $backends\`
- Load generator: gatehouse-bench, ${BENCH_THREADS:-1} thread(s), one keep-alive HTTP/1.1 connection per unit of concurrency, on the same machine as the server.
- "load1 before" is the 1-minute load average when the scenario started (it includes the previous scenario);
  "CPU busy before" is how busy all CPUs were in the ${idle_sample} s just before it, with the server idle.

### Throughput and latency

$("$bench_bin" header)
$(cat "$rows")

### argon2id, one core

$argon2 (\`gatehouse-bench argon2\`). The password and login-form rows are bound by this times the cores
the server gets.

### Start-up and footprint

| backend | cold start to /readyz, empty database (ms) | cold start, existing database (median ms) | RSS 1 s after start (MiB) | idle RSS with clients registered (MiB) | peak RSS over the run, VmHWM (MiB) |
|---|---:|---:|---:|---:|---:|
$(cat "$startup")
EOF

if [[ ${#failures[@]} -gt 0 ]]; then
  printf '\nFAILED:\n' >&2
  printf '  - %s\n' "${failures[@]}" >&2
  exit 1
fi
