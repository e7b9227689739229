#!/usr/bin/env bash
# Sensitivity jobs (issue 4): a campaign with a "sensitivity" section and the sim backend, two
# agents with different names. Each name gets one sensitivity job before its evaluations: its
# rows (every layer x every default precision) land in the sensitivity table under the agent's
# name and `bitscout query sensitivity` shows them in every format. A resumed campaign does
# not measure those names again; an agent with a new name that joins the resumed campaign is
# measured (the resumed run has a large budget and is stopped with SIGINT once it is). Then
# `bitscout-agent sensitivity` runs the engine on the same campaign file, and a second campaign
# kills an agent in the middle of its sensitivity job: the lease machinery retries it.
source "$(dirname "$0")/lib.sh"

# The default precisions: every non-fp32 choice of the search space, 7 x 2 - 1 = 13 of them;
# the bundled model has 4 weight layers: 52 rows per agent name. sim_fail_rate makes some rows
# unmeasured (deterministically, by configuration): they are stored with an error.
cat > "$T/sens.json" <<JSON
{
  "name": "sens",
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
  "policy": {"name": "random", "seed": 5},
  "budget": {"evaluations": 30},
  "measure": {"backend": "sim", "sim_delay_ms": 40, "sim_fail_rate": 0.1},
  "agents": {"heartbeat_ms": 200, "liveness": 5, "lease_ms": 20000},
  "quantization": {"weights": "mse", "activations": "percentile", "percentile": 99.9},
  "sensitivity": {"eval_count": 200}
}
JSON

start_searcher "$T/sens.json" "$T/searcher1.log" --bind 'tcp://127.0.0.1:*'
ep=$(wait_endpoint "$T/searcher1.log")
start_agent "$ep" s1; A1=$AGENT_PID
start_agent "$ep" s2; A2=$AGENT_PID
wait_exit "$SEARCHER_PID" 120; rc=$EXIT_RC
[ "$rc" -eq 0 ] || fail "searcher exited with $rc"
check_complete sens 30
ok "30 evaluations beside the sensitivity jobs"

# rows [SQL CONDITION]: sensitivity rows of the campaign
rows() {
  db "select count(*) from sensitivity s join campaigns c on c.id = s.campaign_id
      where c.name = 'sens' $1"
}
for a in s1 s2; do
  [ "$(rows "and agent = '$a'")" -eq 52 ] || fail "$a has $(rows "and agent = '$a'") rows, not 52"
  pairs=$(db "select count(distinct layer || '@' || precision) from sensitivity
              where agent = '$a'")
  [ "$pairs" -eq 52 ] || fail "$a: $pairs distinct (layer, precision) pairs, expected 52"
done
[ "$(rows "")" -eq 104 ] || fail "expected 104 rows, found $(rows "")"
[ "$(db "select count(distinct layer) from sensitivity")" -eq 4 ] || fail "not every layer"
[ "$(db "select count(distinct precision) from sensitivity")" -eq 13 ] || fail "not 13 precisions"
[ "$(rows "and precision = 'w32a32'")" -eq 0 ] || fail "w32a32 measured"
order=$(db "select group_concat(precision) from (select precision from sensitivity
            where agent = 's1' and layer = 'conv1' order by id)")
[ "$order" = "w32a8,w16a32,w16a8,w8a32,w8a8,w6a32,w6a8,w4a32,w4a8,w3a32,w3a8,w2a32,w2a8" ] ||
  fail "precision order: $order"
[ "$(rows "and simulated = 1")" -eq 104 ] || fail "rows not marked simulated"
[ "$(rows "and baseline is null")" -eq 0 ] || fail "rows without a baseline"
[ "$(rows "and metric = 'top1'")" -eq 104 ] || fail "metric is not top1"
# delta = value - baseline; unmeasured rows have neither, and say why.
[ "$(rows "and value is not null and abs(delta - (value - baseline)) > 1e-9")" -eq 0 ] ||
  fail "delta != value - baseline"
nulls=$(rows "and value is null")
[ "$nulls" -eq "$(rows "and delta is null")" ] || fail "value and delta nulls differ"
[ "$nulls" -eq "$(rows "and error like 'EBACKEND: sim: injected failure%'")" ] ||
  fail "unmeasured rows without their error"
[ "$nulls" -gt 0 ] && [ "$nulls" -lt 104 ] ||
  fail "expected some unmeasured rows (sim_fail_rate), found $nulls"
# The sim is deterministic: both devices report the same numbers.
same=$(db "select count(*) from sensitivity a join sensitivity b on a.layer = b.layer and
  a.precision = b.precision and a.agent = 's1' and b.agent = 's2' where a.value is b.value")
[ "$same" -eq 52 ] || fail "s1 and s2 differ on $((52 - same)) rows"
# Lower precision costs more: int2 weights hurt fc1 (most of the parameters) more than int8.
worse=$(db "select count(*) from sensitivity a join sensitivity b on a.agent = b.agent and
  a.layer = b.layer where a.layer = 'fc1' and a.precision = 'w2a32' and b.precision = 'w8a32'
  and a.value >= b.value")
[ "$worse" -eq 0 ] || fail "on fc1, w2a32 did not cost more than w8a32"
for a in s1 s2; do
  grep -q "sensitivity for agent $a: 52 rows" "$T/searcher1.log" || fail "no stored line for $a"
done
ok "52 rows for each of s1 and s2: every layer x every precision, $nulls unmeasured of 104"

q() { "$BS_BIN/bitscout" query sensitivity --db "$T/results.db" "$@"; }
q --format csv > "$T/sens.csv"
head -1 "$T/sens.csv" |
  grep -qx 'agent,layer,precision,metric,baseline,value,delta,simulated,error' ||
  fail "csv header: $(head -1 "$T/sens.csv")"
[ "$(($(wc -l < "$T/sens.csv") - 1))" -eq 104 ] || fail "csv has $(wc -l < "$T/sens.csv") lines"
grep -q '^s1,conv1,w8a8,top1,' "$T/sens.csv" || fail "csv lacks s1 conv1 w8a8"
grep -q '^s2,fc2,w2a8,top1,' "$T/sens.csv" || fail "csv lacks s2 fc2 w2a8"
q --campaign sens > "$T/sens.txt"
grep -q 'note: rows marked simulated=1' "$T/sens.txt" || fail "table lacks the simulated note"
q --format json > "$T/sens.json.out"
[ "$(grep -o '"precision"' "$T/sens.json.out" | wc -l)" -eq 104 ] || fail "json rows"
ok "bitscout query sensitivity: csv, table and json"

# Resume with a larger budget, the same two agents (they reconnect) and a third name; once s3
# is measured and the others have evaluated again, stop the campaign with SIGINT.
snapshot="select agent || layer || precision || created_at from sensitivity
          where agent in ('s1', 's2') order by id"
db "$snapshot" > "$T/before.txt"
start_searcher "$T/sens.json" "$T/searcher2.log" --bind "$ep" --budget 5000
start_agent "$ep" s3
for _ in $(seq 1 600); do
  [ "$(rows "and agent = 's3'")" -ge 52 ] && [ "$(evals)" -ge 60 ] && break
  sleep 0.1
done
kill -INT "$SEARCHER_PID"
wait_exit "$SEARCHER_PID" 60; rc=$EXIT_RC
[ "$rc" -eq 130 ] || fail "interrupted searcher exited with $rc, expected 130"
[ "$(evals)" -ge 60 ] || fail "the resumed campaign did not evaluate (have $(evals))"
grep -q '2 agent name(s) measured already' "$T/searcher2.log" ||
  fail "resume did not read back the measured names"
grep -q 'sensitivity for agent s1' "$T/searcher2.log" && fail "s1 measured again"
grep -q 'sensitivity for agent s2' "$T/searcher2.log" && fail "s2 measured again"
db "$snapshot" > "$T/after.txt"
cmp -s "$T/before.txt" "$T/after.txt" || fail "the rows of s1 and s2 changed on resume"
[ "$(rows "and agent = 's3'")" -eq 52 ] || fail "the new agent s3 has $(rows "and agent = 's3'")"
[ "$(rows "")" -eq 156 ] || fail "expected 156 rows, found $(rows "")"
ok "resume: s1 and s2 not measured again, the new s3 measured"
kill "$A1" "$A2" 2>/dev/null || true

# `bitscout-agent sensitivity`: the engine, locally, on the same campaign file. Without
# calibration data the a8 rows are unmeasured and say why; the others are real evaluations.
agent() { "$BS_BIN/bitscout-agent" sensitivity "$@"; }
rc=0; agent --precisions w8a8 > "$T/cli.out" 2> "$T/cli.err" || rc=$?
[ "$rc" -eq 2 ] && grep -q -- '--config CAMPAIGN.json is required' "$T/cli.err" ||
  fail "no --config: rc $rc"
rc=0; agent --config "$T/sens.json" --precisions w8a8,w9a9 > "$T/cli.out" 2> "$T/cli.err" || rc=$?
[ "$rc" -eq 2 ] && grep -q "precisions 'w8a8,w9a9': expected distinct precisions" "$T/cli.err" ||
  fail "bad --precisions: rc $rc"
rc=0; agent --config "$T/missing.json" > "$T/cli.out" 2> "$T/cli.err" || rc=$?
[ "$rc" -eq 1 ] && grep -q 'missing.json' "$T/cli.err" || fail "missing campaign: rc $rc"
agent --config "$T/sens.json" --precisions w8a32,w4a32,w8a8 --count 50 --json \
  > "$T/cli.json" 2> "$T/cli.log" || fail "engine sensitivity failed: $(tail -3 "$T/cli.log")"
grep -q '"backend":"engine"' "$T/cli.json" || fail "not the engine: $(head -c 300 "$T/cli.json")"
grep -q '"simulated":false' "$T/cli.json" || fail "engine rows marked simulated"
[ "$(grep -o '"layer"' "$T/cli.json" | wc -l)" -eq 12 ] || fail "expected 12 rows"
[ "$(grep -o '"value":null' "$T/cli.json" | wc -l)" -eq 4 ] || fail "expected 4 unmeasured a8 rows"
grep -q 'calibration' "$T/cli.json" || fail "a8 rows do not say why"
agent --config "$T/sens.json" --precisions w4a32 --count 50 > "$T/cli.txt" 2> "$T/cli.log" ||
  fail "engine sensitivity (table) failed"
grep -q '^baseline ' "$T/cli.txt" && grep -q '^fc2 *w4a32 ' "$T/cli.txt" ||
  fail "table: $(cat "$T/cli.txt")"
ok "bitscout-agent sensitivity: usage errors, engine rows in json and table"

# A sensitivity job shares the evaluations' leases and retries: its agent is killed mid-job,
# the attempt is recorded as agent_lost, and the restarted agent of that name measures it.
sed -e 's/"name": "sens"/"name": "sens-lease"/' -e 's/"sim_delay_ms": 40/"sim_delay_ms": 1500/' \
    -e 's/"sim_fail_rate": 0.1/"sim_fail_rate": 0/' -e 's/"evaluations": 30/"evaluations": 2/' \
    -e 's/"sensitivity": {"eval_count": 200}/"sensitivity": {"precisions": ["w8a8"]}/' \
    "$T/sens.json" > "$T/lease.json"
start_searcher "$T/lease.json" "$T/searcher3.log" --bind 'tcp://127.0.0.1:*'
ep=$(wait_endpoint "$T/searcher3.log")
start_agent "$ep" r1
for _ in $(seq 1 100); do
  grep -q 'sensitivity over' "$T/agent-r1.log" && break
  sleep 0.1
done
grep -q 'sensitivity over' "$T/agent-r1.log" || fail "r1 got no sensitivity job"
kill -9 "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
for _ in $(seq 1 100); do
  grep -q 'sensitivity for agent r1) attempt 1/3 on r1: agent_lost' "$T/searcher3.log" && break
  sleep 0.1
done
grep -q 'sensitivity for agent r1) attempt 1/3 on r1: agent_lost' "$T/searcher3.log" ||
  fail "the lost sensitivity attempt was not recorded"
mv "$T/agent-r1.log" "$T/agent-r1-killed.log"
start_agent "$ep" r1
wait_exit "$SEARCHER_PID" 60; rc=$EXIT_RC
[ "$rc" -eq 0 ] || fail "searcher exited with $rc"
lease_rows=$(db "select count(*) from sensitivity s join campaigns c on c.id = s.campaign_id
                 where c.name = 'sens-lease' and agent = 'r1' and value is not null")
[ "$lease_rows" -eq 4 ] || fail "r1 has $lease_rows rows after the retry, expected 4"
lost=$(db "select count(*) from attempts a join campaigns c on c.id = a.campaign_id
           where c.name = 'sens-lease' and a.config_id is null and a.outcome = 'agent_lost'")
[ "$lost" -eq 1 ] || fail "expected one agent_lost attempt without a config, found $lost"
ok "a sensitivity job whose agent died is retried by the next agent of that name"
