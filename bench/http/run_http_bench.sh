#!/usr/bin/env bash
# mcpmw benchmarks, HTTP table: Streamable HTTP gateways in front of the same native echo server.
#
#   bench/http/run_http_bench.sh [BUILD_DIR]   (default build/release; bench/run_bench.sh runs it
#                                               as its last section, so `make bench` prints it)
#
# mcpmw-http-load keeps HTTP_CONNECTIONS keep-alive connections, one request in flight on each,
# against one target at a time. The targets, each started here on 127.0.0.1 with a free port and
# waited for (bounded poll of a health URL):
#   nginx            static responder (bench/http/nginx.conf.in): GET answered with a fixed
#                    JSON-RPC result. No MCP at all: the ceiling for HTTP/1.1 on this machine.
#   supergateway     npm, exact version from bench/http/package-lock.json, --stateful: one
#                    session per connection, one echo server child per session.
#   supergateway-stateless  its default mode: a fresh echo server child for every POST.
#   mcp-proxy        npm (punkpeye), exact version: every session multiplexed onto one echo server.
#   mcpmw            `mcpmw serve`, one shared warm echo worker, no policy (allow-all).
#   mcpmw-2026       the same mcpmw process, driven with 2026-07-28 stateless requests.
#   mcpmw-governed   a second mcpmw with bench/governed_bundle.json as the policy.
# Every MCP row but mcpmw-2026 runs a session per connection (initialize,
# notifications/initialized, then tools/call echo in a loop). All targets are started first and
# stay up (idle) while the others are measured; then HTTP_REPS rounds each measure every target
# once, interleaved like the end-to-end table, so a change in the machine's background load falls
# on all of them. The table shows the median of each column and the errors of all runs added up.
# The bars (mcpmw ≥ 20× supergateway calls/s, mcpmw ≥ 0.5× the nginx ceiling) are reported
# figures: the script exits 0 whatever they say. A target that cannot run (not installed, not
# built, `mcpmw serve` missing, not ready in time) becomes a row that says why, and the rest go on.
# Everything started is stopped at the end, also on SIGTERM or an error.
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

declare -A PIDS     # target process -> pid, which is also its process group
declare -A PORT     # row -> port
declare -A LOADPATH # row -> endpoint path
declare -A MODE     # row -> mcpmw-http-load --mode
declare -A LOGFILE  # row -> its target's log
declare -A RESULTS  # "<row> <metric>" -> newline-separated values, one per run
declare -A FAILURES # row -> why it has no (complete) result
ROWS=()
NOTES=()

# Stops every target: SIGTERM to each process group, SIGKILL to what is left after 10 s; then any
# echo server a gateway left behind (they exit at end of input once their gateway is gone: 5 s).
# shellcheck disable=SC2317 # also called from the EXIT trap
stop_all() {
  local pid alive left
  for pid in "${PIDS[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null
  done
  for ((i = 0; i < 100; ++i)); do
    alive=0
    for pid in "${PIDS[@]}"; do
      kill -0 "$pid" 2>/dev/null && alive=1
    done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "${PIDS[@]}"; do
    kill -KILL -- "-$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  PIDS=()
  for ((i = 0; i < 50; ++i)); do
    pgrep -f -- "^$ECHO" >/dev/null || break
    sleep 0.1
  done
  left=$(pgrep -f -- "^$ECHO")
  if [[ -n $left ]]; then
    # shellcheck disable=SC2086 # one pid per word
    kill -KILL $left 2>/dev/null
  fi
}
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
  stop_all
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

# skip ROW REASON: a row without a measurement.
skip() {
  ROWS+=("$1")
  FAILURES[$1]=$2
}

# add_row ROW PORT PATH MODE LOG: a row to measure.
add_row() {
  ROWS+=("$1")
  PORT[$1]=$2
  LOADPATH[$1]=$3
  MODE[$1]=$4
  LOGFILE[$1]=$5
}

# launch NAME PORT READY_PATH CMD...: starts CMD in a process group of its own (stdin from
# /dev/null: a gateway whose stdin closes may stop; output to $WORK/NAME.log) and polls
# http://127.0.0.1:PORT/READY_PATH until it answers 200. False, with the reason in LAUNCH_ERROR,
# when the target dies or is not ready within READY_SECONDS.
launch() {
  local name=$1 port=$2 ready=$3
  shift 3
  setsid "$@" </dev/null >"$WORK/$name.log" 2>&1 &
  PIDS[$name]=$!
  local deadline=$((SECONDS + READY_SECONDS))
  while ((SECONDS < deadline)); do
    if ! kill -0 "${PIDS[$name]}" 2>/dev/null; then
      LAUNCH_ERROR="exited at start: $(tail -n 1 "$WORK/$name.log" | cut -c1-160)"
      NOTES+=("$name log:"$'\n'"$(tail -n 20 "$WORK/$name.log")")
      return 1
    fi
    if [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
      "http://127.0.0.1:$port$ready") == 200 ]]; then
      return 0
    fi
    sleep 0.1
  done
  LAUNCH_ERROR="not ready within $READY_SECONDS s: $(tail -n 1 "$WORK/$name.log" | cut -c1-160)"
  NOTES+=("$name log:"$'\n'"$(tail -n 20 "$WORK/$name.log")")
  return 1
}

# gateway ROW READY_PATH MODE CMD...: launches a gateway whose CMD has @PORT@ where its port goes.
gateway() {
  local row=$1 ready=$2 mode=$3 port word
  shift 3
  if ! port=$(free_port); then
    skip "$row" "no free port found"
    return
  fi
  local cmd=()
  for word in "$@"; do
    cmd+=("${word//@PORT@/$port}")
  done
  if launch "$row" "$port" "$ready" "${cmd[@]}"; then
    add_row "$row" "$port" /mcp "$mode" "$WORK/$row.log"
  else
    skip "$row" "$LAUNCH_ERROR"
  fi
}

# nginx: the ceiling.
if ! command -v nginx >/dev/null 2>&1; then
  skip nginx "nginx is not installed (\`make deps-bench\` installs nginx-light)"
elif ! port=$(free_port); then
  skip nginx "no free port found"
else
  mkdir -p "$WORK/nginx"
  sed -e "s|@DIR@|$WORK/nginx|g; s|@PORT@|$port|g; s|@WORKERS@|$NGINX_WORKERS|g" \
    "$ROOT/bench/http/nginx.conf.in" >"$WORK/nginx/nginx.conf"
  if launch nginx "$port" /readyz nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" \
    -e "$WORK/nginx/error.log"; then
    add_row nginx "$port" /mcp static "$WORK/nginx/error.log"
  else
    skip nginx "$LAUNCH_ERROR"
  fi
fi

# The npm gateways.
SUPERGATEWAY=$NODE_MODULES/supergateway/dist/index.js
MCP_PROXY=$NODE_MODULES/mcp-proxy/dist/bin/mcp-proxy.mjs
if ! command -v node >/dev/null 2>&1; then
  for row in supergateway supergateway-stateless mcp-proxy; do
    skip "$row" "node is not installed (\`make deps\`)"
  done
else
  if [[ -f $SUPERGATEWAY ]]; then
    # --logLevel none: the default (info) writes a log line per message.
    gateway supergateway /readyz mcp node "$SUPERGATEWAY" --stdio "$ECHO" \
      --outputTransport streamableHttp --stateful --port @PORT@ --healthEndpoint /readyz \
      --logLevel none
    gateway supergateway-stateless /readyz mcp node "$SUPERGATEWAY" --stdio "$ECHO" \
      --outputTransport streamableHttp --port @PORT@ --healthEndpoint /readyz --logLevel none
  else
    for row in supergateway supergateway-stateless; do
      skip "$row" "$SUPERGATEWAY is missing (\`make deps-bench\` runs npm ci in bench/http)"
    done
  fi
  if [[ -f $MCP_PROXY ]]; then
    gateway mcp-proxy /ping mcp node "$MCP_PROXY" --host 127.0.0.1 --port @PORT@ \
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
  # is the real check.
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
# mcpmw_rows NAME POLICY(or empty) [NAME_2026]
mcpmw_rows() {
  local name=$1 policy=$2 name_2026=${3:-} port
  if [[ -z $MCPMW_SKIP ]] && ! port=$(free_port); then
    MCPMW_SKIP="no free port found"
  fi
  if [[ -n $MCPMW_SKIP ]]; then
    skip "$name" "$MCPMW_SKIP"
    [[ -n $name_2026 ]] && skip "$name_2026" "$MCPMW_SKIP"
    return
  fi
  mcpmw_config "$port" "$policy" >"$WORK/$name.json"
  if launch "$name" "$port" /readyz "$MCPMW" serve --config "$WORK/$name.json"; then
    add_row "$name" "$port" /servers/echo/mcp mcp "$WORK/$name.log"
    [[ -n $name_2026 ]] && add_row "$name_2026" "$port" /servers/echo/mcp mcp-stateless \
      "$WORK/$name.log"
  else
    skip "$name" "$LAUNCH_ERROR"
    [[ -n $name_2026 ]] && skip "$name_2026" "see $name"
  fi
}
mcpmw_rows mcpmw "" mcpmw-2026
mcpmw_rows mcpmw-governed "$ROOT/bench/governed_bundle.json"

# Numeric field `$2` from the one-line JSON object `$1`.
field() {
  sed -nE "s/.*\"$2\":([-0-9.eE+]+).*/\1/p" <<<"$1"
}

# measure ROW REP: one run of the load generator against the row's target.
measure() {
  local row=$1 rep=$2 out rc err=$WORK/load.err
  out=$("$LOAD" --port "${PORT[$row]}" --path "${LOADPATH[$row]}" --mode "${MODE[$row]}" \
    --connections "$CONNECTIONS" --duration "$SECONDS_PER_RUN" --warmup "$WARMUP" --json \
    2>"$err")
  rc=$?
  if [[ $rc -ne 0 || -z $out ]]; then
    FAILURES[$row]="run $rep failed: $(grep -m1 FAIL "$err" | sed 's/^mcpmw-http-load: //' |
      cut -c1-160)"
    NOTES+=("$row run $rep: $(head -c 2000 "$err")"$'\n'"target log:"$'\n'"$(tail -n 20 \
      "${LOGFILE[$row]}" 2>/dev/null)")
    return
  fi
  if [[ -s $err ]]; then
    NOTES+=("$row run $rep: $(head -c 600 "$err")")
  fi
  for metric in calls_per_s p50_us p99_us errors; do
    RESULTS["$row $metric"]+="$(field "$out" "$metric")"$'\n'
  done
}

for ((rep = 1; rep <= REPS; ++rep)); do
  for row in "${ROWS[@]}"; do
    # A row that failed once (or never started) is not run again.
    if [[ -n ${PORT[$row]:-} && -z ${FAILURES[$row]:-} ]]; then
      measure "$row" "$rep"
    fi
  done
done
stop_all

# Median of the numbers on stdin, or "-" when there are none.
median() {
  sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "-"; exit }
    if (NR % 2) { print v[(NR + 1) / 2] } else { print (v[NR / 2] + v[NR / 2 + 1]) / 2 }
  }'
}
med() {
  printf '%s' "${RESULTS["$1 $2"]:-}" | grep -v '^$' | median
}
sum() {
  printf '%s' "${RESULTS["$1 $2"]:-}" | awk '{ s += $1 } END { print s + 0 }'
}
ratio() { # ratio a b, or "-" when either is missing
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f×", a / b }'
}
raw_ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else print a / b }'
}
pkg_version() {
  node -p "require('$NODE_MODULES/$1/package.json').version" 2>/dev/null || echo "?"
}

SG=$(med supergateway calls_per_s)
NGINX=$(med nginx calls_per_s)
echo "| target | calls/s | p50 µs | p99 µs | vs supergateway | vs nginx | errors |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for row in "${ROWS[@]}"; do
  if [[ -z ${RESULTS["$row calls_per_s"]:-} ]]; then
    echo "| $row | ${FAILURES[$row]:-no result} | | | | | |"
    continue
  fi
  tput=$(med "$row" calls_per_s)
  echo "| $row | $tput | $(med "$row" p50_us) | $(med "$row" p99_us)" \
    "| $(ratio "$tput" "$SG") | $(ratio "$tput" "$NGINX") | $(sum "$row" errors) |"
done
echo
echo "- versions: supergateway $(pkg_version supergateway), mcp-proxy $(pkg_version mcp-proxy)," \
  "$(nginx -v 2>&1 | sed 's|nginx version: ||'), node $(node --version 2>/dev/null || echo '-')," \
  "mcpmw ${MCPMW:-(none)} (tree at $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo "- each MCP target fronts \`mcpmw-echo-server\` over stdio and is called with tools/call echo" \
  "\`{\"text\":\"hello\"}\`, one request in flight per connection, on a session per connection" \
  "(2025-06-18) except mcpmw-2026; a call counts when the answer (JSON or SSE) carries its id and" \
  "the echoed text"
echo "- nginx: worker_processes $NGINX_WORKERS, \`return 200\` of a fixed JSON-RPC result to GET," \
  "keep-alive; no MCP: the ceiling"
echo "- supergateway: \`--stateful\` (a session, and an echo server child, per connection; the" \
  "vs supergateway column and the bar use this row) and its default stateless mode" \
  "(supergateway-stateless: a new echo server child per POST); \`--logLevel none\`"
echo "- mcp-proxy: defaults (\`--server stream\`; its resumability event store on), all sessions" \
  "multiplexed onto one echo server"
echo "- mcpmw: \`mcpmw serve\`, one shared echo worker (minWarm 1, maxWorkers 1, prewarm" \
  "initialize), anonymous identity, endpoint /servers/echo/mcp; mcpmw-2026 drives the same" \
  "process with 2026-07-28 stateless requests; mcpmw-governed is a second process with" \
  "bench/governed_bundle.json as the policy"
echo "- $REPS rounds, each measuring every target once for $SECONDS_PER_RUN s after $WARMUP s" \
  "warmup, all targets up throughout; load generator and targets share the machine's" \
  "$(nproc) CPUs; load average $LOAD_BEFORE before the section, $(cut -d' ' -f1-3 /proc/loadavg)" \
  "after"
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
