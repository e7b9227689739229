#!/usr/bin/env bash
# `bitscout export`: command-line errors (each with its exit status and a message naming what
# is wrong, and no file left behind), then a tiny campaign (sim backend) whose stored
# evaluation is exported with --db/--eval and carries its assignment in the model's metadata.
# Where ONNX Runtime is installed (bench/ort/node_modules, see bench/README.md), the exported
# model is run by ONNX Runtime and compared with the engine at the same precision
# (`bitscout-agent run --precision`) on Fashion-MNIST test images: the all-w8a8 model with ORT's
# full optimizations (its fused QLinearConv / QGemm kernels) and the stored evaluation's
# assignment as a plain QDQ graph (optimizations off: ORT's own weight quantization of float
# weights behind a QDQ input would otherwise change w32a8 / w16a8 layers).
source "$(dirname "$0")/lib.sh"

CAL=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
[ -r "$CAL" ] || { echo "dataset-fashion-mnist not installed; skipped"; exit 0; }
X=$BS_BIN/bitscout

cat > "$T/tiny.json" <<JSON
{
  "name": "tiny",
  "model": "$BS_SRC/models/fmnist-cnn.onnx",
  "data": {
    "eval": {"images": "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
             "labels": "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz",
             "count": 20},
    "calibration": {"images": "$CAL", "count": 256},
    "preprocess": {"scale": 0.00392156862745098, "mean": [0.2860], "std": [0.3530]}
  },
  "search_space": [
    {"layers": "*", "weights": ["fp32", "fp16", "int8", "int4"], "activations": ["fp32", "int8"]}
  ],
  "objectives": [{"metric": "accuracy", "goal": "max"},
                 {"metric": "latency_p90_ms", "goal": "min"}],
  "policy": {"name": "random", "seed": 5},
  "budget": {"evaluations": 4},
  "measure": {"backend": "sim", "sim_delay_ms": 5},
  "quantization": {"weights": "mse", "activations": "minmax"}
}
JSON
# the same without calibration data
sed '/"calibration"/d' "$T/tiny.json" > "$T/nocal.json"

# expect STATUS TEXT CMD...: runs CMD, checks its exit status and that stderr has TEXT
expect() {
  local want=$1 text=$2 rc=0
  shift 2
  "$@" > "$T/out.txt" 2> "$T/err.txt" || rc=$?
  [ "$rc" -eq "$want" ] || fail "$* exited with $rc, expected $want: $(cat "$T/err.txt")"
  grep -qF -- "$text" "$T/err.txt" || fail "$*: stderr lacks \"$text\": $(cat "$T/err.txt")"
}

# ---- command-line errors -------------------------------------------------------------------
OUT=$T/m.q.onnx
expect 2 "missing --config" "$X" export
expect 2 "missing --out" "$X" export --config "$T/tiny.json" --precision '*=w8a8'
expect 2 "missing --precision SPEC or --db FILE --eval ID" "$X" export --config "$T/tiny.json" \
  --out "$OUT"
expect 2 "--eval needs --db" "$X" export --config "$T/tiny.json" --eval 1 --out "$OUT"
expect 2 "not both" "$X" export --config "$T/tiny.json" --precision '*=w8a8' --db x.db \
  --eval 1 --out "$OUT"
expect 2 "--eval \"x\"" "$X" export --config "$T/tiny.json" --db x.db --eval x --out "$OUT"
expect 2 "unknown option --bogus" "$X" export --bogus 1
expect 1 "'conv9' matches no layer; valid layer names: conv1 conv2 fc1 fc2" \
  "$X" export --config "$T/tiny.json" --precision 'conv9=w8a8' --out "$OUT"
expect 1 "'w9a8' for '*' is not a precision" "$X" export --config "$T/tiny.json" \
  --precision '*=w9a8' --out "$OUT"
expect 1 "data.calibration" "$X" export --config "$T/nocal.json" --precision 'fc1=w8a8' \
  --out "$OUT"
expect 1 "directory /nonexistent-dir does not exist" "$X" export --config "$T/tiny.json" \
  --precision '*=w8a32' --out /nonexistent-dir/m.onnx
expect 1 "no such database" "$X" export --config "$T/tiny.json" --db "$T/none.db" --eval 1 \
  --out "$OUT"
echo '{"name": "x"}' > "$T/nomodel.json"
expect 1 "nomodel.json: model: required key missing" "$X" export --config "$T/nomodel.json" \
  --precision '*=w8a8' --out "$OUT"
[ ! -e "$OUT" ] && [ ! -e "$OUT.tmp" ] || fail "a failed export left a file behind"
ok "usage and input errors: status 2 / 1, messages name the problem, no file written"

# ---- a tiny campaign, then export its evaluations --------------------------------------------
start_searcher "$T/tiny.json" "$T/searcher.log" --bind 'tcp://127.0.0.1:*' --local-agents 1
wait_exit "$SEARCHER_PID" 120
[ "$EXIT_RC" -eq 0 ] || fail "searcher exited with $EXIT_RC"
check_complete tiny 4
expect 1 "evaluation 999 not found in campaign 'tiny'" "$X" export --config "$T/tiny.json" \
  --db "$T/results.db" --eval 999 --out "$OUT"
expect 1 "no campaign named 'nope'" "$X" export --config "$T/tiny.json" --db "$T/results.db" \
  --campaign nope --eval 1 --out "$OUT"
ok "unknown evaluation and campaign are named"

id=$(db "select eval_id from results where campaign = 'tiny' and assignment like '%a8%'
         order by eval_id limit 1")
[ -n "$id" ] || id=$(db "select min(eval_id) from results where campaign = 'tiny'")
assign=$(db "select assignment from results where eval_id = $id")
"$X" export --config "$T/tiny.json" --db "$T/results.db" --eval "$id" --out "$OUT" \
  > "$T/export.log" 2>&1 || fail "export of evaluation $id: $(cat "$T/export.log")"
[ -s "$OUT" ] && [ ! -e "$OUT.tmp" ] || fail "no output, or a temporary file left"
grep -qF "precision $assign" "$T/export.log" || fail "export log: $(cat "$T/export.log")"
grep -aqF "$assign" "$OUT" || fail "the model's metadata lacks the assignment $assign"
grep -aqF "bitscout.precision" "$OUT" || fail "no bitscout.precision metadata"
ok "evaluation $id exported ($assign, $(stat -c %s "$OUT") bytes)"

# the campaign's model must be the one the campaign searched
cp "$BS_SRC/models/fmnist-cnn.onnx" "$T/other.onnx"
printf 'x' >> "$T/other.onnx"
sed "s|\"model\": \"[^\"]*\"|\"model\": \"$T/other.onnx\"|" "$T/tiny.json" > "$T/other.json"
expect 1 "export from the model the campaign ran on" "$X" export --config "$T/other.json" \
  --db "$T/results.db" --campaign tiny --eval "$id" --out "$T/o.onnx"
ok "a different model is refused"

# ---- ONNX Runtime against the engine ---------------------------------------------------------
ORT_DIR=$BS_SRC/bench/ort
if ! command -v node > /dev/null 2>&1 || [ ! -d "$ORT_DIR/node_modules/onnxruntime-node" ]; then
  echo "ONNX Runtime (bench/ort/node_modules) not installed; the ORT comparison is skipped"
  exit 0
fi
cat > "$T/ortcheck.js" <<'JS'
'use strict';
/* inputs IMAGES N DIR: DIR/x_i.npy, preprocessed Fashion-MNIST images;
 * run ORT_DIR MODEL N DIR LEVEL: DIR/o_i.npy, ONNX Runtime's outputs;
 * compare N DIR MIN_SQNR MIN_AGREE: DIR/o_i.npy against DIR/y_i.npy (the engine's). */
const fs = require('fs'), path = require('path'), zlib = require('zlib');
function npyWrite(file, shape, data) {
    let h = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}), }`;
    h += ' '.repeat((64 - ((11 + h.length) % 64)) % 64) + '\n';
    const head = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
    head.writeUInt16LE(h.length, 8);
    fs.writeFileSync(file, Buffer.concat([head, Buffer.from(h, 'latin1'),
        Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}
function npyRead(file) {
    const b = fs.readFileSync(file), v1 = b[6] === 1;
    const off = (v1 ? 10 : 12) + (v1 ? b.readUInt16LE(8) : b.readUInt32LE(8));
    const h = b.toString('latin1', v1 ? 10 : 12, off);
    if (!h.includes("'<f4'")) throw new Error(file + ': not float32');
    const shape = h.match(/'shape': \(([^)]*)\)/)[1].split(',').filter((s) => s.trim())
        .map(Number);
    const c = Buffer.from(b.subarray(off));
    return { shape, data: new Float32Array(c.buffer, c.byteOffset, c.length / 4) };
}
(async () => {
    const [mode, ...a] = process.argv.slice(2);
    if (mode === 'inputs') {
        const b = zlib.gunzipSync(fs.readFileSync(a[0]));
        const r = b.readUInt32BE(8), c = b.readUInt32BE(12);
        for (let i = 0; i < Number(a[1]); i++) {
            const x = new Float32Array(r * c);
            for (let k = 0; k < r * c; k++)
                x[k] = (b[16 + i * r * c + k] * Math.fround(1 / 255) - Math.fround(0.286)) /
                       Math.fround(0.353);
            npyWrite(path.join(a[2], `x_${i}.npy`), [1, 1, r, c], x);
        }
    } else if (mode === 'run') {
        const ort = require(path.join(a[0], 'node_modules', 'onnxruntime-node'));
        const s = await ort.InferenceSession.create(a[1], { intraOpNumThreads: 1,
            graphOptimizationLevel: a[4] });
        for (let i = 0; i < Number(a[2]); i++) {
            const x = npyRead(path.join(a[3], `x_${i}.npy`));
            const feed = { [s.inputNames[0]]: new ort.Tensor('float32', x.data, x.shape) };
            const y = (await s.run(feed))[s.outputNames[0]];
            npyWrite(path.join(a[3], `o_${i}.npy`), y.dims, y.data);
        }
    } else {
        let sig = 0, noise = 0, agree = 0;
        const am = (v) => v.reduce((bi, x, i) => (x > v[bi] ? i : bi), 0);
        for (let i = 0; i < Number(a[0]); i++) {
            const o = npyRead(path.join(a[1], `o_${i}.npy`)).data;
            const y = npyRead(path.join(a[1], `y_${i}.npy`)).data;
            for (let k = 0; k < y.length; k++) { sig += y[k] * y[k]; noise += (y[k] - o[k]) ** 2; }
            agree += am(o) === am(y);
        }
        const sqnr = noise ? 10 * Math.log10(sig / noise) : Infinity, ag = agree / Number(a[0]);
        console.log(`agreement=${ag.toFixed(4)} sqnr_db=${sqnr.toFixed(1)}`);
        process.exit(sqnr >= Number(a[2]) && ag >= Number(a[3]) ? 0 : 1);
    }
})().catch((e) => { console.error(e.stack || e.message); process.exit(2); });
JS
N=20
mkdir -p "$T/io"
node "$T/ortcheck.js" inputs /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz $N \
  "$T/io" || fail "could not write the input files"

# ort_check SPEC MODEL LEVEL: the engine at SPEC on the original vs ORT on MODEL
# Tolerance: SQNR >= 50 dB and the same top-1 on every sample (see tests/unit/test_export.c,
# s_compare: one-step requantization differences near rounding ties, float summation order).
ort_check() {
  local spec=$1 model=$2 level=$3
  for i in $(seq 0 $((N - 1))); do
    "$BS_BIN/bitscout-agent" run --config "$T/tiny.json" --precision "$spec" \
      --input "$T/io/x_$i.npy" --output "$T/io/y_$i.npy" --repeats 1 > "$T/run.log" 2>&1 ||
      fail "bitscout-agent run --precision $spec: $(cat "$T/run.log")"
  done
  node "$T/ortcheck.js" run "$ORT_DIR" "$model" $N "$T/io" "$level" > "$T/ort.log" 2>&1 ||
    fail "ONNX Runtime could not run $model: $(cat "$T/ort.log")"
  node "$T/ortcheck.js" compare $N "$T/io" 50 1.0 > "$T/cmp.log" 2>&1 ||
    fail "ORT ($level) on the export of $spec differs from the engine: $(cat "$T/cmp.log")"
  ok "ONNX Runtime ($level) on the export of $spec = the engine: $(cat "$T/cmp.log")"
}
"$X" export --config "$T/tiny.json" --precision '*=w8a8' --out "$T/w8a8.onnx" > /dev/null 2>&1 ||
  fail "export of *=w8a8"
ort_check '*=w8a8' "$T/w8a8.onnx" all
ort_check "$assign" "$OUT" disabled
