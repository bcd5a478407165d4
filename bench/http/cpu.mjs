// bench/http/cpu.mjs: server CPU per request at a fixed request rate, per thread, for paired
// before/after comparisons on a shared machine (wall-clock rates mean little when other work takes the
// cores; CPU time per request does not depend on how much of a core the server got).
//   --server atlas   `atlas-email serve` (dist/, default config without the auth stage, as bench:http)
//   --server floor   a bare node:http server that reads the body and answers a fixed JSON: the least
//                    any Node HTTP door can cost for the same requests
//   --scenario cache-hit|full-scan   the bench:http request streams (one message / unique corpus messages)
//   --rate N (req/s, default 1000)  --duration S (default 8)  --connections N (default 32)
//   --prof DIR   run the server under `node --cpu-prof --cpu-prof-dir DIR`
//   --root DIR   the checkout whose dist/ to serve (a copy built from an earlier commit, for before/after)
//   --node-args "..."   more node flags for the server (e.g. --perf-basic-prof for `perf record -p`)
// Prints µs CPU/req for the whole process and per thread group (main, pool workers, others).
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { corpusFiles } from '../lib/corpus.mjs';
import { spawnListening } from '../lib/server.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const server = arg('--server', 'atlas');
const scenario = arg('--scenario', 'cache-hit');
const rate = Number(arg('--rate', 1000));
const duration = Number(arg('--duration', 8));
const connections = Number(arg('--connections', 32));
const prof = arg('--prof', undefined);
const CLK_TCK = 100;

/** The label's corpus messages up to the size limit, in the corpus walk's fixed order. */
function corpusMessages(label) {
  return corpusFiles()
    .filter((f) => f.label === label && f.size > 0 && f.size <= 500 * 1024)
    .map((f) => readFileSync(f.path));
}

const FLOOR = `
import { createServer } from 'node:http';
const answer = Buffer.from(JSON.stringify({ action: 'accept', score: 0.3, required: 5, spam: false, symbols: [] }));
const s = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    Buffer.concat(chunks);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': answer.length });
    res.end(answer);
  });
});
s.listen(0, '127.0.0.1', () => process.stderr.write('http listening on 127.0.0.1:' + s.address().port + '\\n'));
process.on('SIGTERM', () => process.exit(0));
`;

async function start(work) {
  const nodeArgs = [...(prof ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(prof)] : []), ...(arg('--node-args', '') || '').split(' ').filter(Boolean)];
  let args;
  if (server === 'floor') {
    const f = path.join(work, 'floor.mjs');
    writeFileSync(f, FLOOR);
    args = [...nodeArgs, f];
  } else {
    const cfg = path.join(work, 'bench.yaml');
    writeFileSync(cfg, 'auth:\n  enabled: false\n');
    args = [...nodeArgs, path.join(arg('--root', root), 'dist/cli/index.js'), 'serve', '--http', '127.0.0.1:0', '--db', path.join(work, 'atlas.db'), '--config', cfg];
  }
  return spawnListening(args, work);
}

/** utime+stime per thread (main = the process's own tid). */
function threadTicks(pid) {
  const out = {};
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      // Every thread is called "node"; tell them apart by id (the busiest besides main are the pool
      // workers, the log writer and V8's GC helpers).
      const name = tid === String(pid) ? 'main' : `t${tid}`;
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out[name] = (out[name] ?? 0) + Number(f[11]) + Number(f[12]);
    } catch {
      // a thread that ended
    }
  }
  return out;
}

function requests() {
  const base = { method: 'POST', path: '/v1/check', headers: { 'content-type': 'message/rfc822' } };
  const ham = corpusMessages('ham');
  if (scenario === 'cache-hit') {
    const one = ham.find((m) => m.length > 2_000 && m.length < 8_000) ?? ham[0];
    return [{ ...base, body: one }];
  }
  const all = [...ham, ...corpusMessages('spam')];
  let n = 0;
  const next = () => Buffer.concat([all[n % all.length], Buffer.from(`\r\n-- ${n++}\r\n`)]);
  return [{ ...base, body: all[0], setupRequest: (req) => ({ ...req, body: next() }) }];
}

const work = mkdtempSync(path.join(os.tmpdir(), 'atlas-bench-cpu-'));
const s = await start(work);
const pid = s.child.pid;
console.error(`server pid ${pid}`);
try {
  const reqs = requests();
  const [host, port] = s.address.split(':');
  const run = (d) => autocannon({ url: `http://${host}:${port}`, connections, requests: reqs, overallRate: rate, duration: d, timeout: 30 });
  await run(2);
  const t0 = threadTicks(pid);
  const r = await run(duration);
  const t1 = threadTicks(pid);
  const n = r.requests.total;
  const per = (ticks) => ((ticks / CLK_TCK) * 1e6) / Math.max(1, n);
  const rows = Object.keys(t1)
    .map((k) => [k, per(t1[k] - (t0[k] ?? 0))])
    .filter(([, v]) => v >= 0.5)
    .sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((a, [, v]) => a + v, 0);
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  const bad = r.non2xx + r.errors + r.timeouts;
  console.log(
    `${server} ${scenario} @${rate}/s: ${n} requests (${r.requests.average} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms${bad ? `, ${bad} bad` : ''})` +
      `  ${total.toFixed(0)} µs CPU/req  [${rows.map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ')}]  peak RSS ${hwm ? (Number(hwm[1]) / 1024).toFixed(0) : '?'} MB  load ${os.loadavg()[0].toFixed(1)}`,
  );
} finally {
  s.child.kill('SIGTERM');
  await Promise.race([s.exited, new Promise((r) => setTimeout(r, 10_000))]);
  if (s.child.exitCode === null) s.child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
}
