#!/usr/bin/env bash
# bench/run.sh - the engine's latency beside ONNX Runtime's, on the same models, in one run.
#
# Builds bench_engine (RelWithDebInfo, in its own build directory), installs onnxruntime-node
# into bench/ort/ if it is absent (npm, --ignore-scripts: the tarball carries the linux x64
# library), then times both at one thread on each model, in alternating rounds so that both see
# the same machine load, and prints a table: the median over rounds of each side's median
# latency, the ratio engine/ORT, the same from each side's best round (a quiet-machine figure:
# on a shared machine a neighbour on the same core slows single rounds by up to ~1.6x), and the
# issue's goal for the model (MobileNet: within 1.2x of ONNX Runtime; the small bundled model:
# faster), judged on the median ratio. The outputs are cross-checked (max_abs_diff
# of output 0 on the same input). Without node/npm or the package, ORT is skipped with a
# message and the engine figures are still printed.
#
#   bench/run.sh [--runs N] [--warmup N] [--rounds R] [--profile] [MODEL.onnx...]
#
# Defaults: 200 runs, 20 warm-up runs, 5 rounds, models/fmnist-cnn.onnx and
# models/mobilenetv2-096.onnx. --profile adds per-op-type breakdowns of both (bench_engine
# --profile, ort_bench.js --profile).
# Environment: BS_BENCH_BUILD (build directory, default build-bench), BS_BENCH_CFLAGS (extra
# CMAKE_C_FLAGS for that build), BS_JOBS (parallel build jobs, default 2).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BS_BENCH_BUILD:-$ROOT/build-bench}
RUNS=200
WARMUP=20
ROUNDS=5
PROFILE=0
MODELS=()
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --profile) PROFILE=1; shift ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) MODELS+=("$1"); shift ;;
    esac
done
[ ${#MODELS[@]} -gt 0 ] ||
    MODELS=("$ROOT/models/fmnist-cnn.onnx" "$ROOT/models/mobilenetv2-096.onnx")

echo "== build bench_engine ($BUILD, RelWithDebInfo)"
mkdir -p "$BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBS_SANITIZE=OFF -DBS_FUZZ=OFF \
    -DCMAKE_C_FLAGS="${BS_BENCH_CFLAGS:-}" >"$BUILD/bench-cmake.log" 2>&1 ||
    { cat "$BUILD/bench-cmake.log" >&2; echo "run.sh: cmake configure failed" >&2; exit 1; }
cmake --build "$BUILD" --target bench_engine -j"${BS_JOBS:-2}" >"$BUILD/bench-build.log" 2>&1 ||
    { tail -40 "$BUILD/bench-build.log" >&2; echo "run.sh: build failed" >&2; exit 1; }
ENGINE=$BUILD/bench_engine

# ONNX Runtime: bench/ort/node_modules/onnxruntime-node, installed on first use.
ORT_DIR=$ROOT/bench/ort
ORT_PKG=$ORT_DIR/node_modules/onnxruntime-node
ORT=1
if ! command -v node >/dev/null 2>&1; then
    echo "== ONNX Runtime skipped: node is not installed (Debian: apt-get install nodejs npm)"
    ORT=0
elif [ ! -d "$ORT_PKG" ]; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "== ONNX Runtime skipped: npm is not installed, and bench/ort has no node_modules"
        ORT=0
    else
        echo "== installing onnxruntime-node into bench/ort (npm, --ignore-scripts)"
        if ! (cd "$ORT_DIR" && { npm ci --ignore-scripts --no-audit --no-fund ||
                                 npm install --ignore-scripts --no-audit --no-fund; }) >&2; then
            echo "== ONNX Runtime skipped: npm could not install onnxruntime-node"
            ORT=0
        fi
    fi
fi
if [ $ORT = 1 ]; then
    arch=$(node -p 'process.platform + "/" + process.arch')
    if ! ls "$ORT_PKG"/bin/napi-v*/"$arch"/onnxruntime_binding.node >/dev/null 2>&1; then
        echo "== ONNX Runtime skipped: onnxruntime-node ships no native binding for $arch"
        ORT=0
    fi
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "== load average before: $(load) ($(nproc) CPUs); $ROUNDS rounds x $RUNS runs"
[ $ORT = 1 ] && echo "== onnxruntime-node $(node -p "require('$ORT_PKG/package.json').version")"

# key=value field of a result line
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p" | head -1; }

status=0
for r in $(seq 1 "$ROUNDS"); do
    for m in "${MODELS[@]}"; do
        name=$(basename "$m" .onnx)
        line=$("$ENGINE" --runs "$RUNS" --warmup "$WARMUP" --dump "$TMP" "$m" | head -1) ||
            true
        echo "[round $r] $line"
        echo "$line" >>"$TMP/$name.engine"
        case "$line" in *error=*) status=1; continue ;; esac
        if [ $ORT = 1 ]; then
            shape=$(field "$line" input)
            oline=$(node "$ROOT/bench/ort_bench.js" --runs "$RUNS" --warmup "$WARMUP" \
                --shape "$shape" --compare "$TMP" "$m" 2>&1 | tail -1) || true
            echo "[round $r] $oline"
            echo "$oline" >>"$TMP/$name.ort"
        fi
    done
done

if [ $PROFILE = 1 ]; then
    echo
    echo "== engine per-op-type profile"
    "$ENGINE" --runs "$RUNS" --warmup "$WARMUP" --profile "${MODELS[@]}" | grep '^profile' || true
    if [ $ORT = 1 ]; then
        echo "== ONNX Runtime per-op-type profile (its own profiler)"
        for m in "${MODELS[@]}"; do
            shape=$(field "$(tail -1 "$TMP/$(basename "$m" .onnx).engine")" input)
            node "$ROOT/bench/ort_bench.js" --runs "$RUNS" --warmup "$WARMUP" --profile \
                ${shape:+--shape "$shape"} "$m" | grep '^ort-profile' || true
        done
    fi
fi

# median / minimum of the per-round medians
rounds() { sed -n 's/.* median_ms=\([0-9.]*\).*/\1/p' "$1" 2>/dev/null | sort -g; }
med() { rounds "$1" | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]}'; }
best() { rounds "$1" | head -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

echo
echo "== load average after: $(load)"
printf '%-18s %10s %10s %10s %11s  %-28s %s\n' model engine_ms ort_ms engine/ort best_rounds \
    goal check
for m in "${MODELS[@]}"; do
    name=$(basename "$m" .onnx)
    e=$(med "$TMP/$name.engine")
    o=$( [ $ORT = 1 ] && med "$TMP/$name.ort" || true)
    diff=$( [ -f "$TMP/$name.ort" ] && tail -1 "$TMP/$name.ort" | tr ' ' '\n' |
            sed -n 's/^max_abs_diff=//p' || true)
    case "$name" in
    mobilenet*) goal="<= 1.2x ORT"; lim=1.2 ;;
    *) goal="faster than ORT"; lim=1.0 ;;
    esac
    if [ -n "$e" ] && [ -n "$o" ]; then
        r=$(ratio "$e" "$o")
        rb=$(ratio "$(best "$TMP/$name.engine")" "$(best "$TMP/$name.ort")")
        met=$(awk -v x="$r" -v l="$lim" -v s="$goal" 'BEGIN {
            ok = (s ~ /faster/) ? (x < l) : (x <= l); print (ok ? "met" : "NOT met")}')
        printf '%-18s %10s %10s %9sx %10sx  %-28s %s\n' "$name" "$e" "$o" "$r" "$rb" \
            "$goal: $met" "max_abs_diff=${diff:-?}"
    else
        printf '%-18s %10s %10s %10s %11s  %-28s\n' "$name" "${e:-error}" "${o:-skipped}" - - \
            "$goal"
    fi
done
exit $status
