// bench/pages: how long /performance and /history take to show their data in headless Chromium, idle and
// while an autocannon load (the bench/http full-scan scenario: unique corpus messages) runs against the same
// server. The promise to hold: sub-second pages under load.
// Usage: npm run bench:pages [-- --duration S] [--connections N] [--loads N]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { chromium } from 'playwright-core';
import { numberFlag } from '../lib/args.mjs';
import { corpusFiles, root } from '../lib/corpus.mjs';

const duration = numberFlag('duration', 20);
const connections = numberFlag('connections', 16);
const loads = numberFlag('loads', 8);

function messages() {
  const out = corpusFiles()
    .filter((f) => f.size > 0 && f.size < 500 * 1024)
    .map((f) => readFileSync(f.path));
  return out.length ? out : [readFileSync(path.join(root, 'test/fixtures/ham-plain.eml'))];
}

const work = mkdtempSync(path.join(os.tmpdir(), 'atlas-bench-pages-'));
// Without the auth stage, as bench/http: this sandbox has no DNS, and waiting on it is not page work.
writeFileSync(path.join(work, 'config.yaml'), 'auth:\n  enabled: false\n');
const server = spawn(
  process.execPath,
  [path.join(root, 'dist/cli/index.js'), 'serve', '--http', '127.0.0.1:0', '--db', path.join(work, 'atlas.db'), '--config', path.join(work, 'config.yaml')],
  { stdio: ['ignore', 'ignore', 'pipe'] },
);
let log = '';
server.stderr.on('data', (d) => (log += d));
let address;
for (let i = 0; !(address = /http listening on (\S+)/.exec(log)?.[1]); i++) {
  if (server.exitCode !== null || i > 600) throw new Error(`serve did not start:\n${log}`);
  await new Promise((r) => setTimeout(r, 100));
}
const base = `http://${address}`;
const all = messages();
for (let i = 0; i < 50; i++) await fetch(`${base}/v1/check`, { method: 'POST', body: all[i % all.length] });

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});

/** Server answer times (request to last byte) of what the pages fetch, without a browser. */
async function answerTimes(n) {
  const out = { page: [], stats: [], verdicts: [] };
  for (let i = 0; i < n; i++) {
    for (const [k, url] of [['page', '/performance'], ['stats', '/v1/stats'], ['verdicts', '/v1/verdicts?limit=50']]) {
      const t0 = performance.now();
      await (await fetch(base + url)).arrayBuffer();
      out[k].push(performance.now() - t0);
    }
  }
  return out;
}

/** Milliseconds from navigation until the page shows its data (charts drawn / rows listed). */
async function loadTimes(n) {
  const perf = [];
  const hist = [];
  for (let i = 0; i < n; i++) {
    const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    let t0 = performance.now();
    await page.goto(`${base}/performance`);
    await page.waitForFunction(() => document.querySelectorAll('.uplot canvas').length === 7, null, { timeout: 30_000 });
    perf.push(performance.now() - t0);
    t0 = performance.now();
    await page.goto(`${base}/history`);
    await page.waitForSelector('tr.row', { timeout: 30_000 });
    hist.push(performance.now() - t0);
    await page.close();
  }
  return { perf, hist };
}

const stat = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return `${s[Math.floor(s.length / 2)].toFixed(0)} / ${s[s.length - 1].toFixed(0)}`;
};

const idle = await loadTimes(Math.min(loads, 5));
const idleAnswers = await answerTimes(20);
let seq = 0;
const load = autocannon({
  url: `${base}/v1/check`,
  connections,
  duration,
  requests: [{ method: 'POST', setupRequest: (req) => ({ ...req, body: Buffer.concat([all[seq % all.length], Buffer.from(`\r\n-- ${seq++}\r\n`)]) }) }],
});
await new Promise((r) => setTimeout(r, 2000));
const busy = await loadTimes(loads);
const busyAnswers = await answerTimes(20);
const result = await load;
await browser.close();
server.kill('SIGTERM');

console.log(`atlas-email bench/pages — node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model}; load: ${connections} connections, unique corpus messages`);
console.log('Chromium: navigation until the page shows its data (p50 / max ms)');
console.table([
  { when: 'idle', '/performance': stat(idle.perf), '/history': stat(idle.hist), 'load req/s': '-' },
  { when: 'under load', '/performance': stat(busy.perf), '/history': stat(busy.hist), 'load req/s': result.requests.average.toFixed(0) },
]);
console.log('server answers: request to last byte (p50 / max ms)');
console.table([
  { when: 'idle', 'GET /performance': stat(idleAnswers.page), 'GET /v1/stats': stat(idleAnswers.stats), 'GET /v1/verdicts': stat(idleAnswers.verdicts) },
  { when: 'under load', 'GET /performance': stat(busyAnswers.page), 'GET /v1/stats': stat(busyAnswers.stats), 'GET /v1/verdicts': stat(busyAnswers.verdicts) },
]);
