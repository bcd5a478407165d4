// bench/store: the verdict log's write path on real SQLite files (WAL, synchronous=NORMAL, the shipped
// schema with its three indexes).
//  1. Batched vs row-at-a-time, side by side in one run: LogWriter.write() (the writer thread's code)
//     with 500 rows per transaction, and with one row per transaction. Rounds alternate so a noisy
//     neighbour hits both; the figures are the medians. Each round's clock stops after a checkpoint
//     has copied its rows into the database file, so the checkpoint work the WAL defers is counted.
//     A third mode, labelled group commit, writes 5,000 rows per transaction: what the writer does
//     under load, when batches queue up behind a write and the next transaction takes them all
//     (limits.storeGroupCommitRows). It is not the 500-row figure and is not judged as one.
//  2. End to end: record() on the main thread → writer thread → SQLite, with group commit as serve
//     runs it: main-thread cost per verdict, rows/s until everything is written (wall and per
//     CPU-second of the whole process, both threads), transactions used, and the event loop's delay.
// Wall-clock rows/s suffer from neighbours on a shared machine; rows per CPU-second of this process
// are printed beside them (for the I/O-bound row-at-a-time mode they flatter it: waits are not CPU).
// Usage: npm run bench:store [-- --rounds N --rows N --e2e N]   (--rounds 0: end to end only)
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
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
const rounds = arg('rounds', 5);
// Both modes write the same number of rows to a new file, so index sizes match.
const roundRows = arg('rows', 20_000);
const e2eRows = arg('e2e', 200_000);
const BATCH = 500;
const GROUP = 5_000;

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
  return { w, db: w.open() };
}

/** Rows/s (wall clock and per CPU-second) writing `n` rows in transactions of `per` rows, on a new file. */
function insertRound(n, per) {
  const { w, db } = freshWriter();
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
  const c0 = process.cpuUsage();
  for (const b of batches) w.write(b);
  db.pragma('wal_checkpoint(PASSIVE)');
  const s = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  w.close();
  return { wall: n / s, cpu: n / ((c.user + c.system) / 1e6) };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (n) => Math.round(n).toLocaleString('en-US');

insertRound(5_000, BATCH); // warm-up: JIT, page cache
const batched = [];
const single = [];
const grouped = [];
for (let r = 0; r < rounds; r++) {
  batched.push(insertRound(roundRows, BATCH));
  single.push(insertRound(roundRows, 1));
  grouped.push(insertRound(roundRows, GROUP));
}

/** CPU seconds of each thread of this process, by thread id (Linux /proc; empty elsewhere). */
function threadCpu() {
  const out = new Map();
  try {
    const tick = 100; // USER_HZ on Linux
    for (const tid of readdirSync('/proc/self/task')) {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'latin1');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(tid, (Number(f[11]) + Number(f[12])) / tick);
    }
  } catch {
    // Not Linux: the per-thread split is left out.
  }
  return out;
}

// End to end through the store, verdicts arriving in bursts of 1,000 per event-loop turn.
const threadsBefore = threadCpu();
const store = await openStore({ file: path.join(work, 'e2e.db'), batchSize: BATCH, flushMs: 250, queueLength: e2eRows, log: () => {} });
const verdicts = Array.from({ length: 10_000 }, (_, i) => verdictAt(i));
const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
let recordMs = 0;
const t0 = performance.now();
const e2eCpu0 = process.cpuUsage();
const threads0 = threadCpu();
for (let i = 0; i < e2eRows; i += 1_000) {
  const r0 = performance.now();
  for (let j = i; j < i + 1_000; j++) store.record(verdicts[j % verdicts.length]);
  recordMs += performance.now() - r0;
  await new Promise((r) => setImmediate(r));
}
await store.flush();
const e2eS = (performance.now() - t0) / 1000;
const e2eCpu = process.cpuUsage(e2eCpu0);
const threads1 = threadCpu();
// The main thread's id is the process id; the writer is the thread openStore started.
const cpuOf = (pick) => [...threads1].filter(([tid]) => pick(tid)).reduce((sum, [tid, s]) => sum + s - (threads0.get(tid) ?? 0), 0);
const mainCpuS = cpuOf((tid) => tid === String(process.pid));
const writerCpuS = cpuOf((tid) => !threadsBefore.has(tid));
delay.disable();
await store.close();
const stats = store.stats();
rmSync(work, { recursive: true, force: true });

const wall = (xs) => median(xs.map((x) => x.wall));
const cpu = (xs) => median(xs.map((x) => x.cpu));
console.log(
  `bench/store — node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model.trim()}, load ${os.loadavg()[0].toFixed(1)}, ` +
    `${rounds} alternating rounds of ${fmt(roundRows)} rows each`,
);
console.log('');
const met = (ok) => (ok ? 'met' : 'NOT met');
if (rounds > 0) {
  console.log('mode                                             rows/s wall (median)   rows/CPU-s (median)   rows/CPU-s, each round');
  for (const [name, xs] of [
    [`batched (${BATCH} rows / transaction)`, batched],
    ['row-at-a-time (1 row / transaction)', single],
    [`group commit (${fmt(GROUP)} rows / transaction)`, grouped],
  ]) {
    console.log(`${name.padEnd(48)} ${fmt(wall(xs)).padStart(20)}   ${fmt(cpu(xs)).padStart(19)}   ${xs.map((x) => fmt(x.cpu)).join(', ')}`);
  }
  console.log('');
  const ratioWall = wall(batched) / wall(single);
  const ratioCpu = cpu(batched) / cpu(single);
  console.log(
    `batched / row-at-a-time: ${ratioWall.toFixed(1)}× wall clock (${met(ratioWall >= 10)}), ${ratioCpu.toFixed(1)}× per CPU-second (${met(ratioCpu >= 10)})   (target ≥ 10×)`,
  );
  console.log(
    `batched inserts: ${fmt(wall(batched))} rows/s wall (${met(wall(batched) >= 200_000)}), ${fmt(cpu(batched))} rows per CPU-second (${met(cpu(batched) >= 200_000)})   (target ≥ 200,000 rows/s)`,
  );
  console.log(
    `group commit (not the issue's 500-row batches): ${(wall(grouped) / wall(single)).toFixed(1)}× / ${(cpu(grouped) / cpu(single)).toFixed(1)}× row-at-a-time (wall / CPU-second)`,
  );
  console.log('');
}
console.log(
  `end to end (record → writer thread → SQLite): ${fmt(e2eRows)} verdicts written in ${e2eS.toFixed(2)} s = ${fmt(e2eRows / e2eS)} rows/s; ` +
    `written ${fmt(stats.written)}, dropped ${stats.dropped}`,
);
const txs = stats.transactions;
console.log(
  `  ${fmt(e2eRows / ((e2eCpu.user + e2eCpu.system) / 1e6))} rows per CPU-second (whole process, all threads); ` +
    (txs === undefined ? 'transactions not counted by this build' : `${fmt(txs)} transactions (group commit), ${fmt(e2eRows / txs)} rows each on average`),
);
if (threads1.size) {
  console.log(
    `  CPU per verdict: main thread ${((mainCpuS * 1e6) / e2eRows).toFixed(1)} µs, writer thread ${((writerCpuS * 1e6) / e2eRows).toFixed(1)} µs ` +
      `(${fmt(e2eRows / writerCpuS)} rows per writer-thread CPU-second), other threads (GC, libuv) the rest`,
  );
}
console.log(
  `  main thread: record() ${((recordMs * 1000) / e2eRows).toFixed(2)} µs per verdict; event loop delay p99 ${(delay.percentile(99) / 1e6).toFixed(1)} ms, max ${(delay.max / 1e6).toFixed(1)} ms`,
);
