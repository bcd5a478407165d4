// bench/smtp: messages/s end to end through the SMTP door — client → filter → sink — with N concurrent
// connections, for the real `atlas-email serve --smtp` and, in the same run, for the same door with
// scanning switched off (bench/smtp/passthrough.mjs). The ratio is the share of throughput the scan costs;
// the pass-through figure is the door's own ceiling (SMTP in, SMTP out).
// Usage: npm run bench:smtp [-- --messages N] [--connections 1,10,32] [--auth] [--modes pass,scan] [--cpu-prof DIR]
// --cpu-prof DIR writes a V8 CPU profile of each filter process (and its workers) into DIR.
// Messages: corpus messages up to 256 KB when ../shared/corpus exists, else the test fixtures; each one is
// made unique (a line appended to its body) so the verdict cache cannot answer for it.
// Sender authentication is off unless --auth: it waits on DNS, which bench/auth measures on its own.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { SMTPServer } from 'smtp-server';
import { flag, hasFlag, numberFlag } from '../lib/args.mjs';
import { corpusFiles, root, spread } from '../lib/corpus.mjs';

const perRun = numberFlag('messages', 6000);
const connectionsList = String(flag('connections', '1,10,32')).split(',').map(Number);
const withAuth = hasFlag('auth');
const modes = String(flag('modes', 'pass,scan')).split(',');
const profileDir = flag('cpu-prof', undefined);
const FILTER_PORT = 12580;
const SINK_PORT = 12581;
const MAX_BYTES = 256 * 1024;
const SAMPLE = 500;

// ---- messages ----------------------------------------------------------------------------------------
function sampleMessages() {
  const files = corpusFiles();
  const from = files.length ? 'corpus' : 'fixtures';
  if (!files.length) {
    const fx = path.join(root, 'test/fixtures');
    for (const d of [fx, path.join(fx, 'rules'), path.join(fx, 'smtp')])
      if (existsSync(d)) for (const f of readdirSync(d)) if (f.endsWith('.eml')) files.push({ path: path.join(d, f), size: statSync(path.join(d, f)).size });
  }
  const usable = files.filter((f) => f.size > 0 && f.size <= MAX_BYTES);
  // SMTP wants CRLF; corpus files may carry bare LF.
  const messages = spread(usable, SAMPLE).map((f) => Buffer.from(readFileSync(f.path, 'latin1').replace(/\r?\n/g, '\r\n'), 'latin1'));
  return { from, messages };
}

// ---- sink: the next hop, answering 250 at once --------------------------------------------------------
function startSink() {
  let received = 0;
  const server = new SMTPServer({
    logger: false,
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    disableReverseLookup: true,
    onData(stream, _s, cb) {
      stream.on('data', () => {});
      stream.on('end', () => {
        received++;
        cb(null, 'Ok');
      });
    },
  });
  return new Promise((resolve) =>
    server.listen(SINK_PORT, '127.0.0.1', () => resolve({ received: () => received, close: () => new Promise((r) => server.close(r)) })),
  );
}

// ---- the filter process --------------------------------------------------------------------------------
function canConnect(port) {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

async function startFilter(mode, work) {
  const cfg = path.join(work, 'config.yaml');
  writeFileSync(cfg, `auth:\n  enabled: ${withAuth}\nsmtp:\n  maxClients: 200\n  quarantineDir: ${path.join(work, 'quarantine')}\n`);
  const args =
    mode === 'scan'
      ? [path.join(root, 'dist/cli/index.js'), 'serve', '--no-http', '--smtp', `127.0.0.1:${FILTER_PORT}`, '--next-hop', `127.0.0.1:${SINK_PORT}`, '--config', cfg, '--db', path.join(work, 'atlas.db')]
      : [path.join(root, 'bench/smtp/passthrough.mjs'), String(FILTER_PORT), String(SINK_PORT)];
  const nodeArgs = profileDir ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(profileDir)] : [];
  const child = spawn(process.execPath, [...nodeArgs, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  for (let i = 0; !(await canConnect(FILTER_PORT)); i++) {
    if (child.exitCode !== null || i > 300) throw new Error(`filter (${mode}) did not start:\n${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, log: () => err };
}

function cpuSeconds(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

// ---- load --------------------------------------------------------------------------------------------
async function load(messages, total, connections, seq) {
  const lat = [];
  let next = 0;
  const codes = { 250: 0, 550: 0, other: 0 };
  const one = async () => {
    const conn = new SMTPConnection({ host: '127.0.0.1', port: FILTER_PORT, ignoreTLS: true, allowInternalNetworkInterfaces: true, socketTimeout: 60_000 });
    await new Promise((res, rej) => (conn.once('error', rej), conn.connect(() => res())));
    while (next < total) {
      const i = next++;
      const base = messages[i % messages.length];
      const raw = Buffer.concat([base, Buffer.from(`\r\nbench-seq ${seq.n++}\r\n`)]);
      const t = process.hrtime.bigint();
      await new Promise((res) =>
        conn.send({ from: 'bench@example.org', to: ['rcpt@example.net'] }, raw, (e) => {
          // 550 is a verdict (reject), not a failure; anything else that is not 250 is one.
          const code = e ? e.responseCode : 250;
          if (code === 250 || code === 550) codes[code]++;
          else codes.other++;
          res();
        }),
      );
      lat.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    conn.quit();
  };
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: connections }, one));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
  return { rate: total / secs, secs, codes, p50: q(0.5), p99: q(0.99) };
}

// ---- main --------------------------------------------------------------------------------------------
const { from, messages } = sampleMessages();
const avg = messages.reduce((a, m) => a + m.length, 0) / messages.length;
console.log(`bench/smtp: ${messages.length} ${from} messages (avg ${(avg / 1024).toFixed(1)} KB), ${perRun} per run, auth ${withAuth ? 'on' : 'off'}`);
console.log(`node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, load average ${os.loadavg()[0].toFixed(1)}`);
const work = mkdtempSync(path.join(os.tmpdir(), 'atlas-bench-smtp-'));
const sink = await startSink();
const seq = { n: 0 };
const rows = [];
try {
  for (const mode of modes) {
    const f = await startFilter(mode, work);
    if (mode === 'scan') {
      const cls = /classifier: [^\n]*/.exec(f.log());
      if (cls) console.log(cls[0]);
    }
    try {
      await load(messages, Math.min(500, perRun), 4, seq); // warm-up: JIT, pools, caches of rules
      for (const c of connectionsList) {
        const before = sink.received();
        const cpu0 = cpuSeconds(f.child.pid);
        const own0 = process.cpuUsage();
        const r = await load(messages, perRun, c, seq);
        const cores = (cpuSeconds(f.child.pid) - cpu0) / r.secs;
        const own = process.cpuUsage(own0);
        const delivered = sink.received() - before;
        rows.push({
          mode,
          connections: c,
          'msg/s': Math.round(r.rate),
          'p50 ms': +r.p50.toFixed(2),
          'p99 ms': +r.p99.toFixed(2),
          'filter cores': +cores.toFixed(2),
          // CPU the filter process spent per message: steadier than msg/s on a shared machine.
          'filter CPU ms/msg': +((cores * r.secs * 1000) / perRun).toFixed(3),
          // The bench's own client and sink share the cores with the filter: their cost, per message.
          'client+sink CPU ms/msg': +((own.user + own.system) / 1000 / perRun).toFixed(3),
          'replied 250': r.codes[250],
          'replied 550': r.codes[550],
          'other replies': r.codes.other,
          'sink got': delivered,
        });
      }
    } finally {
      f.child.kill('SIGTERM');
      await new Promise((r) => f.child.once('exit', r));
    }
  }
} finally {
  await sink.close();
  rmSync(work, { recursive: true, force: true });
}
console.table(rows);
for (const c of modes.length === 2 ? connectionsList : []) {
  const p = rows.find((r) => r.mode === 'pass' && r.connections === c);
  const s = rows.find((r) => r.mode === 'scan' && r.connections === c);
  console.log(`connections ${c}: scan ${s['msg/s']} msg/s vs pass-through ${p['msg/s']} msg/s → ratio ${(s['msg/s'] / p['msg/s']).toFixed(2)}`);
}
