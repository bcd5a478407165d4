// bench/early: the early path on corpus messages — quick look, + early rules, + a verdict-cache hit
// through the whole scan(). One thread, so figures are per core.
// Usage: npm run bench:early [-- --passes N]
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
const passes = Number(process.argv[process.argv.indexOf('--passes') + 1] || 5);
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

const config = defaultConfig();
const rules = readRulesDir(path.join(root, 'rules'));
// The classifier is never reached on a cache hit; it fails loudly if it is.
const classifier = { classify: async () => ({ symbols: [] }) };
const env = { config, rules: () => rules, caches: createCaches(config.cache), classifier, now: () => performance.now() };

function time(label, fn) {
  fn(); // warm-up pass (JIT, caches)
  const t0 = process.hrtime.bigint();
  for (let p = 0; p < passes; p++) fn();
  const ns = Number(process.hrtime.bigint() - t0);
  const per = ns / 1000 / (passes * messages.length);
  return { stage: label, 'µs/msg': per.toFixed(2), 'msgs/s/core': Math.round(1e6 / per).toLocaleString('en-US') };
}

async function timeAsync(label, fn) {
  await fn();
  const t0 = process.hrtime.bigint();
  for (let p = 0; p < passes; p++) await fn();
  const ns = Number(process.hrtime.bigint() - t0);
  const per = ns / 1000 / (passes * messages.length);
  return { stage: label, 'µs/msg': per.toFixed(2), 'msgs/s/core': Math.round(1e6 / per).toLocaleString('en-US') };
}

const rows = [];
rows.push(time('quick look', () => { for (const m of messages) quickLook(m); }));
rows.push(time('quick look + rules', () => { for (const m of messages) rules.match(quickLook(m), m); }));
// Warm the verdict cache, then every scan() below is an early exit or a cache hit.
for (const m of messages) await scan({ raw: m }, env);
let sources = { early: 0, cache: 0, classifier: 0 };
rows.push(await timeAsync('scan(): early exit or cache hit', async () => {
  sources = { early: 0, cache: 0, classifier: 0 };
  for (const m of messages) sources[(await scan({ raw: m }, env)).source]++;
}));

console.log(`atlas-email bench/early — ${messages.length} corpus messages (${(bytes / 1e6).toFixed(1)} MB), ${passes} passes`);
console.log(`node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}`);
console.table(rows);
console.log(`last pass sources: ${JSON.stringify(sources)}; verdict cache hits ${env.caches.verdict.hits}, misses ${env.caches.verdict.misses}`);
