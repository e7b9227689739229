#!/usr/bin/env bash
# Leases: a job slower than its lease fails that attempt with ELEASE and is re-queued; the late
# RESULT that follows is ignored, never counted. Tags: an agent lacking a campaign tag gets no
# job. With max_attempts 2 every config ends as a failed evaluation with its error.
source "$(dirname "$0")/lib.sh"
write_config lease 4 '"sim_delay_ms": 700' '"heartbeat_ms": 100, "lease_ms": 300, "max_attempts": 2, "tags": ["fast"]'
start_searcher "$T/lease.json" "$T/searcher.log" --bind 'tcp://127.0.0.1:*'
ep=$(wait_endpoint "$T/searcher.log")
"$BS_BIN/bitscout-agent" --connect "$ep" --name tagged --tags fast,x86 --cache-dir "$T/cache/t" \
  > "$T/agent-tagged.log" 2>&1 &
PIDS+=("$!")
"$BS_BIN/bitscout-agent" --connect "$ep" --name untagged --cache-dir "$T/cache/u" \
  > "$T/agent-untagged.log" 2>&1 &
PIDS+=("$!")
wait_exit "$SEARCHER_PID" 120; rc=$EXIT_RC
[ "$rc" -eq 0 ] || fail "searcher exited with $rc"
check_complete lease 4
[ "$(db "select count(*) from evaluations where status = 'failed' and error_code = 'ELEASE' and attempts = 2")" -eq 4 ] \
  || fail "expected 4 evaluations failed with ELEASE after 2 attempts: $(db 'select status, error_code, attempts from evaluations')"
[ "$(db "select count(*) from attempts where outcome = 'lease_expired'")" -eq 8 ] || fail "expected 8 expired attempts"
grep -q 'late result for job' "$T/searcher.log" || fail "no late result was seen and ignored"
grep -q 'untagged joined.*not used: it lacks a campaign tag' "$T/searcher.log" || fail "untagged agent not refused"
[ "$(db "select count(*) from attempts a join agents g on g.id = a.agent_id where g.name = 'untagged'")" -eq 0 ] \
  || fail "the untagged agent got a job"
ok "expired leases re-queued then stored as failed; late results ignored; tags respected"
