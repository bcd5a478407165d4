// bench/early: the early path on corpus messages — quick look, + early rules, + a verdict-cache hit
// through the whole scan(). One thread, so figures are per core.
// Usage: npm run bench:early [-- --passes N]
//
// The machine is shared, so each stage runs several passes and reports the best one, both as wall time
// and as CPU time of this process (process.cpuUsage: time stolen by other processes is not counted).
// The cache-hit row also times every message on its own (best of the passes per message), which gives
// the median message beside the mean: the mean carries the few megabyte-sized messages.
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { createCaches } from '../../dist/core/cache.js';
import { defaultConfig } from '../../dist/core/config.js';
import { quickLook } from '../../dist/core/look.js';
import { scan } from '../../dist/core/scan.js';
import { readRulesDir } from '../../dist/cli/rules-watch.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const corpus = process.env.ATLAS_CORPUS ?? path.join(root, '../shared/corpus');
const passesAt = process.argv.indexOf('--passes');
const passes = passesAt > 0 ? Number(process.argv[passesAt + 1]) : 5;
if (!Number.isInteger(passes) || passes < 1) {
  console.error('--passes takes a whole number of at least 1');
  process.exit(2);
}
if (!existsSync(corpus)) {
  console.error(`corpus not found at ${corpus}; set ATLAS_CORPUS`);
  process.exit(2);
}

const messages = [];
for (const source of readdirSync(corpus).sort()) {
  for (const label of ['ham', 'spam']) {
    const dir = path.join(corpus, source, label);
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir).sort()) {
      const m = new Uint8Array(readFileSync(path.join(dir, f)));
      if (m.length > 0) messages.push(m); // scan() refuses empty input with EMALFORMED
    }
  }
}
const bytes = messages.reduce((a, m) => a + m.length, 0);
const sizes = messages.map((m) => m.length).sort((a, b) => a - b);

const config = defaultConfig();
const rules = readRulesDir(path.join(root, 'rules'));
// The classifier is never reached on a cache hit; it fails loudly if it is.
const classifier = {
  classify: async () => {
    throw new Error('bench/early: the classifier was reached, so this was not a cache hit');
  },
};
const env = { config, rules: () => rules, caches: createCaches(config.cache), classifier, now: () => performance.now() };

const perMsg = (us) => us / messages.length;
function row(label, best) {
  return {
    stage: label,
    'wall µs/msg': perMsg(best.wall).toFixed(2),
    'cpu µs/msg': perMsg(best.cpu).toFixed(2),
    'msgs/s/core (cpu)': Math.round(1e6 / perMsg(best.cpu)).toLocaleString('en-US'),
  };
}

/** Runs one pass per call; returns the best wall and the best CPU time (µs) over the passes. */
async function bestOf(pass) {
  await pass(); // warm-up pass (JIT, caches)
  let wall = Infinity;
  let cpu = Infinity;
  for (let p = 0; p < passes; p++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await pass();
    const t = (performance.now() - t0) * 1000;
    const c = process.cpuUsage(c0);
    wall = Math.min(wall, t);
    cpu = Math.min(cpu, c.user + c.system);
  }
  return { wall, cpu };
}

// Body-rule matches as a cache hit has them, so the "header rules" row times what a hit runs.
const bodies = messages.map((m) => rules.matchBody(quickLook(m), m));

const rows = [];
rows.push(row('quick look', await bestOf(() => { for (const m of messages) quickLook(m); })));
rows.push(row('quick look + all rules (body scanned)', await bestOf(() => { for (const m of messages) rules.match(quickLook(m), m); })));
rows.push(row('quick look + header rules (cached body)', await bestOf(() => {
  for (let i = 0; i < messages.length; i++) rules.match(quickLook(messages[i]), messages[i], bodies[i]);
})));
// Warm the verdict cache, then every scan() below is an early exit or a cache hit.
{
  const warm = { ...env, classifier: { classify: async () => ({ symbols: [] }) } };
  for (const m of messages) await scan({ raw: m }, warm);
}
let sources = { early: 0, cache: 0, classifier: 0 };
rows.push(row('scan(): early exit or cache hit', await bestOf(async () => {
  sources = { early: 0, cache: 0, classifier: 0 };
  for (const m of messages) sources[(await scan({ raw: m }, env)).source]++;
})));

// Each message on its own: the best of the passes per message (wall; one message is too short for cpuUsage).
const each = new Float64Array(messages.length).fill(Infinity);
for (let p = 0; p <= passes; p++) {
  for (let i = 0; i < messages.length; i++) {
    const t0 = performance.now();
    await scan({ raw: messages[i] }, env);
    const t = (performance.now() - t0) * 1000;
    if (t < each[i]) each[i] = t;
  }
}
const sorted = Array.from(each).sort((a, b) => a - b);
const q = (f) => sorted[Math.min(sorted.length - 1, Math.floor(f * sorted.length))];
const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;

console.log(`atlas-email bench/early — ${messages.length} corpus messages (${(bytes / 1e6).toFixed(1)} MB; size median ${sizes[sizes.length >> 1]} B, mean ${Math.round(bytes / messages.length)} B, max ${sizes.at(-1)} B), best of ${passes} passes`);
console.log(`node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.table(rows);
console.log(
  `scan() cache hit per message (wall, best of ${passes + 1}): median ${q(0.5).toFixed(2)} µs, mean ${mean.toFixed(2)} µs, p90 ${q(0.9).toFixed(2)} µs, p99 ${q(0.99).toFixed(2)} µs, max ${sorted.at(-1).toFixed(0)} µs`,
);
console.log(`last pass sources: ${JSON.stringify(sources)}; verdict cache hits ${env.caches.verdict.hits}, misses ${env.caches.verdict.misses}`);
