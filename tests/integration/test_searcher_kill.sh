#!/usr/bin/env bash
# kill -9 of the searcher mid-campaign; agents keep running and reconnect; a rerun on the same
# port resumes: nothing stored is lost or evaluated again, and the budget counts the total.
source "$(dirname "$0")/lib.sh"
write_config resume 60 '"sim_delay_ms": 60'
start_searcher "$T/resume.json" "$T/searcher1.log" --bind 'tcp://127.0.0.1:*'
ep=$(wait_endpoint "$T/searcher1.log")
start_agent "$ep" a1; start_agent "$ep" a2; start_agent "$ep" a3
wait_evals 20 60
kill -9 "$SEARCHER_PID"
wait "$SEARCHER_PID" 2>/dev/null || true
before=$(evals)
db "select config_id || ':' || accuracy from evaluations order by config_id" > "$T/before.txt"
ok "killed the searcher with $before evaluations stored"
sleep 0.5
start_searcher "$T/resume.json" "$T/searcher2.log" --bind "$ep"
wait_exit "$SEARCHER_PID" 120; rc=$EXIT_RC
[ "$rc" -eq 0 ] || fail "resumed searcher exited with $rc"
check_complete resume 60
grep -q 'resuming campaign resume' "$T/searcher2.log" || fail "no resume message"
# Everything stored before the kill is still there, unchanged.
db "select config_id || ':' || accuracy from evaluations order by config_id" > "$T/after.txt"
missing=$(comm -23 "$T/before.txt" "$T/after.txt" | wc -l)
[ "$missing" -eq 0 ] || fail "$missing evaluations changed or vanished"
ok "resumed: 60 evaluations in total, the $before from before the kill unchanged, no duplicates"
