#!/usr/bin/env bash
# mcpmw benchmarks: the micro benches, then one end-to-end table.
#
#   bench/run_bench.sh [BUILD_DIR]        (default build/release; `make bench` calls this)
#
# End to end, mcpmw-load keeps W tools/call requests in flight against mcpmw-echo-server through
# these configurations (the mcpmw variants are described at CONFIGS below):
#   direct  load → echo server
#   relay   load → mcpmw-splice-relay → echo server    (splice(2) only: the floor for a proxy)
#   mcpmw   load → mcpmw stdio → echo server
#   mcpmw-nopoll, mcpmw-governed-noaudit, mcpmw-governed   the same with other mcpmw settings
# Each (configuration, W) runs REPS times, interleaved, and the table shows the median of each
# column. On a machine with few cores the three processes share CPUs and a run can settle into a
# slow or a fast pipelining mode (big or small batches per wake-up); the median of several runs,
# on an otherwise idle machine, is the figure to quote. On a VM whose idle vCPUs halt (no guest
# halt-polling), every wake-up of a process on the other, idle vCPU costs tens of µs of hypervisor
# time and dominates W=1 latency; PIN_CPU=0 runs all three processes on one CPU, which removes
# that. The CPU µs/msg column (mcpmw-load's getrusage of itself and every process under it) says
# what each configuration costs apart from placement: on a machine with few cores, a
# configuration whose CPU per message times the target rate exceeds the cores cannot reach that
# rate however it is scheduled. The bars (mcpmw ≥ 0.8× relay throughput at W=32, ≤ 1.25× relay p50 at W=1) are reported
# figures, not tests: the script exits 0 whatever they say, and non-zero only when it cannot run.
#
# Then session start latency (bench/session_start_bench.cc): cold spawn + `initialize` vs a warm
# lease from the pool (with and without `prewarm: initialize`) for the demo server and for
# @modelcontextprotocol/server-everything; skipped, with the reason printed, when node or
# tests/integration/node_modules is missing. Its bar (warm lease ≥ 50× faster) is reported the
# same way.
#
# Last, the HTTP table (bench/http/run_http_bench.sh, whose header lists its targets and knobs):
# mcpmw serve, supergateway and mcp-proxy in front of the echo server, nginx as the ceiling.
#
# Knobs (environment): REPS (7), MESSAGES_W1 (50000), MESSAGES_W32 (500000), PAYLOAD_BYTES (200),
# MIN_TIME (micro bench --benchmark_min_time, seconds; 0.05), PIN_CPU (unset: the scheduler places
# the processes; a CPU number: load generator, proxy and server all pinned to it with taskset),
# SESSION_COLD (30 cold sessions per server), SESSION_WARM_DEMO (300) and SESSION_WARM_EVERYTHING
# (60) warm sessions per variant (each waits for a replacement worker to start, so Node's start-up
# time bounds how many fit in about a minute).
set -u

BUILD=${1:-build/release}
REPS=${REPS:-7}
MESSAGES_W1=${MESSAGES_W1:-50000}
MESSAGES_W32=${MESSAGES_W32:-500000}
PAYLOAD_BYTES=${PAYLOAD_BYTES:-200}
MIN_TIME=${MIN_TIME:-0.05}
PIN_CPU=${PIN_CPU:-}
PIN=()
if [[ -n $PIN_CPU ]]; then
  PIN=(taskset -c "$PIN_CPU")
fi

BENCH_DIR=$BUILD/bench
for tool in framing_bench envelope_bench mcpmw-echo-server mcpmw-splice-relay mcpmw-load; do
  if [[ ! -x $BENCH_DIR/$tool ]]; then
    echo "run_bench: $BENCH_DIR/$tool is missing; build with MCPMW_BENCH=ON first" >&2
    exit 2
  fi
done
LOAD=$(realpath "$BENCH_DIR/mcpmw-load")
ECHO=$(realpath "$BENCH_DIR/mcpmw-echo-server")
RELAY=$(realpath "$BENCH_DIR/mcpmw-splice-relay")
MCPMW=""
if [[ -x $BUILD/src/app/mcpmw ]]; then
  MCPMW=$(realpath "$BUILD/src/app/mcpmw")
fi

echo "## Machine"
echo
echo "- cpus: $(nproc)"
echo "- model: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "- kernel: $(uname -sr)"
echo "- build: $BUILD"
if [[ -n $PIN_CPU ]]; then
  echo "- placement: load generator, proxy and server all pinned to CPU $PIN_CPU"
else
  echo "- placement: unpinned (the scheduler's choice)"
fi
echo "- load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

echo "## Micro benchmarks"
echo
echo '```'
"$BENCH_DIR/framing_bench" --benchmark_min_time="$MIN_TIME" 2>&1 | grep -E '^(BM_|-|Benchmark)'
echo
"$BENCH_DIR/envelope_bench" --benchmark_min_time="$MIN_TIME" 2>&1 | grep -E '^(BM_|-|Benchmark)'
[[ -x $BENCH_DIR/redaction_bench ]] && echo && "$BENCH_DIR/redaction_bench" --benchmark_min_time="$MIN_TIME" 2>&1 | grep -E '^(BM_|-|Benchmark)'
[[ -x $BENCH_DIR/chain_bench ]] && echo && "$BENCH_DIR/chain_bench" --benchmark_min_time="$MIN_TIME" 2>&1 | grep -E '^(BM_|-|Benchmark)'
echo '```'
echo

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

# mcpmw-nopoll: the same sidecar with --busy-poll-us 0, sleeping in the kernel as soon as it is
# idle (the default polls 50 µs after each burst). The bars are judged on plain `mcpmw`, the
# default configuration.
# mcpmw-governed: the full eleven-stage chain (bench/governed_bundle.json: identity, policy
# rules with expressions, catalog, two rate limits, path and detector redaction both ways,
# pricing) and a signed audit log, one record per request, written by the audit thread.
# mcpmw-governed-noaudit: the same chain without the audit log, so that the table separates what
# the chain costs from what the log costs.
CONFIGS=(direct relay mcpmw mcpmw-nopoll mcpmw-governed-noaudit mcpmw-governed)
AUDIT_DIR=$(mktemp -d)
trap 'rm -rf "$AUDIT_DIR"' EXIT
head -c 32 /dev/urandom >"$AUDIT_DIR/key"
command_for() {
  case $1 in
    mcpmw-governed)
      echo "$MCPMW stdio --policy bench/governed_bundle.json --audit-log $AUDIT_DIR/audit.jsonl" \
        "--audit-key $AUDIT_DIR/key --allow-prefix $(dirname "$ECHO") -- $ECHO"
      ;;
    mcpmw-governed-noaudit)
      echo "$MCPMW stdio --policy bench/governed_bundle.json --allow-prefix $(dirname "$ECHO")" \
        "-- $ECHO"
      ;;
    direct) echo "$ECHO" ;;
    relay) echo "$RELAY -- $ECHO" ;;
    mcpmw) echo "$MCPMW stdio --allow-prefix $(dirname "$ECHO") -- $ECHO" ;;
    mcpmw-nopoll)
      echo "$MCPMW stdio --busy-poll-us 0 --allow-prefix $(dirname "$ECHO") -- $ECHO"
      ;;
  esac
}

declare -A RESULTS  # "<config> <W> <metric>" -> newline-separated values, one per run
declare -A FAILURES # "<config> <W>" -> first failure message
NOTES=()
for w in 1 32; do
  if [[ $w == 1 ]]; then messages=$MESSAGES_W1; else messages=$MESSAGES_W32; fi
  warmup=$((messages / 10))
  for ((rep = 1; rep <= REPS; ++rep)); do
    for config in "${CONFIGS[@]}"; do
      if [[ $config == mcpmw* && -z $MCPMW ]]; then
        FAILURES["$config $w"]="not built"
        continue
      fi
      [[ -n ${FAILURES["$config $w"]:-} ]] && continue
      err=$(mktemp)
      rm -f "$AUDIT_DIR/audit.jsonl"  # each governed run starts a fresh log
      # shellcheck disable=SC2046 # the command is a word list by design
      out=$("${PIN[@]}" "$LOAD" --window "$w" --messages "$messages" --warmup "$warmup" \
        --payload-bytes "$PAYLOAD_BYTES" --json -- $(command_for "$config") 2>"$err")
      rc=$?
      if [[ $rc -ne 0 || -z $out ]]; then
        FAILURES["$config $w"]="failed: $(grep -m1 FAIL "$err" || tail -n1 "$err")"
        NOTES+=("$config W=$w: $(head -c 2000 "$err")")
      fi
      rm -f "$err"
      [[ -z $out ]] && continue
      for metric in msgs_per_s p50_us p99_us p999_us cpu_us_per_msg; do
        RESULTS["$config $w $metric"]+="$(field "$out" "$metric")"$'\n'
      done
    done
  done
done

med() {
  printf '%s' "${RESULTS["$1 $2 $3"]:-}" | grep -v '^$' | median
}
ratio() {  # ratio a b, or "-" when either is missing
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f×", a / b }'
}

echo "## End to end (payload $PAYLOAD_BYTES B, median of $REPS runs)"
echo
echo "CPU µs/msg: user + system CPU of the load generator, the proxy and the server together,"
echo "per request (mcpmw-load's cpu_us_per_msg; kernel threads such as page writeback not included)."
echo
echo "| configuration | W | msgs/s | p50 µs | p99 µs | p999 µs | CPU µs/msg | msgs/s vs relay | p50 vs relay |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
for config in "${CONFIGS[@]}"; do
  for w in 1 32; do
    failure=${FAILURES["$config $w"]:-}
    if [[ -n $failure && -z ${RESULTS["$config $w msgs_per_s"]:-} ]]; then
      echo "| $config | $w | $failure | | | | | | |"
      continue
    fi
    tput=$(med "$config" "$w" msgs_per_s)
    p50=$(med "$config" "$w" p50_us)
    echo "| $config | $w | $tput | $p50 | $(med "$config" "$w" p99_us) | $(med "$config" "$w" p999_us)" \
      "| $(med "$config" "$w" cpu_us_per_msg)" \
      "| $(ratio "$tput" "$(med relay "$w" msgs_per_s)") | $(ratio "$p50" "$(med relay "$w" p50_us)") |"
  done
done
echo

verdict() {  # verdict name value bar op
  awk -v name="$1" -v v="$2" -v bar="$3" -v op="$4" 'BEGIN {
    if (v == "-") { printf "- %s: n/a (no measurement)\n", name; exit }
    ok = (op == ">=") ? (v + 0 >= bar) : (v + 0 <= bar)
    printf "- %s: %.2f× (bar %s %.2f×) %s\n", name, v, op, bar, ok ? "PASS" : "FAIL"
  }'
}
raw_ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else print a / b }'
}
echo "Load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "## Bars"
echo
if [[ -z $MCPMW ]]; then
  echo "- mcpmw is not built in $BUILD: bars not evaluated"
else
  verdict "mcpmw throughput vs relay at W=32" \
    "$(raw_ratio "$(med mcpmw 32 msgs_per_s)" "$(med relay 32 msgs_per_s)")" 0.8 ">="
  verdict "mcpmw p50 vs relay at W=1" \
    "$(raw_ratio "$(med mcpmw 1 p50_us)" "$(med relay 1 p50_us)")" 1.25 "<="
  verdict "mcpmw-governed (full chain + audit) throughput vs relay at W=32" \
    "$(raw_ratio "$(med mcpmw-governed 32 msgs_per_s)" "$(med relay 32 msgs_per_s)")" 0.8 ">="
fi
if ((${#NOTES[@]} > 0)); then
  echo
  echo "## Failures"
  echo
  for note in "${NOTES[@]}"; do
    echo '```'
    echo "$note"
    echo '```'
  done
fi

echo
echo "## Session start: cold spawn vs warm lease"
echo
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SESSION=$BENCH_DIR/session_start_bench
NODE_MODULES=$ROOT/tests/integration/node_modules
EVERYTHING=$NODE_MODULES/@modelcontextprotocol/server-everything/dist/index.js
if [[ ! -x $SESSION ]]; then
  echo "- skipped: $SESSION is not built"
elif ! command -v node >/dev/null 2>&1; then
  echo "- skipped: node is not installed (both servers are Node programs; \`make deps\`)"
else
  servers=(--server demo --cold "${SESSION_COLD:-30}" --warm "${SESSION_WARM_DEMO:-300}"
    -- node "$ROOT/demo/server.mjs")
  if [[ -f $EVERYTHING ]]; then
    servers+=(--server everything --cold "${SESSION_COLD:-30}"
      --warm "${SESSION_WARM_EVERYTHING:-60}" -- node "$EVERYTHING" stdio)
  else
    echo "- server-everything skipped: $EVERYTHING is missing (\`make deps-node\` installs it)"
    echo
  fi
  echo "From asking for a worker until the session holds the server's \`initialize\` result and"
  echo "may send its first request. Pools: exclusive, minWarm 1, maxWorkers 2; before each timed"
  echo "lease the bench waits (untimed) until the previous worker is reaped and its replacement is"
  echo "warm, so each timed lease is a warm hand-off, not a queue wait."
  echo
  err=$(mktemp)
  started=$(date +%s)
  if "$SESSION" "${servers[@]}" 2>"$err"; then
    echo "- took $(($(date +%s) - started)) s"
  else
    echo "- failed: $(grep -m1 FAIL "$err" || tail -n1 "$err")"
    echo
    echo '```'
    tail -n 20 "$err"
    echo '```'
  fi
  rm -f "$err"
fi

# Streamable HTTP gateways: mcpmw serve vs supergateway and mcp-proxy (npm, exact versions from
# bench/http/package-lock.json; `make deps-bench`), with nginx as the ceiling. Its own script, so
# it also runs alone: bench/http/run_http_bench.sh BUILD_DIR.
echo
"$ROOT/bench/http/run_http_bench.sh" "$BUILD"
exit 0
