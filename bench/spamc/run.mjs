// bench/spamc: messages/s and latency through the SPAMC door (`atlas-email serve --spamd`) beside
// SpamAssassin's own spamd, on the same corpus messages, in the same run, at concurrency 1 and 8.
// Both servers get the same SYMBOLS request with Content-length (what spamc -y sends), one per connection.
// Usage: npm run bench:spamc [-- --messages N] [--model FILE] [--no-peer]
// Without --model (and without models/default.model) the bench trains a throw-away model first, on corpus
// messages outside the measured sample and only from sources whose licence allows it (not phishing-pot),
// so the door runs with its classifier as in production.
// Needs root for the peer (spamd drops to debian-spamd); install it with
//   apt-get install -y --no-install-recommends spamassassin spamd spamc
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { flag, hasFlag, numberFlag } from '../lib/args.mjs';
import { corpusFiles, requireCorpus, root, spread } from '../lib/corpus.mjs';

const wanted = numberFlag('messages', 400);
let model = flag('model', undefined);
const withPeer = !hasFlag('no-peer');
const ATLAS_PORT = 14784;
const PEER_PORT = 14783;
/** peers.md measured spamd without its 500 KB spamc default; messages above it are skipped for both. */
const MAX_BYTES = 500 * 1024;
const CONCURRENCY = [1, 8];
const WARMUP = 16;

requireCorpus();

// The same messages for both servers: an even stride over every labelled corpus file, so each source
// and both classes are represented in proportion.
const nonEmpty = corpusFiles().filter((f) => f.size > 0);
const all = nonEmpty.filter((f) => f.size <= MAX_BYTES);
const skipped = nonEmpty.length - all.length;
const messages = spread(all, wanted).map((m) => ({ label: m.label, path: m.path, raw: readFileSync(m.path) }));
const bytes = messages.reduce((a, m) => a + m.raw.length, 0);

const work = mkdtempSync(path.join(os.tmpdir(), 'atlas-bench-spamc-'));
chmodSync(work, 0o755);

function spamdRequest(port, raw) {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    const chunks = [];
    sock.setTimeout(120_000, () => sock.destroy(new Error('timeout')));
    // One write, then half-close, as spamc does it (two small writes would meet Nagle and delayed ACKs).
    sock.on('connect', () => sock.end(Buffer.concat([Buffer.from(`SYMBOLS SPAMC/1.5\r\nUser: bench\r\nContent-length: ${raw.length}\r\n\r\n`), raw])));
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', reject);
    sock.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const status = /^SPAMD\/[\d.]+ (\d+) /.exec(text);
      const spam = /\r\nSpam: (True|False) ; (-?[\d.]+) \/ (-?[\d.]+)\r\n/.exec(text);
      if (!status || status[1] !== '0' || !spam) return reject(new Error(`bad reply: ${JSON.stringify(text.slice(0, 120))}`));
      resolve(spam[1] === 'True');
    });
  });
}

async function ping(port) {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    let data = '';
    sock.setTimeout(2000, () => sock.destroy());
    sock.on('connect', () => sock.end('PING SPAMC/1.5\r\n\r\n'));
    sock.on('data', (c) => (data += c));
    sock.on('error', () => resolve(false));
    sock.on('close', () => resolve(data.startsWith('SPAMD/1.5 0 PONG')));
  });
}

async function waitUp(port, what, seconds) {
  for (let i = 0; i < seconds * 4; i++) {
    if (await ping(port)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} did not answer PING on ${port} within ${seconds} s`);
}

/** CPU seconds used so far by a process and all its descendants (spamd forks its children). */
function cpuSeconds(pid) {
  const hz = 100; // USER_HZ on Linux
  const stats = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      // utime + stime + the times of its children already reaped (spamd recycles children as it goes).
      stats.set(Number(d), { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / hz });
    } catch {
      // the process ended while we read /proc
    }
  }
  const tree = new Set([pid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [p, s] of stats) if (!tree.has(p) && tree.has(s.ppid)) (tree.add(p), (grew = true));
  }
  let cpu = 0;
  let pssKb = 0;
  for (const p of tree) {
    cpu += stats.get(p)?.cpu ?? 0;
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p}/smaps_rollup`, 'utf8'));
      if (m) pssKb += Number(m[1]);
    } catch {
      // gone or not readable
    }
  }
  return { cpu, pssMiB: pssKb / 1024 };
}

async function measure(name, port, pid, concurrency) {
  for (let i = 0; i < WARMUP; i++) await spamdRequest(port, messages[i % messages.length].raw);
  const lat = [];
  let next = 0;
  let errors = 0;
  const flagged = { ham: 0, spam: 0 };
  const before = cpuSeconds(pid);
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < messages.length) {
        const m = messages[next++];
        const s = performance.now();
        try {
          if (await spamdRequest(port, m.raw)) flagged[m.label]++;
        } catch (e) {
          errors++;
          if (errors <= 3) console.error(`${name}: ${e.message}`);
        }
        lat.push(performance.now() - s);
      }
    }),
  );
  const wall = (performance.now() - t0) / 1000;
  const after = cpuSeconds(pid);
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
  const hams = messages.filter((m) => m.label === 'ham').length;
  const spams = messages.length - hams;
  const serverCores = (after.cpu - before.cpu) / wall;
  return {
    server: name,
    conc: concurrency,
    msgs: messages.length,
    'msgs/s': +(messages.length / wall).toFixed(1),
    'p50 ms': +q(0.5).toFixed(1),
    'p99 ms': +q(0.99).toFixed(1),
    'server cores': +serverCores.toFixed(2),
    'msgs/core-s': +(messages.length / Math.max(0.01, after.cpu - before.cpu)).toFixed(1),
    'PSS MiB': Math.round(after.pssMiB),
    'spam caught': `${flagged.spam}/${spams}`,
    'ham flagged': `${flagged.ham}/${hams}`,
    errors,
  };
}

/** Sources whose terms allow training (../shared/corpus/README.md); phishing-pot is evaluation-only. */
const TRAINABLE = ['spamassassin', 'csdmc2010', 'nazario-phishing'];
const TRAIN_LIMIT = 4000;

async function trainThrowawayModel() {
  const { emptyModel, serializeModel, trainMessage } = await import('../../dist/core/classify.js');
  const sampled = new Set(messages.map((m) => m.path));
  const pool = all.filter((m) => !sampled.has(m.path) && TRAINABLE.some((s) => m.path.includes(`${path.sep}${s}${path.sep}`)));
  const step = Math.max(1, pool.length / TRAIN_LIMIT);
  const picked = [];
  for (let i = 0; i < pool.length; i += step) picked.push(pool[Math.floor(i)]);
  // Online training learns the order too: a seeded shuffle mixes sources and classes.
  let seed = 1729;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let i = picked.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [picked[i], picked[j]] = [picked[j], picked[i]];
  }
  const m = emptyModel();
  const t0 = performance.now();
  for (const f of picked) trainMessage(m, new Uint8Array(readFileSync(f.path)), f.label);
  const n = picked.length;
  const file = path.join(work, 'bench.model');
  writeFileSync(file, serializeModel(m));
  console.log(`trained a throw-away model on ${n} messages outside the sample (${TRAINABLE.join(', ')}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return file;
}

function startAtlas() {
  // Network checks off, as spamd --local: SPF/DKIM/DMARC need DNS, which this bench does not measure.
  const config = path.join(work, 'atlas.yaml');
  writeFileSync(config, 'auth:\n  enabled: false\n');
  const args = ['dist/cli/index.js', 'serve', '--no-http', '--spamd', `127.0.0.1:${ATLAS_PORT}`, '--db', path.join(work, 'atlas.db'), '--config', config];
  if (model) args.push('--model', model);
  // The verdict cache is off so that the second concurrency pass is scanned again, as spamd scans it.
  const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ATLAS_CACHE_ENABLED: 'false' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout.on('data', (c) => (text += c));
  child.stderr.on('data', (c) => (text += c));
  return { child, log: () => text };
}

function startPeer() {
  if (spawnSync('which', ['spamd']).status !== 0) {
    console.error('spamd not installed: apt-get install -y --no-install-recommends spamassassin spamd spamc (peer skipped)');
    return null;
  }
  // A private site config: Debian's files plus the offline settings from peers.md, so /etc is untouched.
  const site = path.join(work, 'site');
  spawnSync('mkdir', ['-p', site]);
  for (const f of readdirSync('/etc/spamassassin')) {
    if (/\.(pre|cf)$/.test(f)) copyFileSync(path.join('/etc/spamassassin', f), path.join(site, f));
  }
  writeFileSync(
    path.join(site, 'zz-atlas-bench.cf'),
    ['dns_available no', 'skip_rbl_checks 1', 'use_razor2 0', 'use_pyzor 0', 'use_dcc 0', 'bayes_auto_learn 0', ''].join('\n'),
  );
  chmodSync(site, 0o755);
  const pidfile = path.join(work, 'spamd.pid');
  const args = [
    '-d',
    '--local',
    '--nouser-config',
    `--listen=127.0.0.1:${PEER_PORT}`,
    '--allowed-ips=127.0.0.1',
    '--max-children=5',
    '--min-children=5',
    `--pidfile=${pidfile}`,
    `--siteconfigpath=${site}`,
  ];
  if (process.getuid?.() === 0) args.push('--username=debian-spamd');
  // spamd keeps the caller's stderr open after forking: its output goes to a file.
  const logFile = path.join(work, 'spamd.log');
  const r = spawnSync('sh', ['-c', `spamd "$@" >'${logFile}' 2>&1`, 'spamd', ...args]);
  if (r.status !== 0) throw new Error(`spamd failed to start: ${readFileSync(logFile, 'utf8').slice(-500)}`);
  return { pidfile, logFile };
}

async function stopPeer(peer) {
  if (!peer || !existsSync(peer.pidfile)) return;
  const pid = Number(readFileSync(peer.pidfile, 'utf8').trim());
  if (!pid) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 40; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

async function stopAtlas(atlas) {
  if (!atlas || atlas.child.exitCode !== null) return;
  const done = new Promise((r) => atlas.child.once('exit', r));
  atlas.child.kill('SIGTERM');
  const t = setTimeout(() => atlas.child.kill('SIGKILL'), 15_000);
  await done;
  clearTimeout(t);
}

let atlas;
let peer;
const rows = [];
try {
  console.log(`bench:spamc — ${messages.length} corpus messages (${(bytes / 1e6).toFixed(1)} MB; ${skipped} corpus files over 500 KB skipped)`);
  console.log(`node ${process.version}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), ${os.platform()} ${os.release()}, load average ${os.loadavg()[0].toFixed(1)}`);
  if (!model && !existsSync(path.join(root, 'models/default.model'))) model = await trainThrowawayModel();
  atlas = startAtlas();
  await waitUp(ATLAS_PORT, 'atlas-email', 60).catch((e) => {
    throw new Error(`${e.message}\n${atlas.log()}`);
  });
  const classifier = /classifier: off/.test(atlas.log()) ? 'off (no model file: rules only)' : `on (${model ?? 'models/default.model'})`;
  console.log(`atlas-email serve --spamd 127.0.0.1:${ATLAS_PORT} (pid ${atlas.child.pid}), classifier ${classifier}, verdict cache off, auth (DNS) checks off`);
  if (withPeer) {
    peer = startPeer();
    if (peer) {
      await waitUp(PEER_PORT, 'spamd', 180);
      console.log(`spamd --local on 127.0.0.1:${PEER_PORT} (pid ${readFileSync(peer.pidfile, 'utf8').trim()}), 5 children, network tests off`);
    }
  }
  for (const c of CONCURRENCY) {
    rows.push(await measure('atlas-email', ATLAS_PORT, atlas.child.pid, c));
    if (peer) rows.push(await measure('spamd', PEER_PORT, Number(readFileSync(peer.pidfile, 'utf8').trim()), c));
  }
  console.table(rows);
  console.log(`load average at the end: ${os.loadavg()[0].toFixed(1)} (other work on the machine shares the same cores)`);
  if (peer) {
    for (const c of CONCURRENCY) {
      const a = rows.find((r) => r.server === 'atlas-email' && r.conc === c);
      const s = rows.find((r) => r.server === 'spamd' && r.conc === c);
      console.log(
        `concurrency ${c}: atlas-email/spamd throughput ${(a['msgs/s'] / s['msgs/s']).toFixed(1)}x, ` +
          `p99 ${(s['p99 ms'] / a['p99 ms']).toFixed(1)}x lower, per server core-second ${(a['msgs/core-s'] / s['msgs/core-s']).toFixed(1)}x`,
      );
    }
  }
} finally {
  await stopAtlas(atlas);
  await stopPeer(peer);
  rmSync(work, { recursive: true, force: true });
}
