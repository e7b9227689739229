#!/usr/bin/env bash
# Bad command lines and bad campaign files: clear errors, right exit codes, no crash.
source "$(dirname "$0")/lib.sh"
set +e
"$BS_BIN/bitscout" search > "$T/o.txt" 2>&1; [ $? -eq 2 ] || fail "missing CONFIG should exit 2"
"$BS_BIN/bitscout" search x.json --bogus 1 > "$T/o.txt" 2>&1; [ $? -eq 2 ] || fail "unknown flag"
grep -q -- '--bogus' "$T/o.txt" || fail "unknown flag not named"
"$BS_BIN/bitscout" search x.json --local-agents -3 > "$T/o.txt" 2>&1; [ $? -eq 2 ] || fail "bad number"
"$BS_BIN/bitscout" search "$T/nope.json" --db "$T/r.db" > "$T/o.txt" 2>&1; [ $? -eq 1 ] || fail "missing file"
grep -q 'nope.json' "$T/o.txt" || fail "missing config not named"
echo '{"name": "x", "bogus": 1}' > "$T/bad.json"
"$BS_BIN/bitscout" search "$T/bad.json" --db "$T/r.db" > "$T/o.txt" 2>&1; [ $? -eq 1 ] || fail "bad config"
grep -q 'bad.json' "$T/o.txt" || fail "bad config: file not named: $(cat "$T/o.txt")"
write_config c1 5
sed -i 's/"latency_p90_ms"/"latncy"/' "$T/c1.json"
"$BS_BIN/bitscout" search "$T/c1.json" --db "$T/r.db" > "$T/o.txt" 2>&1; [ $? -eq 1 ] || fail "bad metric"
grep -q 'objectives\[1\].metric' "$T/o.txt" || fail "bad metric key not named: $(cat "$T/o.txt")"
write_config c2 5
sed -i 's/"layers": "\*"/"layers": "conv9"/' "$T/c2.json"
"$BS_BIN/bitscout" search "$T/c2.json" --db "$T/r.db" > "$T/o.txt" 2>&1; [ $? -eq 1 ] || fail "bad layer"
grep -q 'conv1' "$T/o.txt" || fail "unmatched layer error does not list layers: $(cat "$T/o.txt")"
"$BS_BIN/bitscout" query evals --db "$T/none.db" > "$T/o.txt" 2>&1; [ $? -ne 0 ] || fail "query missing db"
grep -q 'none.db' "$T/o.txt" || fail "missing db not named"
"$BS_BIN/bitscout" query bogus > "$T/o.txt" 2>&1; [ $? -eq 2 ] || fail "query bogus"
"$BS_BIN/bitscout-agent" --bogus > "$T/o.txt" 2>&1; [ $? -eq 2 ] || fail "agent bogus flag"
"$BS_BIN/bitscout" --version | grep -q bitscout || fail "--version"
# Two agents with one name and cache directory would share an id: the second one refuses.
"$BS_BIN/bitscout-agent" --connect tcp://127.0.0.1:9 --name twin --cache-dir "$T/c" > "$T/a1.log" 2>&1 &
PIDS+=("$!")
sleep 0.5
"$BS_BIN/bitscout-agent" --connect tcp://127.0.0.1:9 --name twin --cache-dir "$T/c" > "$T/o.txt" 2>&1
[ $? -eq 1 ] || fail "second agent with the same name should exit 1"
grep -q "another bitscout-agent named 'twin'" "$T/o.txt" || fail "no duplicate-name message: $(cat "$T/o.txt")"
ok "command-line and config errors"
