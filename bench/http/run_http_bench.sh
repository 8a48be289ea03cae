#!/usr/bin/env bash
# mcpmw benchmarks, HTTP table: Streamable HTTP gateways in front of the same native echo server.
#
#   bench/http/run_http_bench.sh [BUILD_DIR]   (default build/release; bench/run_bench.sh runs it
#                                               as its last section, so `make bench` prints it)
#
# mcpmw-http-load keeps HTTP_CONNECTIONS keep-alive connections, one request in flight on each,
# against each target in turn; every target is started here on 127.0.0.1 with a free port, waited
# for (bounded poll of a health URL), measured, and stopped:
#   nginx            static responder (bench/http/nginx.conf.in): GET answered with a fixed
#                    JSON-RPC result. No MCP at all: the ceiling for HTTP/1.1 on this machine.
#   supergateway     npm, exact version from bench/http/package-lock.json, --stateful: one
#                    session per connection, one echo server child per session.
#   supergateway-stateless  its default mode: a fresh echo server child for every POST.
#   mcp-proxy        npm (punkpeye), exact version: every session multiplexed onto one echo server.
#   mcpmw            `mcpmw serve`, one shared warm echo worker, no policy (allow-all).
#   mcpmw-governed   the same with bench/governed_bundle.json as the policy.
#   mcpmw-2026       the plain mcpmw instance again, driven as 2026-07-28 stateless requests.
# Every MCP target gets a session per connection (initialize, notifications/initialized, then
# tools/call echo in a loop), except mcpmw-2026. Each target runs HTTP_REPS times back to back (the
# target stays up; each run has its own warmup) and the table shows the median of each column,
# with the errors of all runs added up. The bars (mcpmw ≥ 20× supergateway calls/s, mcpmw ≥ 0.5×
# the nginx ceiling) are reported figures: the script exits 0 whatever they say. A target that
# cannot run (not installed, not built, `mcpmw serve` missing, not ready in time) becomes a row
# that says why, and the rest go on.
#
# Knobs (environment): HTTP_CONNECTIONS (16), HTTP_SECONDS (3: measured seconds per run),
# HTTP_WARMUP (1 second per run), HTTP_REPS (3), NGINX_WORKERS (1: nginx worker_processes; the
# load generator needs the other vCPU of a 2-vCPU machine, and one worker measured faster there
# than `auto`), READY_SECONDS (10: how long a target may take to become ready), MCPMW_BIN (the
# mcpmw binary; BUILD_DIR/src/app/mcpmw).
set -u

BUILD=${1:-build/release}
CONNECTIONS=${HTTP_CONNECTIONS:-16}
SECONDS_PER_RUN=${HTTP_SECONDS:-3}
WARMUP=${HTTP_WARMUP:-1}
REPS=${HTTP_REPS:-3}
NGINX_WORKERS=${NGINX_WORKERS:-1}
READY_SECONDS=${READY_SECONDS:-10}

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BENCH_DIR=$BUILD/bench
NODE_MODULES=$ROOT/bench/http/node_modules

echo "## HTTP gateways (Streamable HTTP, $CONNECTIONS connections, median of $REPS runs)"
echo
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for tool in mcpmw-http-load mcpmw-echo-server; do
  if [[ ! -x $BENCH_DIR/$tool ]]; then
    echo "- skipped: $BENCH_DIR/$tool is not built (MCPMW_BENCH=ON builds it)"
    exit 0
  fi
done
if ! command -v curl >/dev/null 2>&1; then
  echo "- skipped: curl is not installed (readiness polling uses it)"
  exit 0
fi
LOAD=$(realpath "$BENCH_DIR/mcpmw-http-load")
MCPMW=""
MCPMW_BIN=${MCPMW_BIN:-$BUILD/src/app/mcpmw}
if [[ -x $MCPMW_BIN ]]; then
  MCPMW=$(realpath "$MCPMW_BIN")
fi

WORK=$(mktemp -d)
# The echo server is started through a link in $WORK, so that children a gateway detaches into
# their own process groups can still be found (by that exact path) and stopped.
ln -s "$(realpath "$BENCH_DIR/mcpmw-echo-server")" "$WORK/echo"
ECHO=$WORK/echo

TARGET_PID=""
# Stops the running target: SIGTERM to its process group, SIGKILL after 10 s; then any echo server
# it left behind. Everything this script started is gone when it returns.
stop_target() {
  if [[ -n $TARGET_PID ]]; then
    kill -TERM -- "-$TARGET_PID" 2>/dev/null
    for ((i = 0; i < 100; ++i)); do
      kill -0 "$TARGET_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$TARGET_PID" 2>/dev/null
    wait "$TARGET_PID" 2>/dev/null
    TARGET_PID=""
  fi
  # Echo servers exit at end of input once their gateway is gone; give them 5 s, then kill them.
  for ((i = 0; i < 50; ++i)); do
    pgrep -f -- "^$ECHO" >/dev/null || break
    sleep 0.1
  done
  local left
  left=$(pgrep -f -- "^$ECHO")
  if [[ -n $left ]]; then
    # shellcheck disable=SC2086 # one pid per word
    kill -KILL $left 2>/dev/null
  fi
}
cleanup() {
  stop_target
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port nothing listens on, below the kernel's ephemeral range so no outgoing connection takes it.
free_port() {
  local port
  for ((i = 0; i < 100; ++i)); do
    port=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

# start_target NAME CMD...: runs CMD in a process group of its own, stdin from /dev/null (a
# gateway whose stdin closes may stop), output to $WORK/NAME.log.
start_target() {
  local name=$1
  shift
  setsid "$@" </dev/null >"$WORK/$name.log" 2>&1 &
  TARGET_PID=$!
}

# wait_ready URL: polls until URL answers 200, the target dies, or READY_SECONDS pass.
wait_ready() {
  local deadline=$((SECONDS + READY_SECONDS))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$TARGET_PID" 2>/dev/null; then
      return 1
    fi
    if [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$1") == 200 ]]; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# Numeric field `$2` from the one-line JSON object `$1`.
field() {
  sed -nE "s/.*\"$2\":([-0-9.eE+]+).*/\1/p" <<<"$1"
}

# Median of the numbers on stdin, or "-" when there are none.
median() {
  sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "-"; exit }
    if (NR % 2) { print v[(NR + 1) / 2] } else { print (v[NR / 2] + v[NR / 2 + 1]) / 2 }
  }'
}

declare -A RESULTS # "<target> <metric>" -> newline-separated values, one per run
declare -A FAILURES
TARGETS=()
NOTES=()

# measure TARGET PORT PATH MODE: HTTP_REPS runs of the load generator against the running target.
measure() {
  local target=$1 port=$2 path=$3 mode=$4 out err rc
  TARGETS+=("$target")
  for ((rep = 1; rep <= REPS; ++rep)); do
    err=$(mktemp)
    out=$("$LOAD" --port "$port" --path "$path" --mode "$mode" --connections "$CONNECTIONS" \
      --duration "$SECONDS_PER_RUN" --warmup "$WARMUP" --json 2>"$err")
    rc=$?
    if [[ $rc -ne 0 || -z $out ]]; then
      FAILURES[$target]="failed: $(grep -m1 FAIL "$err" | sed 's/^mcpmw-http-load: //' | cut -c1-160)"
      NOTES+=("$target: $(head -c 2000 "$err")"$'\n'"target log:"$'\n'"$(tail -n 20 "$WORK/$target.log" 2>/dev/null)")
      rm -f "$err"
      return
    fi
    if [[ -s $err ]]; then
      NOTES+=("$target run $rep: $(head -c 600 "$err")")
    fi
    rm -f "$err"
    for metric in calls_per_s p50_us p99_us errors; do
      RESULTS["$target $metric"]+="$(field "$out" "$metric")"$'\n'
    done
  done
}

# skip TARGET REASON
skip() {
  TARGETS+=("$1")
  FAILURES[$1]=$2
}

# run_target NAME READY_URL_PATH LOAD_PATH MODE CMD...: start, wait, measure, stop.
run_target() {
  local name=$1 ready=$2 path=$3 mode=$4 port
  shift 4
  if ! port=$(free_port); then
    skip "$name" "no free port found"
    return
  fi
  local cmd=()
  for word in "$@"; do
    cmd+=("${word//@PORT@/$port}")
  done
  start_target "$name" "${cmd[@]}"
  if ! wait_ready "http://127.0.0.1:$port$ready"; then
    skip "$name" "not ready within $READY_SECONDS s: $(tail -n 1 "$WORK/$name.log" | cut -c1-160)"
    NOTES+=("$name log:"$'\n'"$(tail -n 20 "$WORK/$name.log")")
    stop_target
    return
  fi
  measure "$name" "$port" "$path" "$mode"
  stop_target
}

pkg_version() {
  node -p "require('$NODE_MODULES/$1/package.json').version" 2>/dev/null || echo "?"
}

# nginx: the ceiling.
if ! command -v nginx >/dev/null 2>&1; then
  skip nginx "nginx is not installed (\`make deps-bench\` installs nginx-light)"
else
  mkdir -p "$WORK/nginx"
  port=$(free_port)
  sed -e "s|@DIR@|$WORK/nginx|g; s|@PORT@|$port|g; s|@WORKERS@|$NGINX_WORKERS|g" \
    "$ROOT/bench/http/nginx.conf.in" >"$WORK/nginx/nginx.conf"
  start_target nginx nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log"
  if wait_ready "http://127.0.0.1:$port/readyz"; then
    measure nginx "$port" /mcp static
  else
    skip nginx "not ready within $READY_SECONDS s: $(tail -n 1 "$WORK/nginx/error.log" | cut -c1-160)"
  fi
  stop_target
fi

# The npm gateways.
SUPERGATEWAY=$NODE_MODULES/supergateway/dist/index.js
MCP_PROXY=$NODE_MODULES/mcp-proxy/dist/bin/mcp-proxy.mjs
if ! command -v node >/dev/null 2>&1; then
  for t in supergateway supergateway-stateless mcp-proxy; do
    skip "$t" "node is not installed (\`make deps\`)"
  done
else
  if [[ -f $SUPERGATEWAY ]]; then
    # --logLevel none: the default (info) writes a log line per message.
    run_target supergateway /readyz /mcp mcp node "$SUPERGATEWAY" --stdio "$ECHO" \
      --outputTransport streamableHttp --stateful --port @PORT@ --healthEndpoint /readyz \
      --logLevel none
    run_target supergateway-stateless /readyz /mcp mcp node "$SUPERGATEWAY" --stdio "$ECHO" \
      --outputTransport streamableHttp --port @PORT@ --healthEndpoint /readyz --logLevel none
  else
    for t in supergateway supergateway-stateless; do
      skip "$t" "$SUPERGATEWAY is missing (\`make deps-bench\` runs npm ci in bench/http)"
    done
  fi
  if [[ -f $MCP_PROXY ]]; then
    run_target mcp-proxy /ping /mcp mcp node "$MCP_PROXY" --host 127.0.0.1 --port @PORT@ \
      --server stream -- "$ECHO"
  else
    skip mcp-proxy "$MCP_PROXY is missing (\`make deps-bench\` runs npm ci in bench/http)"
  fi
fi

# mcpmw serve, once without and once with a policy.
MCPMW_SKIP=""
if [[ -z $MCPMW ]]; then
  MCPMW_SKIP="mcpmw is not built ($MCPMW_BIN is missing)"
elif ! help=$("$MCPMW" serve --help 2>&1) && [[ $help != *"usage: mcpmw serve"* ]]; then
  # A build whose serve rejects --help but prints its usage still has serve: the readiness poll
  # below is the real check.
  MCPMW_SKIP="\`mcpmw serve --help\` fails: $(head -n 1 <<<"$help" | cut -c1-120)"
fi
# mcpmw_config PORT [POLICY]: a serve config with one shared, prewarmed echo worker.
mcpmw_config() {
  local policy=""
  if [[ -n ${2:-} ]]; then
    policy="\"policy\": \"$2\","
  fi
  cat <<EOF
{
  "listen": {"address": "127.0.0.1", "port": $1},
  "identity": {"anonymous": true, "resource": "http://127.0.0.1:$1/servers/echo/mcp"},
  $policy
  "servers": [
    {"name": "echo", "command": ["$ECHO"], "isolation": "shared", "minWarm": 1, "maxWorkers": 1,
     "prewarm": "initialize"}
  ]
}
EOF
}
run_mcpmw() {  # run_mcpmw NAME POLICY(or empty) [NAME_2026]
  local name=$1 policy=$2 name_2026=${3:-} port
  if [[ -n $MCPMW_SKIP ]]; then
    skip "$name" "$MCPMW_SKIP"
    [[ -n $name_2026 ]] && skip "$name_2026" "$MCPMW_SKIP"
    return
  fi
  if ! port=$(free_port); then
    skip "$name" "no free port found"
    return
  fi
  mcpmw_config "$port" "$policy" >"$WORK/$name.json"
  start_target "$name" "$MCPMW" serve --config "$WORK/$name.json"
  if ! wait_ready "http://127.0.0.1:$port/readyz"; then
    skip "$name" "not ready within $READY_SECONDS s: $(tail -n 1 "$WORK/$name.log" | cut -c1-160)"
    [[ -n $name_2026 ]] && skip "$name_2026" "see $name"
    NOTES+=("$name log:"$'\n'"$(tail -n 20 "$WORK/$name.log")")
    stop_target
    return
  fi
  measure "$name" "$port" /servers/echo/mcp mcp
  if [[ -n $name_2026 ]]; then
    cp "$WORK/$name.log" "$WORK/$name_2026.log" 2>/dev/null
    measure "$name_2026" "$port" /servers/echo/mcp mcp-stateless
  fi
  stop_target
}
run_mcpmw mcpmw "" mcpmw-2026
run_mcpmw mcpmw-governed "$ROOT/bench/governed_bundle.json"

med() {
  printf '%s' "${RESULTS["$1 $2"]:-}" | grep -v '^$' | median
}
sum() {
  printf '%s' "${RESULTS["$1 $2"]:-}" | awk '{ s += $1 } END { print s + 0 }'
}
ratio() { # ratio a b, or "-" when either is missing
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f×", a / b }'
}

SG=$(med supergateway calls_per_s)
NGINX=$(med nginx calls_per_s)
echo "| target | calls/s | p50 µs | p99 µs | vs supergateway | vs nginx | errors |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for target in "${TARGETS[@]}"; do
  failure=${FAILURES[$target]:-}
  if [[ -z ${RESULTS["$target calls_per_s"]:-} ]]; then
    echo "| $target | ${failure:-no result} | | | | | |"
    continue
  fi
  tput=$(med "$target" calls_per_s)
  echo "| $target | $tput | $(med "$target" p50_us) | $(med "$target" p99_us)" \
    "| $(ratio "$tput" "$SG") | $(ratio "$tput" "$NGINX") | $(sum "$target" errors) |"
done
echo
echo "- versions: supergateway $(pkg_version supergateway), mcp-proxy $(pkg_version mcp-proxy)," \
  "$(nginx -v 2>&1 | sed 's|nginx version: ||'), node $(node --version 2>/dev/null || echo '-')," \
  "mcpmw ${MCPMW:-(none)} (tree at $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo "- each MCP target fronts \`mcpmw-echo-server\` over stdio and is called with tools/call echo" \
  "\`{\"text\":\"hello\"}\` on a session per connection (2025-06-18), one request in flight per" \
  "connection; a call counts when the answer (JSON or SSE) carries its id and the echoed text"
echo "- nginx: worker_processes $NGINX_WORKERS, \`return 200\` of a fixed JSON-RPC result to GET," \
  "keep-alive; no MCP: the ceiling"
echo "- supergateway: \`--stateful\` (a session, and an echo server child, per connection; the" \
  "vs supergateway column and the bar use this row) and its default stateless mode" \
  "(supergateway-stateless: a new echo server child per POST); \`--logLevel none\`"
echo "- mcp-proxy: defaults (\`--server stream\`; its resumability event store on), all sessions" \
  "multiplexed onto one echo server"
echo "- mcpmw: \`mcpmw serve\`, one shared echo worker (minWarm 1, maxWorkers 1, prewarm" \
  "initialize), anonymous identity, endpoint /servers/echo/mcp; mcpmw-governed adds" \
  "bench/governed_bundle.json as the policy; mcpmw-2026 drives the plain instance with" \
  "2026-07-28 stateless requests"
echo "- $SECONDS_PER_RUN s measured after $WARMUP s warmup per run; load generator and targets" \
  "share the machine's $(nproc) CPUs; load average $LOAD_BEFORE before the section," \
  "$(cut -d' ' -f1-3 /proc/loadavg) after"
echo
echo "### HTTP bars"
echo
# bar NAME VALUE BAR: "- NAME: PASS/FAIL (x)".
bar() {
  awk -v name="$1" -v v="$2" -v bar="$3" 'BEGIN {
    if (v == "-") { printf "- %s: n/a (no measurement)\n", name; exit }
    printf "- %s: %s (%.2f×)\n", name, (v + 0 >= bar) ? "PASS" : "FAIL", v
  }'
}
raw_ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else print a / b }'
}
if [[ -z ${RESULTS["mcpmw calls_per_s"]:-} ]]; then
  echo "- mcpmw ≥ 20× supergateway: n/a (mcpmw: ${FAILURES[mcpmw]:-no result})"
  echo "- mcpmw ≥ 0.5× nginx: n/a (mcpmw: ${FAILURES[mcpmw]:-no result})"
else
  MCPMW_TPUT=$(med mcpmw calls_per_s)
  bar "mcpmw ≥ 20× supergateway" "$(raw_ratio "$MCPMW_TPUT" "$SG")" 20
  bar "mcpmw ≥ 0.5× nginx" "$(raw_ratio "$MCPMW_TPUT" "$NGINX")" 0.5
  errors=$(sum mcpmw errors)
  if [[ $errors != 0 ]]; then
    echo "- note: mcpmw answered $errors calls wrongly (not counted in calls/s)"
  fi
fi
if ((${#NOTES[@]} > 0)); then
  echo
  echo "### HTTP notes and failures"
  echo
  for note in "${NOTES[@]}"; do
    echo '```'
    echo "$note"
    echo '```'
  done
fi
exit 0
