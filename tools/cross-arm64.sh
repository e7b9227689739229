#!/usr/bin/env bash
# Cross-builds the kernel tests (tests/unit/test_kernels.c, float, and test_qkernels.c,
# integer) for arm64 and runs them under qemu-aarch64, so that the NEON kernels are compared
# with the portable C reference on an arm64 CPU: what CI does for the arm64 paths, which no
# x86 machine would otherwise run.
#   1. installs the cross compiler and qemu-user from Debian (idempotent, like
#      tools/install-deps.sh: nothing to do and no network when they are present)
#   2. compiles each test statically with only what it needs: the kernels, the NEON files,
#      the thread pool, weight packing (bs_quant.c, with bs_tensor.c for its fp16 helpers
#      and bs_error.c for its messages), the test harness and the allocator. The
#      allocator's cJSON hook is satisfied by a two-line stub header and source generated
#      here, so the cross build needs no arm64 cJSON.
#   3. runs each under qemu-aarch64; prints their output (each ends "N passed, N failed")
#      and exits non-zero when a test fails.
# Usage: tools/cross-arm64.sh [TEST...]   (env: CROSS_CC, BS_TEST_TIMEOUT per test, default
# 300 s; BS_CROSS_TESTS, the test programs to run, default "test_kernels test_qkernels";
# TEST names are passed to each program)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/build-cross-arm64

PACKAGES=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -ne 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "cross-arm64: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

CC=${CROSS_CC:-aarch64-linux-gnu-gcc}
QEMU=$(command -v qemu-aarch64 || command -v qemu-aarch64-static || true)
if [ -z "$QEMU" ]; then
  echo "cross-arm64: qemu-aarch64 not found after installing qemu-user" >&2
  exit 1
fi

mkdir -p "$OUT/inc/cjson"
cat > "$OUT/inc/cjson/cJSON.h" <<'EOF'
/* cross-arm64.sh: the part of cJSON's API that common/bs_alloc.c uses. */
#include <stddef.h>
typedef struct cJSON_Hooks {
    void *(*malloc_fn)(size_t sz);
    void (*free_fn)(void *ptr);
} cJSON_Hooks;
void cJSON_InitHooks(cJSON_Hooks *hooks);
EOF
cat > "$OUT/cjson_stub.c" <<'EOF'
/* cross-arm64.sh: the kernel tests use no JSON, so installing hooks does nothing. */
#include <cjson/cJSON.h>
void cJSON_InitHooks(cJSON_Hooks *hooks) { (void)hooks; }
EOF

SRCS=(agents/engine/bs_kernels.c agents/engine/bs_kernels_neon.c agents/engine/bs_qkernels.c
  agents/engine/bs_qkernels_neon.c agents/engine/bs_quant.c agents/engine/bs_tensor.c
  agents/engine/bs_threadpool.c common/bs_alloc.c common/bs_error.c "$OUT/cjson_stub.c")
status=0
for t in ${BS_CROSS_TESTS:-test_kernels test_qkernels}; do
  echo "cross-arm64: building $t for arm64 with $CC"
  "$CC" -std=c11 -O2 -static -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
    -DBS_HAVE_NEON=1 -I agents/engine -I common -I tests/unit -I "$OUT/inc" \
    "tests/unit/$t.c" tests/unit/bs_test.c "${SRCS[@]}" -lpthread -lm -o "$OUT/$t"
  echo "cross-arm64: running $t under $(basename "$QEMU")"
  # pipefail: the pipeline's status is the test's
  BS_TEST_TIMEOUT=${BS_TEST_TIMEOUT:-300} "$QEMU" "$OUT/$t" "$@" 2>&1 | tee "$OUT/$t.log" ||
    status=1
done
exit $status
