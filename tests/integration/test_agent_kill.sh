#!/usr/bin/env bash
# kill -9 of one agent mid-campaign: its job goes back to the queue and the campaign still
# finishes with every budgeted evaluation and no duplicates.
source "$(dirname "$0")/lib.sh"
write_config killagent 50 '"sim_delay_ms": 150'
start_searcher "$T/killagent.json" "$T/searcher.log" --bind 'tcp://127.0.0.1:*'
ep=$(wait_endpoint "$T/searcher.log")
start_agent "$ep" a1; start_agent "$ep" a2; start_agent "$ep" a3; victim=$AGENT_PID
wait_evals 10 60
kill -9 "$victim"
ok "killed agent a3 after $(evals) evaluations"
wait_exit "$SEARCHER_PID" 120; rc=$EXIT_RC
[ "$rc" -eq 0 ] || fail "searcher exited with $rc"
check_complete killagent 50
grep -q 'agent a3 .* dropped: silent past its liveness' "$T/searcher.log" || fail "a3 not dropped"
lost=$(db "select count(*) from attempts where outcome = 'agent_lost'")
ok "campaign complete: 50 evaluations, no duplicates, $lost job(s) requeued from the lost agent"
[ "$(db "select count(*) from evaluations where status = 'ok'")" -eq 50 ] || fail "failed evals"
