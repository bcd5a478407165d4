// bench/smtp: messages/s end to end through the SMTP door — client → filter → sink — with N concurrent
// connections, for the real `atlas-email serve --smtp` and, in the same run, for the same door with
// scanning switched off (bench/smtp/passthrough.mjs). The ratio is the share of throughput the scan costs;
// the pass-through figure is the door's own ceiling (SMTP in, SMTP out).
// Usage: npm run bench:smtp [-- --messages N] [--connections 1,10,32] [--warmup S] [--auth] [--modes pass,scan] [--cpu-prof DIR]
// --cpu-prof DIR writes a V8 CPU profile of each filter process (and its workers) into DIR.
// Each filter first runs --warmup seconds (default 10) at the largest connection count, untimed: for its
// first seconds V8 compiles the hot paths of three isolates (the main thread and two workers) on its
// helper threads, which took about a third of the filter's CPU then (perf, bench/README.md). A filter
// Postfix keeps running for days pays that once; the rows measure what follows. The warm-up's own
// rate and CPU per message are printed, so the start-up cost stays visible.
// Messages: corpus messages up to 256 KB when ../shared/corpus exists, else the test fixtures; each one is
// made unique (a line appended to its body) so the verdict cache cannot answer for it.
// Sender authentication is off unless --auth: it waits on DNS, which bench/auth measures on its own.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { SmtpClientConnection } from '../../dist/ingress/smtp/client.js';
import { flag, hasFlag, numberFlag } from '../lib/args.mjs';
import { corpusFiles, root, spread } from '../lib/corpus.mjs';

const perRun = numberFlag('messages', 10000);
const warmupSeconds = numberFlag('warmup', 10);
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
// A minimal SMTP server on a raw socket: it speaks just enough (EHLO, PIPELINING, MAIL/RCPT/DATA, QUIT) to
// take each message and count it once its terminator arrives. It stands in for Postfix's 10026 listener;
// smtp-server here cost as much CPU per message as the door's own receiving side, CPU the filter then
// lacked on the two shared cores (bench/README.md, smtp, session 2).
const TERMINATOR = Buffer.from('\r\n.\r\n');
function startSink() {
  let received = 0;
  const server = net.createServer((sock) => {
    sock.setNoDelay(true);
    sock.write('220 sink ESMTP\r\n');
    let inData = false;
    let pending = Buffer.alloc(0);
    sock.on('data', (chunk) => {
      let buf = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      let out = '';
      for (;;) {
        if (inData) {
          // The terminator is CRLF.CRLF; the CRLF before the dot belongs to the DATA line when the message is empty.
          const end = buf.indexOf(TERMINATOR);
          if (end < 0) {
            buf = buf.subarray(Math.max(0, buf.length - 4));
            break;
          }
          buf = buf.subarray(end + TERMINATOR.length);
          inData = false;
          received++;
          out += '250 2.0.0 Ok: queued\r\n';
          continue;
        }
        const nl = buf.indexOf(10);
        if (nl < 0) break;
        const cmd = buf.toString('latin1', 0, Math.min(4, nl)).toUpperCase();
        buf = buf.subarray(nl + 1);
        if (cmd === 'EHLO') out += '250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE\r\n';
        else if (cmd === 'DATA') {
          out += '354 go ahead\r\n';
          inData = true;
          // So that an empty message (a lone ".\r\n") still matches CRLF.CRLF.
          buf = Buffer.concat([Buffer.from('\r\n'), buf]);
        } else if (cmd === 'QUIT') {
          sock.end(out + '221 bye\r\n');
          return;
        } else out += '250 ok\r\n';
      }
      pending = buf;
      if (out) sock.write(out);
    });
    sock.on('error', () => {});
  });
  return new Promise((resolve) =>
    server.listen(SINK_PORT, '127.0.0.1', () => resolve({ received: () => received, close: () => new Promise((r) => server.close(r)) })),
  );
}

// ---- the filter process --------------------------------------------------------------------------------
function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
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

/** CPU seconds of the whole process, or with `mainThread` of its main thread only (its tid is the pid). */
function cpuSeconds(pid, mainThread = false) {
  const f = readFileSync(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

// ---- load --------------------------------------------------------------------------------------------
/** Sends `total` messages over `connections` connections, or as many as fit before `untilMs` (Date.now) if given. */
async function load(messages, total, connections, seq, untilMs = Infinity) {
  const lat = [];
  let next = 0;
  const codes = { 250: 0, 550: 0, other: 0 };
  // Each connection sends its messages one after another, as one Postfix smtp delivery agent does, with
  // the client the filter itself re-injects with (pipelined envelope; Postfix's client pipelines too).
  const open = () => SmtpClientConnection.open({ host: '127.0.0.1', port: FILTER_PORT, name: 'bench.client', timeoutMs: 60_000 });
  // Postfix goes on over the same connection after a 550 (RSET); this client drops it instead. A few
  // connections opened ahead stand in, so a reject does not cost the next message smtp-server's 100 ms
  // early-talker pause before its greeting, which Postfix would not pay either.
  const spares = [];
  const spare = () => {
    const p = open();
    p.catch(() => {});
    spares.push(p);
  };
  for (let i = 0; i < Math.min(4, connections); i++) spare();
  const one = async () => {
    let conn = await open();
    while (next < total && Date.now() < untilMs) {
      const i = next++;
      const base = messages[i % messages.length];
      const raw = Buffer.concat([base, Buffer.from(`\r\nbench-seq ${seq.n++}\r\n`)]);
      const t = process.hrtime.bigint();
      try {
        await conn.send({ from: 'bench@example.org', to: ['rcpt@example.net'] }, raw);
        codes[250]++;
        lat.push(Number(process.hrtime.bigint() - t) / 1e6);
      } catch (e) {
        // Latency is the message's, to its reply: the reconnect below is this client's doing, and each
        // new connection waits smtp-server's fixed 100 ms early-talker pause before the greeting.
        lat.push(Number(process.hrtime.bigint() - t) / 1e6);
        // 550 is a verdict (reject), not a failure; anything else that is not 250 is one. The client drops
        // a connection after any refusal, so the next message goes over a new one.
        if (e.responseCode === 550) codes[550]++;
        else codes.other++;
        conn.destroy();
        const next = spares.shift() ?? open();
        spare();
        conn = await next;
      }
    }
    conn.quit();
  };
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: connections }, one));
  for (const p of spares.splice(0)) p.then((c) => c.destroy(), () => {});
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
  return { rate: lat.length / secs, secs, sent: lat.length, codes, p50: q(0.5), p99: q(0.99) };
}

// ---- main --------------------------------------------------------------------------------------------
const { from, messages } = sampleMessages();
const avg = messages.reduce((a, m) => a + m.length, 0) / messages.length;
console.log(`bench/smtp: ${messages.length} ${from} messages (avg ${(avg / 1024).toFixed(1)} KB), ${perRun} per run after a ${warmupSeconds} s warm-up, auth ${withAuth ? 'on' : 'off'}`);
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
      const warm0 = cpuSeconds(f.child.pid);
      const w = await load(messages, Infinity, Math.max(...connectionsList), seq, Date.now() + warmupSeconds * 1000);
      console.log(
        `${mode} warm-up: ${w.sent} messages in ${w.secs.toFixed(1)} s (${Math.round(w.rate)} msg/s), filter CPU ${(((cpuSeconds(f.child.pid) - warm0) * 1000) / Math.max(1, w.sent)).toFixed(3)} ms/msg`,
      );
      for (const c of connectionsList) {
        const before = sink.received();
        const cpu0 = cpuSeconds(f.child.pid);
        const main0 = cpuSeconds(f.child.pid, true);
        const own0 = process.cpuUsage();
        const r = await load(messages, perRun, c, seq);
        const cores = (cpuSeconds(f.child.pid) - cpu0) / r.secs;
        const own = process.cpuUsage(own0);
        const main = cpuSeconds(f.child.pid, true) - main0;
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
          // The main thread does all the SMTP work and can use one core at most: its share bounds msg/s.
          'main thread ms/msg': +((main * 1000) / perRun).toFixed(3),
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
