// bench/pool: classification of corpus messages in-process on one thread versus through the worker
// pool with 1 and 2 workers (parallel efficiency), then process RSS sampled over a long run of
// classifications through the pool (must stay flat). Worker threads live in this process, so the
// process RSS is the workers' memory plus the main thread's.
// The machine is shared and noisy: the three throughput runs alternate for several rounds and the
// best and median round of each are printed, with the CPU time the whole process (all threads)
// spent per message, which other load on the machine does not inflate the way it does wall time.
// Last, a ceiling: the same classification in 1 and 2 independent threads with no pool, started together.
// Usage: npm run bench:pool [-- --model FILE] [--rounds N] [--rss-count N] [--window N]
import { existsSync, readFileSync } from 'node:fs';
import { BroadcastChannel, Worker } from 'node:worker_threads';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as classify from '../../dist/core/classify.js';
import { ClassifierPool } from '../../dist/pool/pool.js';
import { flag, numberFlag } from '../lib/args.mjs';
import { loadCorpus, requireCorpus, root } from '../lib/corpus.mjs';

const rounds = numberFlag('rounds', 5);
const rssCount = numberFlag('rss-count', 100_000);
requireCorpus();

const labelled = loadCorpus();
const messages = labelled.map((f) => f.raw);
const totalBytes = messages.reduce((a, m) => a + m.length, 0);

// The shipped model when present; otherwise one trained here so the model's cost is in the figures.
const modelFile = flag('model', path.join(root, 'models/default.model'));
let modelBytes;
let modelNote;
if (existsSync(modelFile)) {
  modelBytes = new Uint8Array(readFileSync(modelFile));
  modelNote = modelFile;
} else {
  const m = classify.emptyModel();
  for (const { raw, label, source } of labelled) if (source !== 'phishing-pot') classify.trainMessage(m, raw, label);
  modelBytes = classify.serializeModel(m);
  modelNote = `trained in memory on the corpus (no file at ${modelFile})`;
}
const model = classify.loadModel(modelBytes);
const look = { sender: '', senderDomain: '', fromDomain: '', relayIp: '', subject: '', messageId: '' };

/** Wall-clock msgs/s and process CPU µs per message (every thread) of one pass. */
async function measure(pass) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await pass();
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return { rate: messages.length / wall, cpu: (c.user + c.system) / messages.length };
}

/** One pass over the corpus on this thread. */
function inProcess() {
  return measure(async () => {
    for (const m of messages) classify.classifyMessage(m, model);
  });
}

/** Keeps `window` classifications in flight until `total` are answered. */
function drive(pool, total, window, onDone = () => {}) {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let done = 0;
    const launch = () => {
      while (sent < total && sent - done < window) {
        const raw = messages[sent++ % messages.length];
        pool.classify({ raw, look, deadline: performance.now() + 60_000 }).then(() => {
          done++;
          onDone(done);
          if (done === total) resolve();
          else launch();
        }, reject);
      }
    };
    launch();
  });
}

function startPool(workers) {
  const window = numberFlag('window', 16 * workers);
  const pool = new ClassifierPool({ workers, queueLength: window, taskTimeoutMs: 60_000, modelBytes });
  return { pool, window };
}

/** One pass over the corpus through the pool. */
function throughPool({ pool, window }) {
  return measure(() => drive(pool, messages.length, window));
}

const mb = (n) => (n / 1024 / 1024).toFixed(1);

async function rssRun(workers) {
  const window = 16 * workers;
  // The real worker wrapped to report its heap (bench/pool/heap-probe-worker.mjs).
  const workerFile = fileURLToPath(new URL('./heap-probe-worker.mjs', import.meta.url));
  const pool = new ClassifierPool({ workers, queueLength: window, taskTimeoutMs: 60_000, modelBytes, workerFile });
  const heaps = new Map();
  const channel = new BroadcastChannel('atlas-bench-heap');
  channel.onmessage = ({ data }) => heaps.set(data.threadId, data);
  const samples = [];
  const every = Math.max(1, Math.floor(rssCount / 10));
  const sample = (done) => {
    if (done % every !== 0) return;
    const u = process.memoryUsage();
    const w = [...heaps.values()];
    samples.push({
      classified: done.toLocaleString('en-US'),
      'rss MB': mb(u.rss),
      'main heap MB': mb(u.heapUsed),
      'worker heaps MB': w.map((h) => mb(h.heapUsed)).join(' / '),
      'worker buffers MB': w.map((h) => mb(h.arrayBuffers)).join(' / '),
    });
  };
  try {
    const t0 = performance.now();
    await drive(pool, rssCount, window, sample);
    return { samples, seconds: (performance.now() - t0) / 1000, stats: pool.stats() };
  } finally {
    channel.close();
    await pool.close();
  }
}

console.log(`bench:pool — node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${os.platform()} ${os.arch()}`);
console.log(`corpus: ${messages.length} messages, ${mb(totalBytes)} MB; model: ${modelNote}; ${rounds} rounds of one pass each\n`);

const one = startPool(1);
const two = startPool(2);
// Warm-up: workers start, every thread's JIT settles.
const loadBefore = os.loadavg()[0];
await inProcess();
await throughPool(one);
await throughPool(two);
const runs = { single: [], pool1: [], pool2: [] };
for (let r = 0; r < rounds; r++) {
  runs.single.push(await inProcess());
  runs.pool1.push(await throughPool(one));
  runs.pool2.push(await throughPool(two));
}
await Promise.all([one.pool.close(), two.pool.close()]);
const rates = (xs) => xs.map((x) => x.rate);
const cpus = (xs) => xs.map((x) => x.cpu);
const best = (xs) => Math.max(...xs);
const least = (xs) => Math.min(...xs);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (n) => Math.round(n).toLocaleString('en-US');
const row = (run, xs) => ({
  run,
  'best msgs/s': fmt(best(rates(xs))),
  'median msgs/s': fmt(median(rates(xs))),
  'best vs in-process': (best(rates(xs)) / best(rates(runs.single))).toFixed(2),
  'CPU µs/msg (median)': median(cpus(xs)).toFixed(0),
});
console.table([row('in-process, 1 thread', runs.single), row('pool, 1 worker', runs.pool1), row('pool, 2 workers', runs.pool2)]);
for (const [name, pick] of [['best', best], ['median', median]]) {
  const p1 = pick(rates(runs.pool1));
  const p2 = pick(rates(runs.pool2));
  console.log(
    `parallel efficiency, wall clock (${name}): pool(2) = ${((p2 / (2 * p1)) * 100).toFixed(1)}% of 2 × pool(1), ${((p2 / (2 * pick(rates(runs.single)))) * 100).toFixed(1)}% of 2 × in-process (target ≥ 85%)`,
  );
}
// With the cores to itself, a pool of n workers does at most n cores / (its CPU per message); the
// share of that CPU which is the classification itself is the efficiency the pool can reach.
const inCpu = least(cpus(runs.single));
for (const [name, xs] of [['pool(1)', runs.pool1], ['pool(2)', runs.pool2]]) {
  console.log(`CPU efficiency of ${name}: ${((inCpu / least(cpus(xs))) * 100).toFixed(1)}% (in-process CPU per message ÷ the pool's, least of the rounds)`);
}
console.log(`load average (1 min) before: ${loadBefore.toFixed(2)}, after: ${os.loadavg()[0].toFixed(2)} — on 2 cores\n`);

// Latency when messages come one at a time (no queue, so no batching): the pool's round trip.
async function latency(samples) {
  const pool = new ClassifierPool({ workers: 2, queueLength: 16, taskTimeoutMs: 60_000, modelBytes });
  const direct = [];
  const pooled = [];
  try {
    for (let i = 0; i < 200; i++) await pool.classify({ raw: messages[i], look, deadline: performance.now() + 60_000 }); // warm-up
    for (let i = 0; i < samples; i++) {
      const raw = messages[(i * 7) % messages.length];
      let t = performance.now();
      classify.classifyMessage(raw, model);
      direct.push(performance.now() - t);
      t = performance.now();
      await pool.classify({ raw, look, deadline: performance.now() + 60_000 });
      pooled.push(performance.now() - t);
    }
  } finally {
    await pool.close();
  }
  const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))].toFixed(2);
  return [
    { path: 'in-process', 'p50 ms': pct(direct, 50), 'p90 ms': pct(direct, 90), 'p99 ms': pct(direct, 99) },
    { path: 'pool (2 workers)', 'p50 ms': pct(pooled, 50), 'p90 ms': pct(pooled, 90), 'p99 ms': pct(pooled, 99) },
  ];
}
console.log('latency, one message at a time (2,000 messages):');
console.table(await latency(2000));

const workers = Math.max(1, os.availableParallelism());
const rss = await rssRun(workers);
console.log(`RSS over ${rssCount.toLocaleString('en-US')} classifications, pool of ${workers} workers (${fmt(rssCount / rss.seconds)} msgs/s):`);
console.table(rss.samples);
const rssOf = (i) => Number(rss.samples.at(i)?.['rss MB']);
const half = Math.floor(rss.samples.length / 2);
console.log(
  `rss: first sample ${rssOf(0)} MB, middle ${rssOf(half)} MB, last ${rssOf(-1)} MB, peak ${Math.max(...rss.samples.map((s) => Number(s['rss MB'])))} MB; ` +
    `second half growth ${(rssOf(-1) - rssOf(half)).toFixed(1)} MB (${(((rssOf(-1) - rssOf(half)) / rssOf(half)) * 100).toFixed(1)}%)`,
);
console.log(`pool stats: ${JSON.stringify(rss.stats)}`);

// Last, so the corpus copies these threads take do not show in the RSS figures above.
// The ceiling any pool can reach on this machine: n threads that each classify their own copy of
// the corpus, started together, with no messages between threads. Two threads get less than twice
// one thread's rate when the cores share caches, memory bandwidth or a physical core; the pool's
// efficiency is then best read against this, not against 100%.
async function independentThreads(n) {
  const start = new Int32Array(new SharedArrayBuffer(4));
  const file = new URL('./ceiling-worker.mjs', import.meta.url);
  const threads = Array.from({ length: n }, () => new Worker(file, { workerData: { messages, modelBytes, passes: 1, start } }));
  const results = threads.map((w) => new Promise((resolve, reject) => {
    w.on('message', (m) => { if (m !== 'ready') resolve(m); });
    w.on('error', reject);
  }));
  await Promise.all(threads.map((w) => new Promise((resolve) => w.once('message', resolve))));
  Atomics.store(start, 0, 1);
  Atomics.notify(start, 0);
  const done = await Promise.all(results);
  await Promise.all(threads.map((w) => w.terminate()));
  // Every thread classified the whole corpus; the rate is the total over the slowest thread's time.
  return (n * messages.length) / Math.max(...done.map((d) => d.seconds));
}
const ceiling = { one: [], two: [] };
for (let r = 0; r < rounds; r++) {
  ceiling.one.push(await independentThreads(1));
  ceiling.two.push(await independentThreads(2));
}
{
  const c1 = median(ceiling.one);
  const c2 = median(ceiling.two);
  const p1 = median(rates(runs.pool1));
  const p2 = median(rates(runs.pool2));
  console.log(
    `ceiling (median of ${rounds}): 1 independent thread ${fmt(c1)} msgs/s, 2 threads ${fmt(c2)} msgs/s → ${((c2 / (2 * c1)) * 100).toFixed(1)}% — ` +
      `what the two cores allow with no pool at all; the pool's ${((p2 / (2 * p1)) * 100).toFixed(1)}% is ${(((p2 / (2 * p1)) / (c2 / (2 * c1))) * 100).toFixed(1)}% of it\n`,
  );
}
