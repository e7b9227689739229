#!/usr/bin/env bash
# SIGINT stops dispatch, waits for jobs in flight, marks the campaign interrupted and exits
# 130; a rerun with a larger --budget resumes and counts the total. Failures are data: with
# sim_fail_rate some configs fail on every attempt and are stored as failed evaluations.
source "$(dirname "$0")/lib.sh"
write_config intr 30 '"sim_delay_ms": 50, "sim_fail_rate": 0.2' '"heartbeat_ms": 200, "max_attempts": 2'
start_searcher "$T/intr.json" "$T/searcher1.log" --bind 'tcp://127.0.0.1:*' --local-agents 2
wait_evals 8 60
kill -INT "$SEARCHER_PID"
wait_exit "$SEARCHER_PID" 30; rc=$EXIT_RC
[ "$rc" -eq 130 ] || fail "interrupted searcher exited with $rc, expected 130"
[ "$(db "select status from campaigns")" = interrupted ] || fail "status not interrupted"
[ "$(db "select count(*) from evaluations e left join configs c on c.id = e.config_id where c.id is null")" -eq 0 ] || fail "orphan evaluations"
first=$(evals)
ok "interrupted cleanly with $first evaluations"
start_searcher "$T/intr.json" "$T/searcher2.log" --bind 'tcp://127.0.0.1:*' --local-agents 2 --budget 40
wait_exit "$SEARCHER_PID" 120; rc=$EXIT_RC
[ "$rc" -eq 0 ] || fail "resumed searcher exited with $rc"
check_complete intr 40
failed=$(db "select count(*) from evaluations where status = 'failed'")
[ "$failed" -ge 1 ] || fail "expected some failed evaluations with sim_fail_rate 0.2"
[ "$(db "select count(*) from evaluations where status='failed' and (error_code is null or attempts != 2)")" -eq 0 ] \
  || fail "failed evaluations lack their error or attempt count"
[ "$(db "select count(*) from attempts where outcome = 'error'")" -ge "$failed" ] || fail "attempts not logged"
ok "resumed to 40 evaluations; $failed stored as failed with their error after 2 attempts"
