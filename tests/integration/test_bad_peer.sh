#!/usr/bin/env bash
# A peer sending garbage gets an ERROR for each bad message, and the agents beside it finish
# the campaign undisturbed.
source "$(dirname "$0")/lib.sh"
write_config garbage 30 '"sim_delay_ms": 30'
start_searcher "$T/garbage.json" "$T/searcher.log" --bind 'tcp://127.0.0.1:*'
ep=$(wait_endpoint "$T/searcher.log")
start_agent "$ep" a1; start_agent "$ep" a2
wait_evals 3 60
"$BS_BIN/bs-badpeer" "$ep" > "$T/badpeer.log" 2>&1 || { cat "$T/badpeer.log"; fail "bs-badpeer"; }
cat "$T/badpeer.log"
wait_exit "$SEARCHER_PID" 120; rc=$EXIT_RC
[ "$rc" -eq 0 ] || fail "searcher exited with $rc"
check_complete garbage 30
ok "campaign complete beside the bad peer"
