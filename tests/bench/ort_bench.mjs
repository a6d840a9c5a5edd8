// SPDX-License-Identifier: LGPL-2.1-or-later
// Time one ONNX model in ONNX Runtime (npm onnxruntime-node), CPU execution
// provider, fp32, batch 1. Used by peers.py; prints one "key value" per line:
//   version 1.30.0
//   median_ms 123.456
//   min_ms 120.000
//
// node ort_bench.mjs --model M.onnx --height H --width W --threads T
//                    --frames N --warmup K [--modules DIR]
// node ort_bench.mjs --probe [--modules DIR]     (prints the version only)
// With --input FILE (raw float32, 3*H*W values) the frame is read from FILE
// instead of generated, and --dump FILE writes the first output (raw float32).
//
// --modules is the node_modules folder holding onnxruntime-node (default:
// the one next to this script).

import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const opts = { modules: path.join(here, 'node_modules'), frames: 10, warmup: 1, threads: 2 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--probe') { opts.probe = true; continue; }
  if (!a.startsWith('--') || i + 1 >= argv.length) {
    console.error(`ort_bench: bad argument ${a}`);
    process.exit(2);
  }
  opts[a.slice(2)] = argv[++i];
}

// createRequire resolves from a file inside the given node_modules' parent.
const require = createRequire(path.join(path.resolve(opts.modules), '..', 'ort_bench.cjs'));
const ort = require('onnxruntime-node');
const version = require('onnxruntime-node/package.json').version;
console.log(`version ${version}`);
if (opts.probe) process.exit(0);

const H = Number(opts.height), W = Number(opts.width);
const threads = Number(opts.threads), frames = Number(opts.frames), warmup = Number(opts.warmup);
if (!opts.model || !(H > 0) || !(W > 0) || !(threads > 0) || !(frames > 0) || !(warmup >= 0)) {
  console.error('ort_bench: need --model, --height, --width, --threads, --frames, --warmup');
  process.exit(2);
}

const session = await ort.InferenceSession.create(opts.model, {
  executionProviders: ['cpu'],
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
  executionMode: 'sequential',
});

// A fixed pseudo-random frame in [-1, 1] (content does not affect the time).
let data = new Float32Array(3 * H * W);
if (opts.input) {
  const buf = fs.readFileSync(opts.input);
  if (buf.length !== data.length * 4) {
    console.error(`ort_bench: ${opts.input} has ${buf.length} bytes, want ${data.length * 4}`);
    process.exit(2);
  }
  data = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
} else {
  let s = 12345;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    data[i] = (s / 4294967296) * 2 - 1;
  }
}
const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, [1, 3, H, W]) };

if (opts.dump) {
  const out = await session.run(feeds);
  const y = out[session.outputNames[0]].data;
  fs.writeFileSync(opts.dump, Buffer.from(y.buffer, y.byteOffset, y.byteLength));
}
for (let i = 0; i < warmup; i++) await session.run(feeds);
const times = [];
for (let i = 0; i < frames; i++) {
  const t0 = process.hrtime.bigint();
  await session.run(feeds);
  times.push(Number(process.hrtime.bigint() - t0) / 1e6);
}
times.sort((a, b) => a - b);
const n = times.length;
const median = n % 2 ? times[(n - 1) / 2] : (times[n / 2 - 1] + times[n / 2]) / 2;
console.log(`median_ms ${median.toFixed(3)}`);
console.log(`min_ms ${times[0].toFixed(3)}`);
await session.release();
