// bench/store: the verdict log's write path on real SQLite files (WAL, synchronous=NORMAL, the shipped
// schema with its three indexes).
//  1. Batched vs row-at-a-time, side by side in one run: LogWriter.write() (the writer thread's code)
//     with 500 rows per transaction, and with one row per transaction. Rounds alternate so a noisy
//     neighbour hits both; the figures are the medians.
//  2. End to end: record() on the main thread → writer thread → SQLite: main-thread cost per verdict,
//     rows/s until everything is written, and the event loop's delay meanwhile.
// Usage: npm run bench:store [-- --rounds N --rows N]
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { toRow } from '../../dist/store/row.js';
import { openStore } from '../../dist/store/store.js';
import { LogWriter } from '../../dist/store/writer.js';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const rounds = arg('rounds', 3);
const batchedRows = arg('rows', 200_000);
const singleRows = Math.max(500, Math.round(batchedRows / 50));
const BATCH = 500;

// Verdicts shaped like real traffic: 200 sender domains, an action mix, one to three symbols.
const ACTIONS = ['accept', 'accept', 'accept', 'accept', 'tag', 'tag', 'reject', 'quarantine', 'tempfail'];
function verdictAt(i) {
  const spam = i % 3 === 0;
  return {
    action: ACTIONS[i % ACTIONS.length],
    score: spam ? 9.5 + (i % 7) : (i % 40) / 10,
    required: 5,
    spam,
    symbols: [
      { name: spam ? 'BAYES_SPAM' : 'BAYES_HAM', score: spam ? 5.1 : -1.9 },
      ...(i % 2 ? [{ name: 'DKIM_VALID', score: -0.1, description: 'a valid DKIM signature' }] : []),
      ...(i % 5 ? [] : [{ name: 'URL_SHORTENER', score: 1.5, options: ['bit.ly'] }]),
    ],
    source: i % 4 === 0 ? 'cache' : 'classifier',
    elapsedMs: 0.4 + (i % 90) / 10,
    messageId: `<${i}.${(i * 2654435761) >>> 0}@mail${i % 200}.example.org>`,
    queueId: `4F${(i * 7919).toString(16).toUpperCase()}`,
    sender: `user${i % 997}@sender${i % 200}.example`,
    recipients: [`rcpt${i % 50}@example.net`],
    subject: `Weekly report ${i % 1000}: figures for the northern region`,
    relayIp: `192.0.2.${i % 250}`,
    country: ['NL', 'DE', 'US', 'BR', 'CN'][i % 5],
  };
}
const now = Date.now();
const pool = Array.from({ length: 10_000 }, (_, i) => toRow(verdictAt(i), now + i));

const work = mkdtempSync(path.join(os.tmpdir(), 'atlas-bench-store-'));
let files = 0;
function freshWriter() {
  const w = new LogWriter({ file: path.join(work, `r${files++}.db`) });
  w.open();
  return w;
}

/** Rows/s writing `n` rows in transactions of `per` rows, on a new file. */
function insertRound(n, per) {
  const w = freshWriter();
  const batches = [];
  // Times rise as in real traffic, so the time index grows at its end.
  const t = Date.now();
  for (let i = 0; i < n; i += per) {
    batches.push(
      pool.slice(i % pool.length, (i % pool.length) + per).map((r, k) => {
        const row = r.slice();
        row[0] = t + i + k;
        return row;
      }),
    );
  }
  const t0 = performance.now();
  for (const b of batches) w.write(b);
  const s = (performance.now() - t0) / 1000;
  w.close();
  return n / s;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (n) => Math.round(n).toLocaleString('en-US');

insertRound(5_000, BATCH); // warm-up: JIT, page cache
const batched = [];
const single = [];
for (let r = 0; r < rounds; r++) {
  batched.push(insertRound(batchedRows, BATCH));
  single.push(insertRound(singleRows, 1));
}

// End to end through the store, verdicts arriving in bursts of 1,000 per event-loop turn.
const e2eRows = batchedRows;
const store = await openStore({ file: path.join(work, 'e2e.db'), batchSize: BATCH, flushMs: 250, queueLength: e2eRows, log: () => {} });
const verdicts = Array.from({ length: 10_000 }, (_, i) => verdictAt(i));
const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
let recordMs = 0;
const t0 = performance.now();
for (let i = 0; i < e2eRows; i += 1_000) {
  const r0 = performance.now();
  for (let j = i; j < i + 1_000; j++) store.record(verdicts[j % verdicts.length]);
  recordMs += performance.now() - r0;
  await new Promise((r) => setImmediate(r));
}
await store.flush();
const e2eS = (performance.now() - t0) / 1000;
delay.disable();
await store.close();
const stats = store.stats();
rmSync(work, { recursive: true, force: true });

const bMed = median(batched);
const sMed = median(single);
console.log(`bench/store — node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model.trim()}, ${rounds} alternating rounds`);
console.log('');
console.log('mode                                rows/round     rows/s (median)   each round');
console.log(`batched (${BATCH} rows / transaction)    ${String(batchedRows).padStart(10)}   ${fmt(bMed).padStart(15)}   ${batched.map(fmt).join(', ')}`);
console.log(`row-at-a-time (1 row / transaction) ${String(singleRows).padStart(10)}   ${fmt(sMed).padStart(15)}   ${single.map(fmt).join(', ')}`);
console.log('');
console.log(`batched / row-at-a-time: ${(bMed / sMed).toFixed(1)}×   (target ≥ 10×)`);
console.log(`batched inserts: ${fmt(bMed)} rows/s   (target ≥ 200,000)`);
console.log('');
console.log(
  `end to end (record → writer thread → SQLite): ${fmt(e2eRows)} verdicts written in ${e2eS.toFixed(2)} s = ${fmt(e2eRows / e2eS)} rows/s; ` +
    `written ${fmt(stats.written)}, dropped ${stats.dropped}`,
);
console.log(
  `  main thread: record() ${((recordMs * 1000) / e2eRows).toFixed(2)} µs per verdict; event loop delay p99 ${(delay.percentile(99) / 1e6).toFixed(1)} ms, max ${(delay.max / 1e6).toFixed(1)} ms`,
);
