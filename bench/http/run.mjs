// bench/http: the HTTP door (`atlas-email serve --http`) under autocannon, in three scenarios:
//   cache-hit  one message repeated: after the first, every answer comes from the verdict cache
//   full-scan  corpus messages, each made unique (a line appended to the body): every request is a miss
//   replay     realistic traffic: unique ham, and spam campaigns resent to many recipients with small
//              variations (new To/Message-ID: same content key, a cache hit; a per-recipient greeting
//              in 30% of copies: a miss)
// Each scenario gets a fresh server process. It runs at full speed (peak), then at half the peak rate,
// and prints req/s, p50/p99 latency, the server's CPU (cores) and its peak RSS.
// The load client runs in this process and shares the 2 cores with the server. With rspamd installed,
// Rspamd 3.4 answers the same requests on /checkv2 in the same run, for a side-by-side ratio.
// Usage: npm run bench:http [-- --duration S] [--warmup S] [--connections N] [--scenario cache-hit,full-scan,replay] [--target node|deno]
//                           [--model FILE] [--config FILE] [--max-bytes N]
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { hasRspamd, startRspamd } from './rspamd-peer.mjs';
import { corpusFiles } from '../lib/corpus.mjs';
import { spawnListening } from '../lib/server.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));
const corpus = process.env.ATLAS_CORPUS ?? path.join(root, '../shared/corpus');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const duration = Number(arg('--duration', 10));
const connections = Number(arg('--connections', 32));
/** HTTP/1.1 pipelining depth; 1 (none) is what mail clients do, more shows the server without client overhead. */
const pipelining = Number(arg('--pipelining', 1));
const scenarios = arg('--scenario', 'cache-hit,full-scan,replay').split(',');
const model = arg('--model', undefined);
const configFile = arg('--config', undefined);
/** node: `atlas-email serve`; deno: the edge entry under `deno serve` (src/edge/main.ts), same scenarios. */
const target = arg('--target', 'node');
/** peers.md measured Rspamd and spamd without messages over 500 KB; the same cut keeps figures comparable. */
const maxBytes = Number(arg('--max-bytes', 500 * 1024));
/** Rspamd 3.4 on the same requests, connections and machine, in the same run (--no-peer to skip). */
const withPeer = !process.argv.includes('--no-peer') && hasRspamd();
const PEER_PORT = 14833;
/**
 * Untimed full-speed run before each measurement. For its first seconds a fresh server spends about a third
 * of its CPU in V8 compiling the hot paths of three isolates (main thread, two workers; perf, bench/README.md
 * smtp); 2 s left much of that inside the timed run of a full scan.
 */
const WARMUP_S = Number(arg('--warmup', 8));
const CLK_TCK = 100;

if (!existsSync(corpus)) {
  console.error(`corpus not found at ${corpus}; set ATLAS_CORPUS`);
  process.exit(2);
}

/** The label's corpus messages up to the size limit, in the corpus walk's fixed order. */
function corpusMessages(label) {
  return corpusFiles()
    .filter((f) => f.label === label && f.size > 0 && f.size <= maxBytes)
    .map((f) => readFileSync(f.path));
}
const ham = corpusMessages('ham');
const spam = corpusMessages('spam');
const all = [...ham, ...spam];

// ---------------------------------------------------------------- the server process

async function startDenoServer() {
  const port = 13590;
  const env = { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1', ...(model ? { ATLAS_MODEL_FILE: model } : {}), ...(configFile ? { ATLAS_CONFIG: configFile } : {}) };
  const args = ['serve', '--quiet', '--host', '127.0.0.1', '--port', String(port), '--allow-read=.', '--allow-env', '--allow-net=127.0.0.1', 'src/edge/main.ts'];
  // Verdict lines go to stdout: ignored here, as a platform's log collector would take them off the path.
  const child = spawn(path.join(root, 'node_modules/.bin/deno'), args, { cwd: root, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => (log += d.toString()));
  const exited = new Promise((r) => child.on('exit', (code, sig) => r(code ?? sig)));
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`deno exited:\n${log}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/v1/health`)).ok) break;
    } catch {
      // not listening yet
    }
    if (i > 600) throw new Error(`deno did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, address: `127.0.0.1:${port}`, exited, log: () => log };
}

/**
 * The shipped defaults without the sender-authentication stage, as the Rspamd peer runs without its
 * SPF/DKIM/DMARC modules (peers.md); bench:auth measures that stage. With it on, this sandbox's DNS
 * decides the figures: its resolver leaves some lookups waiting up to the 1.5 s lookup timeout, and a
 * closed local resolver makes every lookup fail anew (failures are not cached).
 */
function benchConfig(work) {
  const file = path.join(work, 'bench.yaml');
  writeFileSync(file, 'auth:\n  enabled: false\n');
  return file;
}

async function startServer(work) {
  if (target === 'deno') return startDenoServer();
  const args = [path.join(root, 'dist/cli/index.js'), 'serve', '--http', '127.0.0.1:0', '--db', path.join(work, 'atlas.db')];
  if (model) args.push('--model', model);
  args.push('--config', configFile ?? benchConfig(work));
  return spawnListening(args, work);
}

function cpuSeconds(pids) {
  let ticks = 0;
  for (const pid of [pids].flat()) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime + stime, every thread
    } catch {
      // a worker that ended
    }
  }
  return ticks / CLK_TCK;
}

/** Proportional set size summed over processes (rspamd's workers share pages with their parent), MB. */
function pssMb(pids) {
  let kb = 0;
  for (const pid of pids) {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    if (m) kb += Number(m[1]);
  }
  return kb / 1024;
}

function peakRssMb(pid) {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

// ---------------------------------------------------------------- request streams

const CRLF = Buffer.from('\r\n');

/** Where the body starts (after the first empty line), or the end. */
function bodyStart(raw) {
  for (let i = raw.indexOf(10); i >= 0; i = raw.indexOf(10, i + 1)) {
    if (raw[i + 1] === 10) return i + 2;
    if (raw[i + 1] === 13 && raw[i + 2] === 10) return i + 3;
  }
  return raw.length;
}

/** A copy of `raw` whose content key is new: a line appended to the body, as a footer would be. */
function unique(raw, n) {
  return Buffer.concat([raw, CRLF, Buffer.from(`-- ${n}`), CRLF]);
}

/** Spam campaigns: a few seeds, resent with new recipients; popular campaigns send more (Zipf). */
function replayStream() {
  const seeds = [];
  const stride = Math.max(1, Math.floor(spam.length / 40));
  for (let i = 0; i < spam.length && seeds.length < 40; i += stride) {
    const raw = spam[i];
    seeds.push({ raw, body: bodyStart(raw) });
  }
  const weights = seeds.map((_, i) => 1 / (i + 1));
  const total = weights.reduce((a, b) => a + b, 0);
  let seq = 0;
  let hamAt = 0;
  // A fixed pseudo-random sequence, so runs see the same traffic.
  let x = 0x2545f491;
  const rand = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
  return () => {
    seq++;
    if (rand() < 0.4) return unique(ham[hamAt++ % ham.length], seq);
    let r = rand() * total;
    let c = 0;
    while (r > weights[c] && c < seeds.length - 1) r -= weights[c++];
    const { raw, body } = seeds[c];
    const head = Buffer.from(`To: <user${seq}@example.net>\r\nMessage-ID: <${seq}.${c}@campaign.example>\r\n`);
    if (rand() < 0.3) {
      return Buffer.concat([head, raw.subarray(0, body), Buffer.from(`Hello user${seq},\r\n\r\n`), raw.subarray(body)]);
    }
    return Buffer.concat([head, raw]);
  };
}

function requestsFor(name, urlPath = '/v1/check') {
  const base = { method: 'POST', path: urlPath, headers: { 'content-type': 'message/rfc822' } };
  if (name === 'cache-hit') {
    const one = ham.find((m) => m.length > 2_000 && m.length < 8_000) ?? ham[0];
    return { requests: [{ ...base, body: one }], note: `one ${one.length}-byte ham message` };
  }
  if (name === 'full-scan') {
    let n = 0;
    const next = () => unique(all[n % all.length], n++);
    return {
      requests: [{ ...base, body: all[0], setupRequest: (req) => ({ ...req, body: next() }) }],
      note: `${all.length} corpus messages (≤ ${Math.round(maxBytes / 1024)} KB), each request unique`,
    };
  }
  if (name === 'replay') {
    const next = replayStream();
    return {
      requests: [{ ...base, body: all[0], setupRequest: (req) => ({ ...req, body: next() }) }],
      note: '40% unique ham, 60% spam from 40 Zipf-weighted campaigns (30% of copies personalised)',
    };
  }
  throw new Error(`unknown scenario ${name}`);
}

// ---------------------------------------------------------------- runs

function load(address, requests, opts) {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), address.slice(address.lastIndexOf(':') + 1)];
  return autocannon({ url: `http://${host}:${port}`, connections, pipelining, requests, timeout: 30, ...opts });
}

async function sourcesOf(address) {
  const res = await fetch(`http://${address}/metrics`);
  // The edge keeps no metrics registry (404): no source mix to show.
  if (!res.ok) return {};
  const text = await res.text();
  const out = {};
  for (const m of text.matchAll(/^atlas_verdicts_total\{action="(\w+)",source="(\w+)"\} (\d+)/gm)) {
    out[m[2]] = (out[m[2]] ?? 0) + Number(m[3]);
  }
  return out;
}

/** Warm-up, a full-speed run, then (withHalf) a run at half that rate; CPU over the full-speed run. */
async function drive(address, requests, pids, withHalf = true) {
  await load(address, requests, { duration: WARMUP_S });
  const cpu0 = cpuSeconds(pids());
  const t0 = performance.now();
  const peak = await load(address, requests, { duration });
  const used = cpuSeconds(pids()) - cpu0;
  const cores = used / ((performance.now() - t0) / 1000);
  const cpuPerReq = (used * 1e6) / Math.max(1, peak.requests.total);
  const rate = Math.max(1, Math.floor(peak.requests.average / 2));
  const half = withHalf ? await load(address, requests, { duration, overallRate: rate }) : null;
  return { peak, half, rate, cores, cpuPerReq };
}

async function measure(name) {
  const work = mkdtempSync(path.join(os.tmpdir(), 'atlas-bench-http-'));
  const server = await startServer(work);
  const pid = server.child.pid;
  try {
    const { requests, note } = requestsFor(name);
    const r = await drive(server.address, requests, () => [pid]);
    const sources = await sourcesOf(server.address);
    const rss = peakRssMb(pid);
    const pss = pssMb([pid]);
    server.child.kill('SIGTERM');
    const code = await server.exited;
    return { name, note, ...r, rss, pss, sources, exit: code };
  } finally {
    if (server.child.exitCode === null) server.child.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  }
}

async function measurePeer(name) {
  const work = mkdtempSync(path.join(os.tmpdir(), 'atlas-bench-rspamd-'));
  chmodSync(work, 0o755);
  const peer = await startRspamd(work, PEER_PORT);
  try {
    const { requests } = requestsFor(name, '/checkv2');
    // Rspamd answers "Connection: close": autocannon reconnects for every request and its latency
    // figures are then not valid, so only throughput and CPU are compared (no half-load run).
    const r = await drive(peer.address, requests, peer.pids, false);
    return { ...r, pss: pssMb(peer.pids()) };
  } finally {
    peer.child.kill('SIGTERM');
    await Promise.race([peer.exited, new Promise((res) => setTimeout(res, 10_000))]);
    if (peer.child.exitCode === null) peer.child.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  }
}

const fmt = (n, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '-');
const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
console.log(`bench/http — node ${process.version}, ${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB`);
console.log(
  `autocannon: ${connections} connections, pipelining ${pipelining}, ${duration} s per run (+${WARMUP_S} s warm-up), client on the same 2 cores`,
);
console.log(`target: ${target === 'deno' ? 'Deno edge entry (deno serve src/edge/main.ts)' : 'atlas-email serve (Node)'}`);
console.log(
  `server: ${model ? `--model ${model}` : 'default model'}, ${configFile ? `--config ${configFile}` : 'default config without the auth stage (no DNS; bench:auth measures it)'}\n`,
);

console.log(
  withPeer
    ? 'peer: Rspamd 3.4 on /checkv2, same requests and connections (network modules off, peers.md); throughput and CPU only\n'
    : 'peer: skipped (--no-peer, or rspamd not installed)\n',
);

const rows = [];
for (const name of scenarios) {
  const r = await measure(name);
  const peer = withPeer ? await measurePeer(name) : null;
  rows.push({ ...r, peer });
  const bad = r.peak.non2xx + r.peak.errors + r.peak.timeouts;
  console.log(`${name}: ${r.note}`);
  console.log(
    `  atlas   peak ${fmt(r.peak.requests.average)} req/s  p50 ${r.peak.latency.p50} ms  p99 ${r.peak.latency.p99} ms  server ${fmt(r.cores, 2)} cores (${fmt(r.cpuPerReq)} µs CPU/req)` +
      `${bad ? `  (${r.peak.non2xx} non-2xx, ${r.peak.errors} errors, ${r.peak.timeouts} timeouts)` : ''}`,
  );
  console.log(`          half ${fmt(r.half.requests.average)} req/s (target ${r.rate})  p50 ${r.half.latency.p50} ms  p99 ${r.half.latency.p99} ms`);
  const total = Object.values(r.sources).reduce((a, b) => a + b, 0);
  const mix = Object.entries(r.sources)
    .map(([src, n]) => `${src} ${fmt((100 * n) / total, 1)}%`)
    .join(', ');
  console.log(`          peak RSS ${fmt(r.rss)} MB (PSS ${fmt(r.pss)} MB) · verdict sources: ${mix} · SIGTERM exit ${r.exit}`);
  if (peer) {
    console.log(
      `  rspamd  peak ${fmt(peer.peak.requests.average)} req/s  server ${fmt(peer.cores, 2)} cores (${fmt(peer.cpuPerReq)} µs CPU/req)  PSS ${fmt(peer.pss)} MB` +
        `${peer.peak.non2xx ? `  (${peer.peak.non2xx} non-2xx)` : ''}  (latency n/a: Rspamd closes each connection)`,
    );
    console.log(
      `  ratio   atlas/rspamd: ${fmt(r.peak.requests.average / peer.peak.requests.average, 1)}× req/s, ${fmt(peer.cpuPerReq / r.cpuPerReq, 1)}× less server CPU per request`,
    );
  }
  console.log('');
}

console.log('| scenario | server | req/s | p50 / p99 ms | server cores | µs CPU/req | half-load req/s | half-load p50 / p99 ms | memory MB |');
console.log('|---|---|---|---|---|---|---|---|---|');
const line = (name, who, x, mem) =>
  console.log(
    `| ${name} | ${who} | ${fmt(x.peak.requests.average)} | ${x.half ? `${x.peak.latency.p50} / ${x.peak.latency.p99}` : 'n/a'} | ${fmt(x.cores, 2)} | ${fmt(x.cpuPerReq)} | ${x.half ? fmt(x.half.requests.average) : 'n/a'} | ${x.half ? `${x.half.latency.p50} / ${x.half.latency.p99}` : 'n/a'} | ${mem} |`,
  );
for (const r of rows) {
  line(r.name, 'atlas-email', r, `RSS peak ${fmt(r.rss)}`);
  if (r.peer) line(r.name, 'rspamd 3.4', r.peer, `PSS ${fmt(r.peer.pss)}`);
}
