#!/usr/bin/env node
/*
 * ort_bench.js - ONNX Runtime's latency on the same models as bench_engine (issue 3, "Speed").
 *
 * The reference the engine is measured against: onnxruntime-node (the npm package, installed
 * into bench/ort/ with `npm install --ignore-scripts`; its tarball carries the linux x64 native
 * library, so no post-install download is needed). For each model it creates a session with one
 * intra-op and one inter-op thread, all graph optimizations and sequential execution, fills the
 * input with the same xorshift32 data as bench_engine.c (uniform in [-1, 1), seed 1 + input
 * index), runs --warmup untimed runs, then times --runs single session.run() calls with
 * process.hrtime and prints one line per model:
 *
 *   ort model=NAME threads=1 median_ms=X p90_ms=Y min_ms=Z runs=N out_l1=L [max_abs_diff=D]
 *
 * max_abs_diff compares output 0 with bench_engine's (--compare DIR reads DIR/NAME.out.f32,
 * written by bench_engine --dump DIR). The input shape comes from --shape 1x3x96x96 (one per
 * model, in order; bench_engine prints it) or else from the model's input metadata, with
 * symbolic dimensions set to 1.
 *
 * --profile: afterwards, a second session with ORT's profiler on runs the model --runs times
 * and prints the mean time per op type and the slowest nodes, with the same op keys as
 * bench_engine --profile (Conv split into dw / 1x1 / kxk by its weight's shape). ORT's graph
 * optimizations rename nodes (e.g. b3_dw_relu6_nchwc: Conv+BN+Clip fused, NCHWc layout) and add
 * layout reorders (ReorderInput / ReorderOutput); the profiler records whole microseconds, so
 * means are used rather than medians, and it slows the nodes down (the sum of the profiled
 * node times can be several times the unprofiled median): read the shares, not the ms.
 *
 *   node bench/ort_bench.js [--runs N] [--warmup N] [--shape DIMS]... [--compare DIR]
 *                           [--profile [--top N]] MODEL...
 */
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');

function loadOrt() {
    try {
        return require(path.join(__dirname, 'ort', 'node_modules', 'onnxruntime-node'));
    } catch (e) {
        console.error('ort_bench: onnxruntime-node is not installed under bench/ort ' +
                      '(cd bench/ort && npm install --ignore-scripts): ' + e.message);
        process.exit(3);
    }
}

function usage() {
    console.error('usage: node bench/ort_bench.js [--runs N] [--warmup N] [--shape DIMS]... ' +
                  '[--compare DIR] [--profile [--top N]] MODEL.onnx...');
    process.exit(2);
}

function parseArgs(argv) {
    const o = {
        runs: 100, warmup: 10, top: 12, shapes: [], compare: null, profile: false, models: [],
    };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i], v = argv[i + 1];
        if (a === '--runs' || a === '--warmup' || a === '--top') {
            const n = Number(v);
            if (!Number.isInteger(n) || n < (a === '--runs' ? 1 : 0)) usage();
            o[a.slice(2)] = n;
            i++;
        } else if (a === '--threads') {
            if (v !== '1') {
                console.error('ort_bench: only --threads 1 is measured');
                process.exit(2);
            }
            i++;
        } else if (a === '--shape' && v) {
            o.shapes.push(v.split('x').map(Number));
            i++;
        } else if (a === '--profile') {
            o.profile = true;
        } else if (a === '--compare' && v) {
            o.compare = v;
            i++;
        } else if (a.startsWith('-')) {
            usage();
        } else {
            o.models.push(a);
        }
    }
    if (o.models.length === 0) usage();
    return o;
}

/* xorshift32: the same sequence as bench_engine.c's s_xorshift. */
function fillInput(n, seed) {
    const a = new Float32Array(n);
    let s = seed >>> 0;
    for (let k = 0; k < n; k++) {
        s ^= s << 13; s >>>= 0;
        s ^= s >>> 17;
        s ^= s << 5; s >>>= 0;
        a[k] = Math.fround((s >>> 8) * (2 / 16777216)) - 1;
    }
    return a;
}

function quantile(sorted, q) {
    const i = Math.ceil(q * sorted.length) - 1;
    return sorted[Math.min(sorted.length - 1, Math.max(0, i))];
}

function inputShape(session, k, given) {
    if (given) return given;
    const meta = session.inputMetadata && session.inputMetadata[k];
    if (meta && Array.isArray(meta.shape))
        return meta.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
    throw new Error(`no shape for input '${session.inputNames[k]}': pass --shape`);
}

const SESSION_OPTS = {
    intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all',
    executionMode: 'sequential',
};

function makeFeeds(ort, session, shape) {
    const feeds = {};
    session.inputNames.forEach((inName, k) => {
        const dims = inputShape(session, k, k === 0 ? shape : null);
        const n = dims.reduce((p, d) => p * d, 1);
        feeds[inName] = new ort.Tensor('float32', fillInput(n, 1 + k), dims);
    });
    return feeds;
}

/* Op key of a profiled node, as bench_engine.c's s_op_key. */
function opKey(ev) {
    const op = ev.args.op_name;
    if (op !== 'Conv' && op !== 'FusedConv') return op;
    const w = (ev.args.input_type_shape || [])[1];
    const d = w && Object.values(w)[0];
    const x = (ev.args.input_type_shape || [])[0];
    const xd = x && Object.values(x)[0];
    if (!d || d.length !== 4) return 'Conv(?)';
    if (d[1] === 1 && d[2] * d[3] > 1 && xd && d[0] === xd[1]) return 'Conv(dw)';
    if (d[2] === 1 && d[3] === 1) return 'Conv(1x1)';
    return 'Conv(kxk)';
}

async function profile(ort, file, name, shape, o, medianMs) {
    const prefix = path.join(os.tmpdir(), `ort_bench_${process.pid}_${name}`);
    const session = await ort.InferenceSession.create(file, Object.assign({}, SESSION_OPTS, {
        enableProfiling: true, profileFilePrefix: prefix,
    }));
    const feeds = makeFeeds(ort, session, shape);
    for (let r = 0; r < o.warmup; r++) await session.run(feeds);
    for (let r = 0; r < o.runs; r++) await session.run(feeds);
    session.endProfiling();
    await session.release();
    const dir = path.dirname(prefix), base = path.basename(prefix);
    const files = fs.readdirSync(dir).filter((f) => f.startsWith(base));
    if (files.length === 0) throw new Error('ORT wrote no profile');
    const events = JSON.parse(fs.readFileSync(path.join(dir, files[0]), 'utf8'));
    files.forEach((f) => fs.unlinkSync(path.join(dir, f)));
    const nodes = new Map(); /* name -> {key, us[]} */
    for (const ev of events) {
        if (ev.cat !== 'Node' || !ev.name.endsWith('_kernel_time')) continue;
        const n = ev.name.slice(0, -'_kernel_time'.length);
        if (!nodes.has(n))
            nodes.set(n, { key: opKey(ev), shape: ev.args.output_type_shape, us: [] });
        nodes.get(n).us.push(ev.dur);
    }
    /* the last o.runs calls of each node (the warm-up runs come first) */
    const rows = new Map(), top = [];
    let total = 0;
    for (const [n, v] of nodes) {
        const us = v.us.slice(-o.runs);
        const ms = us.reduce((a, b) => a + b, 0) / us.length / 1e3;
        total += ms;
        const row = rows.get(v.key) || { nodes: 0, ms: 0 };
        row.nodes++;
        row.ms += ms;
        rows.set(v.key, row);
        const sh = v.shape && v.shape[0] ? Object.values(v.shape[0])[0] : null;
        top.push({ n, key: v.key, ms, out: sh ? `[${sh.join(',')}]` : '?' });
    }
    console.log(`ort-profile model=${name} total_ms=${total.toFixed(4)} ` +
                `whole_run_median_ms=${medianMs.toFixed(4)} (sum of per-node means; the ` +
                `profiler inflates node times: compare shares)`);
    [...rows].sort((a, b) => b[1].ms - a[1].ms).forEach(([k, r]) => console.log(
        `ort-profile model=${name} op=${k.padEnd(16)} nodes=${String(r.nodes).padEnd(3)} ` +
        `ms=${r.ms.toFixed(4).padStart(8)} pct=${(100 * r.ms / total).toFixed(1).padStart(5)}`));
    top.sort((a, b) => b.ms - a.ms).slice(0, o.top).forEach((t) => console.log(
        `ort-profile model=${name} node=${t.n.padEnd(26)} op=${t.key.padEnd(12)} ` +
        `out=${t.out.padEnd(16)} ms=${t.ms.toFixed(4).padStart(8)}`));
}

async function bench(ort, file, shape, o) {
    const name = path.basename(file).replace(/\.onnx$/, '');
    const session = await ort.InferenceSession.create(file, SESSION_OPTS);
    const feeds = makeFeeds(ort, session, shape);
    let out = null;
    for (let r = 0; r < o.warmup; r++) await session.run(feeds);
    const t = [];
    for (let r = 0; r < o.runs; r++) {
        const t0 = process.hrtime.bigint();
        out = await session.run(feeds);
        t.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    if (!out) out = await session.run(feeds);
    const y = out[session.outputNames[0]].data;
    let l1 = 0;
    for (let k = 0; k < y.length; k++) l1 += Math.abs(y[k]);
    let extra = '';
    if (o.compare) {
        const f = path.join(o.compare, name + '.out.f32');
        if (fs.existsSync(f)) {
            const b = fs.readFileSync(f);
            const e = new Float32Array(b.buffer, b.byteOffset, b.length / 4);
            if (e.length !== y.length) {
                extra = ` max_abs_diff=size-mismatch(${e.length}/${y.length})`;
            } else {
                let d = 0;
                for (let k = 0; k < y.length; k++) d = Math.max(d, Math.abs(e[k] - y[k]));
                extra = ` max_abs_diff=${d.toPrecision(3)}`;
            }
        }
    }
    t.sort((a, b) => a - b);
    console.log(`ort model=${name} threads=1 median_ms=${quantile(t, 0.5).toFixed(4)} ` +
                `p90_ms=${quantile(t, 0.9).toFixed(4)} min_ms=${t[0].toFixed(4)} ` +
                `runs=${o.runs} out_l1=${l1.toPrecision(6)}${extra}`);
    await session.release();
    if (o.profile) await profile(ort, file, name, shape, o, quantile(t, 0.5));
}

async function main() {
    const o = parseArgs(process.argv.slice(2));
    const ort = loadOrt();
    let status = 0;
    for (let i = 0; i < o.models.length; i++) {
        const name = path.basename(o.models[i]).replace(/\.onnx$/, '');
        try {
            await bench(ort, o.models[i], o.shapes[i], o);
        } catch (e) {
            console.log(`ort model=${name} error="${String(e.message || e).split('\n')[0]}"`);
            status = 1;
        }
    }
    process.exit(status);
}

main();
