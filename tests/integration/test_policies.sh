#!/usr/bin/env bash
# Search policies through the whole searcher (issue 6), on the sim backend (a test tool: its
# numbers are synthetic, which is all this test needs): NSGA-II runs a campaign to its budget
# with a hypervolume recorded after every result; its state is saved in the database and a
# resumed campaign restores it (and replays only what came after); a state that does not fit
# is refused with a reason and the search goes on from the replayed results; HAQ runs a
# campaign; the sensitivity seeder waits for the sensitivity jobs, proposes its seeds, then
# hands over to NSGA-II.
source "$(dirname "$0")/lib.sh"

# campaign NAME BUDGET POLICY_JSON [EXTRA_TOP_LEVEL_JSON]
campaign() {
  local name=$1 budget=$2 policy=$3 extra=${4:-}
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
    {"layers": "*", "weights": ["fp32", "fp16", "int8", "int4", "int2"],
     "activations": ["fp32", "int8"]}
  ],
  "objectives": [{"metric": "accuracy", "goal": "max"},
                 {"metric": "latency_p90_ms", "goal": "min"},
                 {"metric": "weight_bytes", "goal": "min"}],
  "constraints": [{"metric": "accuracy", "min": 0.5}],
  "policy": $policy,
  "budget": {"evaluations": $budget},
  "measure": {"backend": "sim", "sim_delay_ms": 5},
  "agents": {"heartbeat_ms": 200, "liveness": 5, "lease_ms": 20000}$extra
}
JSON
}

run_campaign() { # NAME LOG
  "$BS_BIN/bitscout" search "$T/$1.json" --db "$T/results.db" --local-agents 2 \
    --bind 'tcp://127.0.0.1:*' --progress log > "$T/$2" 2>&1 || fail "$1: searcher failed ($2)"
}

cdb() { # CAMPAIGN SQL-with-:c for the campaign id
  local id
  id=$(db "select id from campaigns where name = '$1'")
  db "${2//:c/$id}"
}

# ---- NSGA-II: a campaign, its hypervolume series, its saved state ----------------------------
campaign ns 40 '{"name": "nsga2", "seed": 3, "population": 8}'
run_campaign ns ns1.log
check_complete ns 40
[ "$(cdb ns "select count(*) from progress where campaign_id = :c")" -eq 40 ] ||
  fail "one progress point per result expected"
last_hv=$(cdb ns "select hypervolume from progress where campaign_id = :c order by id desc limit 1")
[ -n "$last_hv" ] || fail "no hypervolume recorded"
awk -v h="$last_hv" 'BEGIN { exit !(h > 0 && h <= 1) }' || fail "hypervolume $last_hv not in (0, 1]"
grep -q "hypervolume $(printf '%.4f' "$last_hv")" "$T/ns1.log" || fail "final line lacks the hypervolume"
"$BS_BIN/bitscout" query progress --db "$T/results.db" --campaign ns --format csv > "$T/prog.csv"
head -1 "$T/prog.csv" | grep -q hypervolume || fail "query progress has no hypervolume column"
[ "$(wc -l < "$T/prog.csv")" -eq 41 ] || fail "query progress: $(wc -l < "$T/prog.csv") lines"
[ "$(cdb ns "select policy from policy_state where campaign_id = :c")" = nsga2 ] ||
  fail "no saved nsga2 state"
[ "$(cdb ns "select last_evaluation_id from policy_state where campaign_id = :c")" = \
  "$(cdb ns "select max(id) from evaluations where campaign_id = :c")" ] ||
  fail "the saved state does not cover the last evaluation"
ok "nsga2: 40 evaluations, hypervolume $last_hv, state saved"

# ---- resume: the state is restored, nothing is evaluated twice -------------------------------
campaign ns 60 '{"name": "nsga2", "seed": 3, "population": 8}'
run_campaign ns ns2.log
grep -q "state restored, 0 results replayed" "$T/ns2.log" || fail "state not restored on resume"
check_complete ns 60
ok "resumed nsga2 campaign restored its state and went on to 60"

# ---- a state that does not fit: refused, the search goes on from the replayed results ---------
cdb ns "update policy_state set state_json = '{\"layers\": \"9\"}' where campaign_id = :c"
campaign ns 70 '{"name": "nsga2", "seed": 3, "population": 8}'
run_campaign ns ns3.log
grep -q "does not fit this campaign (policy state: key \"layers\"" "$T/ns3.log" ||
  fail "a bad state was not reported"
grep -q "60 results replayed" "$T/ns3.log" || fail "results not replayed after a bad state"
check_complete ns 70
ok "a state that does not fit is refused with its reason; 70 evaluations"

# ---- HAQ ----------------------------------------------------------------------------------------
campaign hq 30 '{"name": "haq", "seed": 4, "warmup": 8}' \
  ', "hypervolume": {"reference": {"accuracy": 0.5}}'
run_campaign hq hq.log
check_complete hq 30
[ "$(cdb hq "select policy from policy_state where campaign_id = :c")" = haq ] ||
  fail "no saved haq state"
ok "haq: 30 evaluations, state saved"

# ---- sensitivity seeding, then NSGA-II ---------------------------------------------------------
campaign sd 30 '{"name": "nsga2", "seed": 5, "seed_from": "sensitivity"}' \
  ', "sensitivity": {"eval_count": 100}'
run_campaign sd sd.log
check_complete sd 30
grep -q "sensitivity seeding: up to [0-9]* seeds from 1 agent table(s), then nsga2" "$T/sd.log" ||
  fail "the seeder did not get the sensitivity table"
n_seeds=$(cdb sd "select json_extract(state_json, '\$.n_seeds') from policy_state
                  where campaign_id = :c")
[ "$n_seeds" -ge 3 ] || fail "only $n_seeds seeds"
[ "$(cdb sd "select count(*) from sensitivity where campaign_id = :c")" -gt 0 ] ||
  fail "no sensitivity rows"
[ "$(cdb sd "select policy from policy_state where campaign_id = :c")" = sensitivity ] ||
  fail "no saved seeder state"
ok "seeded from sensitivity ($n_seeds seeds), handed over to nsga2"
