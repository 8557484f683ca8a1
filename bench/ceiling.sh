#!/usr/bin/env bash
# The ceiling, measured on this machine (issue 7): the issue's bare pipeline (bench/src/bin/bare-pipeline.rs:
# axum, HTTP Basic, a SHA-256 secret check, an ES256 JWT from aws-lc-rs, nothing else) and Gatehouse's
# client_credentials grant with a JWT, each driven by the issue's own load tool and command, wrk with one
# thread and 32 connections, in alternation. Prints a Markdown table. wrk comes from Debian's packages.
#
#   bash bench/ceiling.sh                  3 rounds of 10 s each, release build
#   bash bench/ceiling.sh --smoke          CI: 1 round of 1 s on the debug build; fails only on errors
#   bash bench/ceiling.sh --baseline BIN   also runs another gatehouse-server binary (say, one built
#                                          from the previous commit) and measures it in alternation:
#                                          an A/B of a change in one run
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

rounds=3
duration=10
profile=release
baseline=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --smoke) rounds=1; duration=1; profile=debug ;;
    --rounds) rounds="$2"; shift ;;
    --duration) duration="$2"; shift ;;
    --baseline) baseline="$(realpath "$2")"; shift ;;
    -h|--help) sed -n "2,11p" "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "unknown flag $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
log() { printf '[ceiling %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if ! command -v wrk >/dev/null; then
  log "installing wrk from Debian's packages"
  if [[ $(id -u) -ne 0 ]]; then echo "need root to apt-get install wrk" >&2; exit 1; fi
  apt-get install -y -qq wrk >&2 || { apt-get update -qq >&2 && apt-get install -y -qq wrk >&2; }
fi

profile_flag=(); [[ $profile == release ]] && profile_flag=(--release)
log "cargo build ${profile_flag[*]} (server, bare-pipeline)"
cargo build "${profile_flag[@]}" -q -p gatehouse-server -p gatehouse-bench --bin gatehouse-server --bin bare-pipeline
target="${CARGO_TARGET_DIR:-$root/target}/$profile"

work="$(mktemp -d -t gatehouse-ceiling.XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # url
  for _ in $(seq 100); do curl -fs -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "nothing answers at $1" >&2; return 1
}

secret="$(random_hex 16)"
admin_token="$(random_hex 24)"
bare_port="$(free_port)"
port="$(free_port)"
admin_port="$(free_port)"

"$target/bare-pipeline" "127.0.0.1:$bare_port" "$secret" >"$work/bare.log" 2>&1 &
pids+=($!)
start_gatehouse() { # binary port admin_port name
  "$1" --listen "127.0.0.1:$2" --admin-listen "127.0.0.1:$3" \
    --issuer "http://127.0.0.1:$2" --database-url "sqlite://$work/$4.db?mode=rwc" \
    --admin-token "$admin_token" --key-encryption-key "$(random_hex 32)" --log-format json >"$work/$4.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$2/readyz"
  # The same client as the benchmark's client_credentials-jwt scenario.
  local digest
  digest="$(printf %s "$secret" | sha256sum | cut -d' ' -f1)"
  curl -fs -o /dev/null -X PUT "http://127.0.0.1:$3/admin/v1/clients/ceiling-jwt" \
    -H "Authorization: Bearer $admin_token" -H 'Content-Type: application/json' -d @- <<EOF
{"clientId": "ceiling-jwt", "tokenEndpointAuthMethod": "client_secret_basic", "redirectUris": [],
 "effective": {"grantTypes": ["client_credentials"], "scopes": ["read"], "defaultScopes": ["read"],
   "audience": ["bench-api"], "accessTokenTtlSeconds": 3600, "refreshTokenTtlSeconds": 86400,
   "authorizationCodeTtlSeconds": 60, "accessTokenFormat": "jwt", "requirePKCE": true,
   "allowPlainPKCE": false, "refreshTokenRotation": true, "firstParty": true},
 "secrets": [{"sha256": "$digest"}]}
EOF
}
start_gatehouse "$target/gatehouse-server" "$port" "$admin_port" server
if [[ -n $baseline ]]; then
  baseline_port="$(free_port)"
  start_gatehouse "$baseline" "$baseline_port" "$(free_port)" baseline
fi

script() { # client_id -> a wrk script posting the grant
  cat >"$work/$1.lua" <<EOF
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $(printf '%s:%s' "$1" "$secret" | base64 -w0)"
EOF
  echo "$work/$1.lua"
}
bare_script="$(script bare)"
gatehouse_script="$(script ceiling-jwt)"
targets=("http://127.0.0.1:$bare_port/token $bare_script" "http://127.0.0.1:$port/token $gatehouse_script")
[[ -z $baseline ]] || targets+=("http://127.0.0.1:$baseline_port/token $gatehouse_script")
for url_script in "${targets[@]}"; do
  read -r url lua <<<"$url_script"
  status="$(curl -s -o /dev/null -w '%{http_code}' -u "$(basename "$lua" .lua):$secret" -d grant_type=client_credentials "$url")"
  [[ $status == 200 ]] || { echo "$url answered $status, not 200" >&2; exit 1; }
done

measure() { # label url script
  local out
  out="$(wrk -t1 -c32 -d"${duration}s" --latency -s "$3" "$2")"
  local rps p50 p99 errors
  rps="$(awk '/^Requests\/sec/ { printf "%.0f", $2 }' <<<"$out")"
  p50="$(awk '$1 == "50%" { print $2 }' <<<"$out")"
  p99="$(awk '$1 == "99%" { print $2 }' <<<"$out")"
  errors="$(awk '/Non-2xx/ { print $NF } /Socket errors/ { print }' <<<"$out")"
  [[ -z $errors ]] || { echo "$1: errors: $errors" >&2; exit 1; }
  echo "| $1 | $rps | $p50 | $p99 |"
}

log "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| round | pipeline | req/s | p50 | p99 |"
echo "|---:|---|---:|---:|---:|"
for ((round = 1; round <= rounds; round++)); do
  echo "| $round $(measure 'bare pipeline (the ceiling)' "http://127.0.0.1:$bare_port/token" "$bare_script")"
  echo "| $round $(measure 'Gatehouse client_credentials, JWT' "http://127.0.0.1:$port/token" "$gatehouse_script")"
  if [[ -n $baseline ]]; then
    echo "| $round $(measure "baseline $(basename "$baseline"), client_credentials, JWT" "http://127.0.0.1:$baseline_port/token" "$gatehouse_script")"
  fi
done
echo
echo "wrk -t1 -c32 -d${duration}s --latency, $profile build; $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr)"
