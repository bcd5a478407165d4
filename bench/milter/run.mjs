// bench/milter: messages/s through a private Postfix with the atlas-email milter, against the same
// Postfix with no milter, side by side in one run. Counts a message done when it lands in the Maildir.
// Usage: npm run bench:milter [-- --messages N --connections C]   (root: Postfix's master runs as root)
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import { numberFlag } from '../lib/args.mjs';
import { corpusDir, root } from '../lib/corpus.mjs';

const N = numberFlag('messages', 1000);
const C = numberFlag('connections', 4);
const PF_SMTP = 13585;
const PF_REINJECT = 13586;
const MILTER = 13592;
const dir = path.join(os.tmpdir(), `atlas-bench-milter-${process.pid}`);
const script = path.join(root, 'test/integration/postfix.sh');
const inbox = path.join(dir, 'mail/catchall/new');

function pf(cmd, milters) {
  const r = spawnSync('bash', [script, cmd], {
    env: { ...process.env, PF_DIR: dir, PF_SMTP_PORT: String(PF_SMTP), PF_REINJECT_PORT: String(PF_REINJECT), PF_MILTERS: milters, PF_CONTENT_FILTER: '' },
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`postfix.sh ${cmd}: ${r.stderr}`);
}

/** Ham from the corpus (so most mail is delivered, as in real traffic), or a fixture when absent. */
function messages() {
  const hamDir = path.join(corpusDir, 'spamassassin/ham');
  const files = existsSync(hamDir) ? readdirSync(hamDir).sort().slice(0, 400).map((f) => path.join(hamDir, f)) : [path.join(root, 'test/fixtures/ham-plain.eml')];
  const bodies = files.map((f) => readFileSync(f, 'latin1').replace(/^From .*\r?\n/, '')).filter((t) => t.length < 200_000);
  return Array.from({ length: N }, (_, i) => bodies[i % bodies.length].replace(/^Message-ID:.*$/im, `Message-ID: <bench-${i}-${Date.now()}@bench.example>`));
}

async function send(raws) {
  let next = 0;
  const failures = [];
  const worker = async () => {
    const conn = new SMTPConnection({ host: '127.0.0.1', port: PF_SMTP, ignoreTLS: true, socketTimeout: 120_000 });
    await new Promise((res, rej) => {
      conn.once('error', rej);
      conn.connect(res);
    });
    while (next < raws.length) {
      const raw = raws[next++];
      await new Promise((res) => conn.send({ from: 'bench@example.org', to: ['someone@test.local'] }, raw, (err) => (err && failures.push(err.response ?? err.message), res())));
    }
    conn.quit();
  };
  await Promise.all(Array.from({ length: C }, worker));
  return failures;
}

async function run(label, withMilter) {
  pf('clean', '');
  pf('start', withMilter ? `inet:127.0.0.1:${MILTER}` : '');
  const raws = messages();
  const t0 = performance.now();
  const failures = await send(raws);
  const accepted = N - failures.length;
  const acceptedAt = performance.now();
  while ((existsSync(inbox) ? readdirSync(inbox).length : 0) < accepted) {
    if (performance.now() - t0 > 300_000) throw new Error('deliveries stalled');
    await new Promise((r) => setTimeout(r, 100));
  }
  const s = (performance.now() - t0) / 1000;
  return { path: label, messages: N, refused: failures.length, 'SMTP accept s': ((acceptedAt - t0) / 1000).toFixed(2), 'delivered s': s.toFixed(2), 'msgs/s': (N / s).toFixed(0) };
}

if (process.getuid?.() !== 0) {
  console.error('bench/milter needs root: the private Postfix master runs as root');
  process.exit(2);
}
// Without the sender-authentication stage: this sandbox has no DNS, so SPF lookups for the corpus senders
// would wait out their timeouts (bench:auth measures that stage on its own).
const configFile = path.join(os.tmpdir(), `atlas-bench-milter-${process.pid}.yaml`);
writeFileSync(configFile, 'auth:\n  enabled: false\n');
const filter = spawn(
  process.execPath,
  [path.join(root, 'dist/cli/index.js'), 'serve', '--no-http', '--milter', `127.0.0.1:${MILTER}`, '--config', configFile, '--db', path.join(os.tmpdir(), `atlas-bench-milter-${process.pid}.db`)],
  { stdio: ['ignore', 'ignore', 'pipe'] },
);
let log = '';
filter.stderr.on('data', (d) => (log += d));
while (!log.includes('milter listening on')) {
  if (filter.exitCode !== null) throw new Error(log);
  await new Promise((r) => setTimeout(r, 100));
}
try {
  const alone = await run('Postfix alone', false);
  const milter = await run('Postfix + atlas-email milter', true);
  console.log(`atlas-email bench/milter — ${N} messages over ${C} SMTP connections, node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model}`);
  console.table([alone, milter]);
  console.log(`ratio (with milter / alone): ${(Number(milter['msgs/s']) / Number(alone['msgs/s'])).toFixed(2)}`);
} finally {
  filter.kill('SIGTERM');
  pf('clean', '');
}
