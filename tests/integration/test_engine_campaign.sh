#!/usr/bin/env bash
# A campaign measured by the real engine (not sim): the fp32 configuration is stored with
# simulated = 0, a real accuracy, latency statistics and weight bytes; a configuration the
# engine cannot run yet (int8 weights, issue 4) is stored as a failed evaluation with
# EUNSUPPORTED, not as a number.
source "$(dirname "$0")/lib.sh"
cat > "$T/engine.json" <<JSON
{
  "name": "engine",
  "model": "$BS_SRC/models/fmnist-cnn.onnx",
  "data": {
    "eval": {"images": "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
             "labels": "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz",
             "count": 200},
    "preprocess": {"scale": 0.00392156862745098, "mean": [0.2860], "std": [0.3530]}
  },
  "search_space": [{"layers": "fc2", "weights": ["fp32", "int8"], "activations": ["fp32"]}],
  "objectives": [{"metric": "accuracy", "goal": "max"},
                 {"metric": "latency_p90_ms", "goal": "min"}],
  "budget": {"evaluations": 2},
  "measure": {"backend": "engine", "warmup_runs": 2, "min_runs": 5, "min_time_ms": 20,
              "max_time_ms": 2000},
  "agents": {"heartbeat_ms": 200, "max_attempts": 1}
}
JSON
start_searcher "$T/engine.json" "$T/searcher.log" --bind 'tcp://127.0.0.1:*' --local-agents 1
wait_exit "$SEARCHER_PID" 120; rc=$EXIT_RC
[ "$rc" -eq 0 ] || fail "searcher exited with $rc"
check_complete engine 2
row=$(db "select simulated, backend, metric, accuracy > 0.8, latency_median_ms > 0,
          latency_runs >= 5, weight_bytes between 423464 and 440000, energy_j is null, energy_source
          from results where status = 'ok'")
[ "$row" = "0|engine|top1|1|1|1|1|1|none" ] || fail "engine result: $row"
[ "$(db "select error_code from results where status = 'failed'")" = EUNSUPPORTED ] \
  || fail "the int8 configuration should fail with EUNSUPPORTED: $(db 'select * from results')"
ok "engine-measured evaluation stored (simulated=0, accuracy, latency, weights); int8 refused"
