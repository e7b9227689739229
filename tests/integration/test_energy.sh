#!/usr/bin/env bash
# Energy from a sensor, end to end: a fake RAPL powercap tree (a package counter that a helper
# process advances by 20 mJ every 10 ms, about 2 W) under BITSCOUT_SENSOR_ROOT; an engine
# campaign's agent finds it, measures idle power and an energy window per evaluation, and the
# database stores energy per inference with source "rapl", its dynamic part, the window, the
# sample count and the inferences behind it. Then the same campaign with --no-sensors agents
# (started by hand) stores energy as unknown with source "none" and the reason.
source "$(dirname "$0")/lib.sh"
R=$T/root/sys/class/powercap/intel-rapl:0
mkdir -p "$R"
echo package-0 > "$R/name"
echo 262143328850 > "$R/max_energy_range_uj"
echo 1000 > "$R/energy_uj"
( v=1000
  while :; do
    v=$((v + 20000)); echo "$v" > "$R/energy_uj.tmp"; mv "$R/energy_uj.tmp" "$R/energy_uj"
    sleep 0.01
  done ) &
PIDS+=($!)
cat > "$T/energy.json" <<JSON
{
  "name": "energy",
  "model": "$BS_SRC/models/fmnist-cnn.onnx",
  "data": {
    "eval": {"images": "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
             "labels": "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz",
             "count": 100}
  },
  "search_space": [{"layers": "fc2", "weights": ["fp32", "int8"], "activations": ["fp32"]}],
  "objectives": [{"metric": "accuracy", "goal": "max"}, {"metric": "energy_j", "goal": "min"}],
  "budget": {"evaluations": 2},
  "measure": {"backend": "engine", "warmup_runs": 1, "warmup_min_ms": 0, "min_runs": 5,
              "min_time_ms": 0, "energy_ms": 400, "idle_ms": 200},
  "agents": {"heartbeat_ms": 200, "max_attempts": 1}
}
JSON
export BITSCOUT_SENSOR_ROOT=$T/root
start_searcher "$T/energy.json" "$T/searcher.log" --bind 'tcp://127.0.0.1:*' --local-agents 1
wait_exit "$SEARCHER_PID" 120; rc=$EXIT_RC
[ "$rc" -eq 0 ] || fail "searcher exited with $rc"
check_complete energy 2
rows=$(db "select count(*) from results r join evaluations e on e.id = r.eval_id
           where r.status = 'ok' and r.energy_source = 'rapl' and r.energy_j > 0
           and r.energy_reason is null
           and json_extract(e.result_json, '\$.metrics.energy.samples') >= 2
           and json_extract(e.result_json, '\$.metrics.energy.runs') > 0
           and json_extract(e.result_json, '\$.metrics.energy.window_s') >= 0.39
           and json_extract(e.result_json, '\$.metrics.energy.idle_watts') > 0")
[ "$rows" = 2 ] || fail "rapl energy not stored: $(db 'select assignment, energy_j, energy_source, energy_reason from results')"
ok "energy per inference stored with source rapl, window, samples and idle power"

# agents that look for no sensor: energy unknown, with the reason
rm -f "$T"/results.db*
start_searcher "$T/energy.json" "$T/searcher2.log" --bind 'tcp://127.0.0.1:*'
ep=$(wait_endpoint "$T/searcher2.log")
"$BS_BIN/bitscout-agent" --connect "$ep" --name plain --no-sensors --cache-dir "$T/cache/plain" \
  > "$T/agent-plain.log" 2>&1 &
PIDS+=($!)
wait_exit "$SEARCHER_PID" 120; rc=$EXIT_RC
[ "$rc" -eq 0 ] || fail "searcher exited with $rc"
[ "$(db "select count(*) from results where status = 'ok' and energy_j is null
         and energy_source = 'none' and energy_reason like '%no-sensors%'")" = 2 ] ||
  fail "unknown energy: $(db 'select energy_j, energy_source, energy_reason from results')"
ok "without sensors energy is NULL with source none and the reason"
