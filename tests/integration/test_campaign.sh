#!/usr/bin/env bash
# A searcher and three local agents finish a 50-evaluation campaign; the Pareto front is
# queryable in every format and every row is labelled simulated.
source "$(dirname "$0")/lib.sh"
write_config demo 50
start_searcher "$T/demo.json" "$T/searcher.log" --bind 'tcp://127.0.0.1:*' --local-agents 3
wait_exit "$SEARCHER_PID" 120; rc=$EXIT_RC
[ "$rc" -eq 0 ] || fail "searcher exited with $rc"
check_complete demo 50
ok "50 evaluations, no duplicates"
[ "$(db "select status from campaigns where name='demo'")" = done ] || fail "status not done"
[ "$(db "select count(*) from results where simulated = 1")" -eq 50 ] || fail "rows not simulated"
[ "$(db "select count(distinct agent_id) from evaluations")" -eq 3 ] || fail "not all 3 agents worked"
front=$(db "select count(*) from pareto")
[ "$front" -ge 1 ] || fail "empty front"
[ "$(db "select count(*) from agents")" -eq 3 ] || fail "expected 3 agents"
ok "front has $front members; 3 agents recorded"
# The front is what it should be: no stored result dominates a member.
dominated=$(db "select count(*) from pareto p join results r on r.status = 'ok' and
  r.accuracy >= p.accuracy and r.latency_p90_ms <= p.latency_p90_ms and
  (r.accuracy > p.accuracy or r.latency_p90_ms < p.latency_p90_ms)")
[ "$dominated" -eq 0 ] || fail "$dominated front members are dominated"
"$BS_BIN/bitscout" query pareto --db "$T/results.db" > "$T/pareto.txt"
grep -q 'simulated' "$T/pareto.txt" || fail "table output lacks the simulated note"
"$BS_BIN/bitscout" query pareto --db "$T/results.db" --format csv > "$T/pareto.csv"
[ "$(($(wc -l < "$T/pareto.csv") - 1))" -eq "$front" ] || fail "csv rows != front size"
"$BS_BIN/bitscout" query evals --db "$T/results.db" --format json > "$T/evals.json"
[ "$(grep -o '"eval_id"' "$T/evals.json" | wc -l)" -eq 50 ] || fail "json output: $(head -c 300 "$T/evals.json")"
[ "$(head -c 1 "$T/evals.json")" = "[" ] || fail "json output is not an array"
"$BS_BIN/bitscout" query campaigns --db "$T/results.db" > "$T/campaigns.txt"
grep -q demo "$T/campaigns.txt" || fail "campaigns query"
"$BS_BIN/bitscout" query agents --db "$T/results.db" --format csv | grep -q local-1 || fail "agents query"
ok "query campaigns/agents/evals/pareto in table, csv and json"
# Rerunning a finished campaign evaluates nothing more.
start_searcher "$T/demo.json" "$T/searcher2.log" --bind 'tcp://127.0.0.1:*'
wait_exit "$SEARCHER_PID" 30; rc=$EXIT_RC
[ "$rc" -eq 0 ] || fail "rerun exited with $rc"
check_complete demo 50
ok "rerun of a finished campaign adds nothing"
