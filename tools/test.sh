#!/usr/bin/env bash
# Sets up and runs every test of bitscout: the README's test command, and what CI runs.
#   1. installs the Debian packages (tools/install-deps.sh)
#   2. builds with gcc (-Werror) and runs all unit and integration tests (ctest)
#   3. builds with clang + AddressSanitizer + UndefinedBehaviorSanitizer and runs them again
#   4. builds the libFuzzer targets and runs each for a bounded time (BS_FUZZ_SECONDS, 20 s)
# Usage: tools/test.sh [--quick]   (--quick: gcc build and its tests only)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
bash tools/install-deps.sh

quick=0
[ "${1:-}" = "--quick" ] && quick=1
JOBS=${JOBS:-2}
fail=0
ok_n=0   # suites passed / failed, for the closing "suites: N passed, N failed" line
bad_n=0

run_suite() { # name, build dir, cmake args...
  local name=$1 dir=$2
  shift 2
  echo "=== $name: configure and build ($dir)"
  cmake -S "$ROOT" -B "$dir" "$@" >/dev/null
  cmake --build "$dir" -j"$JOBS" >/dev/null
  echo "=== $name: tests"
  if (cd "$dir" && ctest --output-on-failure -j1); then ok_n=$((ok_n + 1))
  else fail=1; bad_n=$((bad_n + 1)); fi
}

run_suite "gcc" build-test-gcc -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ $quick -eq 0 ]; then
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  run_suite "clang+asan+ubsan" build-test-asan -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
    -DBS_SANITIZE=ON
  echo "=== fuzz: build"
  cmake -S "$ROOT" -B build-test-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
    -DBS_FUZZ=ON >/dev/null
  cmake --build build-test-fuzz -j"$JOBS" --target fuzz_proto fuzz_config fuzz_model fuzz_npy \
    fuzz_graph fuzz_policy_state >/dev/null
  secs=${BS_FUZZ_SECONDS:-20}
  for t in proto config model npy graph policy_state; do
    echo "=== fuzz: $t for ${secs}s"
    mkdir -p "build-test-fuzz/corpus-$t"
    extra=()  # read-only seed corpora
    [ $t = model ] && extra=(models)
    [ $t = graph ] && for d in test_conv_with_strides_padding test_gemm_default_no_bias \
        test_maxpool_2d_pads; do extra+=("/usr/share/libonnx-testdata/data/node/$d"); done
    if build-test-fuzz/fuzz_$t -max_total_time="$secs" -rss_limit_mb=2048 \
        "build-test-fuzz/corpus-$t" "tests/fuzz/corpus/$t" "${extra[@]}" \
        > "build-test-fuzz/fuzz_$t.log" 2>&1
    then echo "fuzz_$t: no crash in ${secs}s ($(grep -c '' build-test-fuzz/fuzz_$t.log) log lines)"
      ok_n=$((ok_n + 1))
    else echo "fuzz_$t: FAILED"; tail -40 "build-test-fuzz/fuzz_$t.log"; fail=1
      bad_n=$((bad_n + 1))
    fi
  done
fi
echo "=== arm64: kernel tests under qemu-aarch64 (tools/cross-arm64.sh)"
mkdir -p build-cross-arm64
if bash tools/cross-arm64.sh > build-cross-arm64/cross.log 2>&1; then
  tail -1 build-cross-arm64/cross.log
  ok_n=$((ok_n + 1))
else
  tail -40 build-cross-arm64/cross.log; fail=1
  bad_n=$((bad_n + 1))
fi
if [ $fail -ne 0 ]; then
  echo "tools/test.sh: FAILED"
  echo "suites: $ok_n passed, $bad_n failed"
  exit 1
fi
echo "tools/test.sh: all suites passed"
echo "suites: $ok_n passed, $bad_n failed"
