#!/usr/bin/env bash
# bench/precision.sh - latency per layer and per model at each precision, one thread, beside ONNX
# Runtime running the same models (fp32, and quantized the same way: the QDQ model `bitscout
# export` writes), all in one run (issue 4, "Speed").
#
# For each model: bench_engine at fp32 (*=w32a32), w16a32, w8a8, w4a8, w2a8 and w4a32 with
# --layers (each weight layer timed alone, median over the runs) and the whole model; int8
# activations are calibrated (min-max) on 16 synthetic inputs, which bench_engine also writes as
# an .npy so that `bitscout export` calibrates the exported w8a8 model on exactly the same
# samples; ONNX Runtime (bench/ort_bench.js, as in bench/run.sh) times the fp32 model and that
# QDQ model. Engine and ORT alternate for --rounds rounds and each figure is the median of the
# per-round medians. Then the issue's goals are checked and printed:
#   - w8a8 at least 2x faster than fp32 on the convolution layers (sum over Conv layers);
#   - w4a8 no slower than w8a8 (whole model);
#   - the whole model at w8a8 no slower than ONNX Runtime on the exported w8a8 QDQ model.
# Without node/npm or the package, ONNX Runtime is skipped with a message.
#
#   bench/precision.sh [--runs N] [--warmup N] [--rounds R] [MODEL.onnx...]
# Defaults: 200 runs, 20 warm-up runs, 3 rounds, the two bundled models.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BS_BENCH_BUILD:-$ROOT/build-bench}
RUNS=200
WARMUP=20
ROUNDS=3
MODELS=()
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "precision.sh: unknown option $1" >&2; exit 2 ;;
    *) MODELS+=("$1"); shift ;;
    esac
done
[ ${#MODELS[@]} -gt 0 ] ||
    MODELS=("$ROOT/models/fmnist-cnn.onnx" "$ROOT/models/mobilenetv2-096.onnx")
SPECS=("*=w32a32" "*=w16a32" "*=w8a8" "*=w4a8" "*=w2a8" "*=w4a32")

echo "== build bench_engine and bitscout ($BUILD, RelWithDebInfo)"
mkdir -p "$BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBS_SANITIZE=OFF -DBS_FUZZ=OFF \
    >"$BUILD/bench-cmake.log" 2>&1 ||
    { cat "$BUILD/bench-cmake.log" >&2; echo "precision.sh: cmake failed" >&2; exit 1; }
cmake --build "$BUILD" --target bench_engine bitscout -j"${BS_JOBS:-2}" \
    >"$BUILD/bench-build.log" 2>&1 ||
    { tail -40 "$BUILD/bench-build.log" >&2; echo "precision.sh: build failed" >&2; exit 1; }
ENGINE=$BUILD/bench_engine

ORT=1
ORT_PKG=$ROOT/bench/ort/node_modules/onnxruntime-node
if ! command -v node >/dev/null 2>&1; then
    echo "== ONNX Runtime skipped: node is not installed"; ORT=0
elif [ ! -d "$ORT_PKG" ]; then
    if command -v npm >/dev/null 2>&1 &&
        (cd "$ROOT/bench/ort" && npm ci --ignore-scripts --no-audit --no-fund) >&2; then :
    else echo "== ONNX Runtime skipped: onnxruntime-node could not be installed"; ORT=0; fi
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p" | head -1; }
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"

for i in "${!MODELS[@]}"; do # absolute paths: the campaign files below live in $TMP
    MODELS[$i]=$(cd "$(dirname "${MODELS[$i]}")" && pwd)/$(basename "${MODELS[$i]}")
done
for m in "${MODELS[@]}"; do
    name=$(basename "$m" .onnx)
    # the calibration samples, and the exported w8a8 QDQ model calibrated on them
    "$ENGINE" --runs 1 --warmup 0 --precision '*=w8a8' --calib-out "$TMP/$name.calib.npy" "$m" \
        >/dev/null
    cat >"$TMP/$name.json" <<JSON
{"name": "$name-bench", "model": "$m",
 "data": {"eval": {"images": "$TMP/$name.calib.npy"},
          "calibration": {"images": "$TMP/$name.calib.npy", "count": 16},
          "preprocess": {"scale": 1.0}},
 "search_space": [{"layers": "*", "weights": ["int8"], "activations": ["int8"]}],
 "objectives": [{"metric": "accuracy", "goal": "max"}],
 "quantization": {"weights": "mse", "activations": "minmax"}}
JSON
    if ! "$BUILD/bitscout" export --config "$TMP/$name.json" --precision '*=w8a8' \
        --out "$TMP/$name.w8a8.onnx" >"$TMP/$name.export.log" 2>&1; then
        echo "== export of $name failed: $(tail -1 "$TMP/$name.export.log")"
    fi
    for r in $(seq 1 "$ROUNDS"); do
        for s in "${SPECS[@]}"; do
            tag=${s#\*=}
            "$ENGINE" --runs "$RUNS" --warmup "$WARMUP" --precision "$s" --layers "$m" \
                >"$TMP/out" || true
            head -1 "$TMP/out" >>"$TMP/$name.$tag.model"
            grep '^layer' "$TMP/out" >>"$TMP/$name.$tag.layers" || true
        done
        if [ $ORT = 1 ]; then
            shape=$(field "$(tail -1 "$TMP/$name.w32a32.model")" input)
            node "$ROOT/bench/ort_bench.js" --runs "$RUNS" --warmup "$WARMUP" --shape "$shape" \
                "$m" 2>&1 | tail -1 >>"$TMP/$name.ort-fp32" || true
            [ -f "$TMP/$name.w8a8.onnx" ] &&
                { node "$ROOT/bench/ort_bench.js" --runs "$RUNS" --warmup "$WARMUP" \
                    --shape "$shape" "$TMP/$name.w8a8.onnx" 2>&1 | tail -1 \
                    >>"$TMP/$name.ort-w8a8" || true; }
        fi
    done
done

# median of the values of a key=value field over the lines of a file
medf() { sed -n "s/.* $2=\([0-9.]*\).*/\1/p" "$1" 2>/dev/null | sort -g |
         awk '{v[NR]=$1} END {if (NR) printf "%.4f", v[int((NR+1)/2)]; else printf "-"}'; }
# median over rounds of one layer's ms
medl() { grep " node=$2 " "$1" 2>/dev/null | sed -n 's/.* ms=\([0-9.]*\).*/\1/p' | sort -g |
         awk '{v[NR]=$1} END {if (NR) printf "%.4f", v[int((NR+1)/2)]; else printf "-"}'; }

echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
status=0
for m in "${MODELS[@]}"; do
    name=$(basename "$m" .onnx)
    echo
    echo "== $name: median latency in ms, one thread ($ROUNDS rounds x $RUNS runs)"
    printf '%-14s %-10s' layer op
    for s in "${SPECS[@]}"; do printf ' %9s' "${s#\*=}"; done
    printf ' %9s\n' w8a8/fp32
    conv32=0; conv8=0
    for node in $(sed -n 's/.* node=\([^ ]*\) .*/\1/p' "$TMP/$name.w32a32.layers" | awk '!s[$0]++'); do
        op=$(grep -m1 " node=$node " "$TMP/$name.w32a32.layers" | sed -n 's/.* op=\([^ ]*\).*/\1/p')
        printf '%-14s %-10s' "$node" "$op"
        for s in "${SPECS[@]}"; do printf ' %9s' "$(medl "$TMP/$name.${s#\*=}.layers" "$node")"; done
        a=$(medl "$TMP/$name.w32a32.layers" "$node"); b=$(medl "$TMP/$name.w8a8.layers" "$node")
        awk -v a="$a" -v b="$b" 'BEGIN {printf(" %8.2fx\n", (b > 0 ? a / b : 0))}'
        case "$op" in Conv*)
            conv32=$(awk -v x="$conv32" -v y="$a" 'BEGIN {print x + y}')
            conv8=$(awk -v x="$conv8" -v y="$b" 'BEGIN {print x + y}') ;;
        esac
    done
    printf '%-25s' "whole model"
    for s in "${SPECS[@]}"; do printf ' %9s' "$(medf "$TMP/$name.${s#\*=}.model" median_ms)"; done
    echo
    printf '%-25s' "weight bytes"
    for s in "${SPECS[@]}"; do
        printf ' %9s' "$(sed -n 's/.* weight_bytes=\([0-9]*\).*/\1/p' "$TMP/$name.${s#\*=}.model" | head -1)"
    done
    echo
    e8=$(medf "$TMP/$name.w8a8.model" median_ms); e4=$(medf "$TMP/$name.w4a8.model" median_ms)
    o32=$(medf "$TMP/$name.ort-fp32" median_ms); o8=$(medf "$TMP/$name.ort-w8a8" median_ms)
    echo "onnxruntime fp32 ${o32} ms, exported w8a8 QDQ ${o8} ms (engine fp32 $(medf "$TMP/$name.w32a32.model" median_ms), w8a8 $e8)"
    verdict() { if [ "$1" = 1 ]; then echo met; else echo "NOT met"; fi; }
    g1=$(awk -v a="$conv32" -v b="$conv8" 'BEGIN {print (b > 0 && a / b >= 2) ? 1 : 0}')
    echo "goal: Conv layers w8a8 >= 2x faster than fp32: $(awk -v a="$conv32" -v b="$conv8" 'BEGIN {printf("%.2fx", (b > 0 ? a / b : 0))}') $(verdict "$g1")"
    [ "$g1" = 1 ] || status=1
    g2=$(awk -v a="$e4" -v b="$e8" 'BEGIN {print (a <= b * 1.02) ? 1 : 0}')
    echo "goal: w4a8 no slower than w8a8 (within 2% noise): $e4 vs $e8 ms $(verdict "$g2")"
    [ "$g2" = 1 ] || status=1
    if [ "$o8" != "-" ]; then
        g3=$(awk -v a="$e8" -v b="$o8" 'BEGIN {print (a <= b * 1.02) ? 1 : 0}')
        echo "goal: w8a8 no slower than ONNX Runtime on the same QDQ model: $e8 vs $o8 ms $(verdict "$g3")"
        [ "$g3" = 1 ] || status=1
    else
        echo "goal: w8a8 vs ONNX Runtime: not measured (no ORT or no exported model)"
    fi
done
exit $status
