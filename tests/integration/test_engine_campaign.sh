#!/usr/bin/env bash
# A campaign measured by the real engine (not sim): every configuration of fc2 at fp32 / int8
# weights and fp32 / int8 activations is stored with simulated = 0, a real accuracy, latency
# statistics and the weight bytes the engine holds (int8 weights fewer than fp32); int8
# activations are calibrated on data.calibration. A configuration the engine cannot run
# (int8 activations with no calibration data) is stored as a failed evaluation whose error
# names the missing calibration, not as a number.
source "$(dirname "$0")/lib.sh"
write_config() { # $1 name, $2 calibration block (or empty)
  cat > "$T/$1.json" <<JSON
{
  "name": "$1",
  "model": "$BS_SRC/models/fmnist-cnn.onnx",
  "data": {
    "eval": {"images": "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
             "labels": "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz",
             "count": 200},
    $2
    "preprocess": {"scale": 0.00392156862745098, "mean": [0.2860], "std": [0.3530]}
  },
  "search_space": [{"layers": "fc2", "weights": ["fp32", "int8"], "activations": ["fp32", "int8"]}],
  "objectives": [{"metric": "accuracy", "goal": "max"},
                 {"metric": "latency_p90_ms", "goal": "min"}],
  "budget": {"evaluations": 4},
  "measure": {"backend": "engine", "warmup_runs": 2, "min_runs": 5, "min_time_ms": 20,
              "max_time_ms": 2000},
  "agents": {"heartbeat_ms": 200, "max_attempts": 1}
}
JSON
}
write_config engine '"calibration": {"images": "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", "count": 64},'
start_searcher "$T/engine.json" "$T/searcher.log" --bind 'tcp://127.0.0.1:*' --local-agents 1
wait_exit "$SEARCHER_PID" 120; rc=$EXIT_RC
[ "$rc" -eq 0 ] || fail "searcher exited with $rc"
check_complete engine 4
[ "$(db "select count(*) from results where status = 'ok' and simulated = 0 and backend = 'engine'
         and metric = 'top1' and accuracy > 0.8 and latency_median_ms > 0 and latency_runs >= 5
         and energy_j is null and energy_source = 'none'")" = 4 ] \
  || fail "engine results: $(db 'select * from results')"
fp32=$(db "select weight_bytes from results where assignment like '%fc2=w32a32%'")
int8=$(db "select weight_bytes from results where assignment like '%fc2=w8a8%'")
[ -n "$fp32" ] && [ -n "$int8" ] && [ "$int8" -lt "$fp32" ] \
  || fail "int8 weights should hold fewer bytes: fp32 $fp32, int8 $int8"
ok "4 engine-measured evaluations stored (simulated=0); fc2 int8 holds $int8 bytes vs $fp32"
# every evaluation carries its per-layer profile and how the run went
[ "$(db "select count(*) from evaluations e, json_each(e.result_json, '\$.metrics.profile.layers') l
         where json_extract(l.value, '\$.ms') >= 0")" = 16 ] ||
  fail "profiles: $(db "select json_extract(result_json, '\$.metrics.profile') from evaluations")"
[ "$(db "select count(*) from results where threads = 1 and cpus <> '' and unstable is not null
         and engine like 'bitscout-engine %' and agent_version <> ''")" = 4 ] ||
  fail "run details: $(db 'select threads, cpus, unstable, engine from results')"
ok "per-layer profiles (4 layers x 4 evaluations) and run details stored"

# no calibration data: the a8 configurations fail with a message, the a32 ones succeed
write_config nocal ''
rm -f "$T"/results.db*
start_searcher "$T/nocal.json" "$T/searcher2.log" --bind 'tcp://127.0.0.1:*' --local-agents 1
wait_exit "$SEARCHER_PID" 120; rc=$EXIT_RC
[ "$rc" -eq 0 ] || fail "searcher exited with $rc"
[ "$(db "select count(*) from results where status = 'failed' and error_message like '%calibration%'
         and assignment like '%a8'")" = 2 ] \
  || fail "a8 without calibration should fail naming it: $(db 'select assignment, status, error_message from results')"
[ "$(db "select count(*) from results where status = 'ok'")" = 2 ] || fail "a32 results missing"
ok "int8 activations without calibration data fail with a clear error"
