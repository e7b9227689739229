# lib.sh - shared helpers for the integration tests: a temporary campaign directory, a
# searcher and agents on loopback, and waiting on the database. Every process a test starts is
# killed on exit. Each wait is bounded: a test fails, it never hangs.
# Environment: BS_BIN (build dir with bitscout, bitscout-agent, bs-badpeer), BS_SRC (source).
set -euo pipefail
BS_BIN=${BS_BIN:?set BS_BIN to the build directory}
BS_SRC=${BS_SRC:?set BS_SRC to the source directory}
T=$(mktemp -d /tmp/bs_it_XXXXXX)
export BITSCOUT_CACHE_DIR=$T/cache
PIDS=()

cleanup() {
  local rc=$?
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ $rc -ne 0 ]; then
    echo "--- test failed (rc=$rc); logs in $T:"
    for f in "$T"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -30 "$f"; }; done
  elif [ -z "${BS_KEEP:-}" ]; then
    rm -rf "$T"
  else
    echo "kept $T"
  fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok: $*"; }

# write_config NAME BUDGET [extra measure json] [agents json]
write_config() {
  local name=$1 budget=$2 measure=${3:-'"sim_delay_ms": 20'} agents=${4:-'"heartbeat_ms": 200, "liveness": 5, "lease_ms": 20000'}
  cat > "$T/$name.json" <<JSON
{
  "name": "$name",
  "model": "$BS_SRC/models/fmnist-cnn.onnx",
  "data": {
    "eval": {"images": "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
             "labels": "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz",
             "count": 1000}
  },
  "search_space": [
    {"layers": "*", "weights": ["fp32", "fp16", "int8", "int6", "int4", "int3", "int2"],
     "activations": ["fp32", "int8"]}
  ],
  "objectives": [{"metric": "accuracy", "goal": "max"},
                 {"metric": "latency_p90_ms", "goal": "min"}],
  "policy": {"name": "random", "seed": 11},
  "budget": {"evaluations": $budget},
  "measure": {"backend": "sim", $measure},
  "agents": {$agents}
}
JSON
}

# start_searcher CONFIG LOG [extra args...]: starts it in the background, sets SEARCHER_PID
start_searcher() {
  local cfg=$1 log=$2
  shift 2
  "$BS_BIN/bitscout" search "$cfg" --db "$T/results.db" --progress log "$@" > "$log" 2>&1 &
  SEARCHER_PID=$!
  PIDS+=("$SEARCHER_PID")
}

# wait_endpoint LOG: prints the endpoint the searcher bound (tcp://127.0.0.1:PORT)
wait_endpoint() {
  local log=$1
  for _ in $(seq 1 100); do
    local ep
    ep=$(sed -n 's/.*listening on \(tcp:[^ ]*\).*/\1/p' "$log" | head -1)
    [ -n "$ep" ] && { echo "$ep"; return 0; }
    sleep 0.1
  done
  fail "searcher did not report its endpoint (log: $log)"
}

# start_agent ENDPOINT NAME: sets AGENT_PID
start_agent() {
  "$BS_BIN/bitscout-agent" --connect "$1" --name "$2" --cache-dir "$T/cache/$2" \
    > "$T/agent-$2.log" 2>&1 &
  AGENT_PID=$!
  PIDS+=("$AGENT_PID")
}

db() { sqlite3 -batch "$T/results.db" "$@"; }

evals() { db "select count(*) from evaluations" 2>/dev/null || echo 0; }

# wait_evals N SECONDS: until at least N evaluations are stored
wait_evals() {
  local n=$1 secs=$2
  for _ in $(seq 1 $((secs * 10))); do
    [ "$(evals)" -ge "$n" ] && return 0
    sleep 0.1
  done
  fail "fewer than $n evaluations after ${secs}s (have $(evals))"
}

# wait_exit PID SECONDS: waits for a child process to exit; sets EXIT_RC to its status
wait_exit() {
  local pid=$1 secs=$2
  for _ in $(seq 1 $((secs * 10))); do
    if ! kill -0 "$pid" 2>/dev/null; then
      EXIT_RC=0
      wait "$pid" || EXIT_RC=$?
      return 0
    fi
    sleep 0.1
  done
  fail "process $pid still running after ${secs}s"
}

# check_no_duplicates CAMPAIGN BUDGET: exactly BUDGET evaluations, one per config
check_complete() {
  local campaign=$1 budget=$2
  local n distinct
  n=$(db "select count(*) from evaluations e join campaigns c on c.id = e.campaign_id where c.name = '$campaign'")
  distinct=$(db "select count(distinct e.config_id) from evaluations e join campaigns c on c.id = e.campaign_id where c.name = '$campaign'")
  [ "$n" -eq "$budget" ] || fail "expected $budget evaluations, found $n"
  [ "$distinct" -eq "$n" ] || fail "duplicate evaluations: $n rows, $distinct configs"
  local dup_assign
  dup_assign=$(db "select count(*) from (select assignment from configs group by campaign_id, assignment having count(*) > 1)")
  [ "$dup_assign" -eq 0 ] || fail "duplicate configs"
}
