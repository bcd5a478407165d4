// bench:backfill — messages/s and peak RSS of `atlas-email backfill` sweeping a 20,000-message folder
// on a private loopback Dovecot, against a 2,000-message folder: memory must stay flat (within 20%).
//
//   npm run bench:backfill                      (root: the Dovecot runs its mail as uid 65534)
//   BENCH_BACKFILL_SIZES=2000,20000 BENCH_BACKFILL_ACTION=move BENCH_BACKFILL_RUNS=1 npm run bench:backfill
//   BENCH_BACKFILL_ACTION=none BENCH_BACKFILL_ARGS="--model /nonexistent" npm run bench:backfill   (rules only)
//
// Messages: the public corpora in ../shared/corpus (every ham and spam file, in a fixed order), each
// copy made distinct (own Message-ID and a trailing body line) so no copy is a verdict-cache hit.
// Without the corpus the project's fixtures stand in, and the bench says so.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { corpusDir, corpusFiles, root } from '../lib/corpus.mjs';

const script = path.join(root, 'test/integration/dovecot.sh');
const cli = path.join(process.env.ATLAS_TEST_DIST ?? path.join(root, 'dist'), 'cli/index.js');
const sizes = (process.env.BENCH_BACKFILL_SIZES ?? '2000,20000').split(',').map(Number);
const action = process.env.BENCH_BACKFILL_ACTION ?? 'move';
const runs = Number(process.env.BENCH_BACKFILL_RUNS ?? 1);
// Extra backfill flags, e.g. "--model /nonexistent" for a rules-only sweep (no classifier).
const extra = (process.env.BENCH_BACKFILL_ARGS ?? '').split(' ').filter(Boolean);
// Ports 15100-15199 belong to the backfill suites and bench.
const port = 15120;
const password = 'bench';

if (process.getuid?.() !== 0) {
  console.error('bench:backfill must run as root (the private Dovecot stores mail as uid 65534)');
  process.exit(1);
}
if (!existsSync(cli)) {
  console.error(`${cli} is missing: npm run build`);
  process.exit(1);
}

function sourceMessages() {
  const files = corpusFiles().map((f) => f.path);
  if (files.length > 0) return { from: `corpus ${corpusDir} (${files.length} files)`, files };
  const fx = path.join(root, 'test/fixtures');
  const fixtures = [
    ...readdirSync(fx).filter((f) => f.endsWith('.eml')).map((f) => path.join(fx, f)),
    ...readdirSync(path.join(fx, 'rules')).filter((f) => f.endsWith('.eml')).map((f) => path.join(fx, 'rules', f)),
  ];
  return { from: `test fixtures (corpus not found at ${corpusDir})`, files: fixtures };
}

function distinct(raw, tag) {
  const text = raw.toString('latin1').replace(/^message-id:.*\r?\n/im, '');
  const nl = text.includes('\r\n') ? '\r\n' : '\n';
  const end = text.endsWith('\n') ? '' : nl;
  return Buffer.from(`Message-ID: <${tag}@bench.atlas>${nl}${text}${end}${nl}copy ${tag}${nl}`, 'latin1');
}

function fill(maildir, files, count, user) {
  let bytes = 0;
  // Interleave the files (stride through the list) so ham and spam mix as in a real inbox.
  const stride = 7919;
  for (let i = 0; i < count; i++) {
    const raw = distinct(readFileSync(files[(i * stride) % files.length]), `${user}-${i}`);
    bytes += raw.length;
    // Named as Dovecot's own delivery names files (size and CRLF size): RFC822.SIZE comes from the name.
    let bare = 0;
    for (let at = raw.indexOf(10); at !== -1; at = raw.indexOf(10, at + 1)) if (at === 0 || raw[at - 1] !== 13) bare++;
    const name = `${1700000000 + i}.M${i}P${process.pid}.bench,S=${raw.length},W=${raw.length + bare}`;
    writeFileSync(path.join(maildir, 'tmp', name), raw, { mode: 0o600 });
    chownSync(path.join(maildir, 'tmp', name), 65534, 65534);
    renameSync(path.join(maildir, 'tmp', name), path.join(maildir, 'new', name));
  }
  return bytes;
}

function runBackfill(args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, 'backfill', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(err) : reject(new Error(`backfill exited ${code}:\n${err}`))));
  });
}

// CPU seconds of the Dovecot instance: its master, its live children, and the children it has reaped
// (each IMAP session is a process that exits at logout).
const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
function dovecotCpuSeconds(dcDir) {
  const master = readFileSync(path.join(dcDir, 'run/master.pid'), 'utf8').trim();
  const fields = (pid) => readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  const m = fields(master);
  // after "(comm) ": [0]=state … [11]=utime [12]=stime [13]=cutime [14]=cstime, [1]=ppid
  let t = Number(m[11]) + Number(m[12]) + Number(m[13]) + Number(m[14]);
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const f = fields(pid);
      if (f[1] === master) t += Number(f[11]) + Number(f[12]);
    } catch {
      // the process ended while we looked
    }
  }
  return t / ticks;
}

function parseSummary(text) {
  const scanned = Number(/summary: (\d+) scanned/.exec(text)?.[1]);
  const rate = Number(/\(([\d,]+) msg\/s\)/.exec(text)?.[1].replace(/,/g, ''));
  const rss = Number(/peak RSS ([\d.]+) MB/.exec(text)?.[1]);
  const spam = Number(/spam (\d+), ham/.exec(text)?.[1]);
  const classifier = /classifier: off/.test(text) ? 'off (no model: rules only)' : 'on';
  const cpuMsPerMsg = Number(/ ([\d.]+) ms\/msg/.exec(text)?.[1]);
  return { scanned, rate, rss, spam, classifier, cpuMsPerMsg };
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'atlas-bench-backfill-'));
// Dovecot's auth and mail processes (not root) must reach the instance inside.
chmodSync(dir, 0o755);
const users = sizes.flatMap((n) => Array.from({ length: runs }, (_, r) => `n${n}r${r}`));
const env = { ...process.env, DC_DIR: path.join(dir, 'dovecot'), DC_PORT: String(port), DC_USERS: users.map((u) => `${u}:${password}`).join(' ') };
const { from, files } = sourceMessages();
const results = [];
try {
  execFileSync('bash', [script, 'start'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  for (const n of sizes) {
    for (let r = 0; r < runs; r++) {
      const user = `n${n}r${r}`;
      const maildir = execFileSync('bash', [script, 'maildir', user, 'INBOX'], { env, encoding: 'utf8' }).trim();
      const bytes = fill(maildir, files, n, user);
      // Let Dovecot index the new mail first: the bench times the sweep, not Dovecot's first look.
      execFileSync('doveadm', ['-c', path.join(env.DC_DIR, 'etc/dovecot.conf'), 'mailbox', 'status', '-u', user, 'messages', 'INBOX'], { stdio: 'ignore' });
      const db = path.join(dir, `${user}.db`);
      const dcBefore = dovecotCpuSeconds(env.DC_DIR);
      const out = await runBackfill([`imap://${user}@127.0.0.1:${port}`, '--action', action, '--db', db, ...extra], { ATLAS_IMAP_PASSWORD: password });
      // let the master reap the session's imap process, whose CPU then counts in its cutime
      await new Promise((r) => setTimeout(r, 500));
      const dovecotMsPerMsg = ((dovecotCpuSeconds(env.DC_DIR) - dcBefore) * 1000) / n;
      const s = { ...parseSummary(out), dovecotMsPerMsg };
      if (s.scanned !== n) throw new Error(`expected ${n} scanned, got ${s.scanned}:\n${out}`);
      results.push({ n, run: r, bytes, ...s });
      console.error(
        `  ${n} messages (${(bytes / 1048576).toFixed(1)} MB): ${s.rate} msg/s, peak RSS ${s.rss} MB, spam ${s.spam}, CPU ms/msg: atlas ${s.cpuMsPerMsg}, dovecot ${s.dovecotMsPerMsg.toFixed(2)}`,
      );
    }
  }
} finally {
  try {
    execFileSync('bash', [script, 'stop'], { env, stdio: 'ignore' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const best = (n, key, pick) => pick(...results.filter((x) => x.n === n).map((x) => x[key]));
console.log(`bench:backfill — node ${process.version}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'cpu'}), action ${action}${extra.length ? ` ${extra.join(' ')}` : ''}`);
console.log(`messages: ${from}; classifier ${results[0]?.classifier}`);
console.log('');
console.log('| folder | MB | msg/s (wall) | peak RSS MB | spam | CPU ms/msg atlas | CPU ms/msg dovecot | msg/s if both cores were ours |');
console.log('|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const n of sizes) {
  const r = results.find((x) => x.n === n);
  const cpu = best(n, 'cpuMsPerMsg', Math.min) + best(n, 'dovecotMsPerMsg', Math.min);
  // Both processes run at once on 2 cores: the CPU a message costs in total bounds the rate.
  const capacity = Math.round((os.cpus().length * 1000) / cpu);
  console.log(
    `| ${n.toLocaleString('en-US')} | ${(r.bytes / 1048576).toFixed(1)} | ${best(n, 'rate', Math.max)} | ${best(n, 'rss', Math.max)} | ${r.spam} | ${best(n, 'cpuMsPerMsg', Math.min).toFixed(2)} | ${best(n, 'dovecotMsPerMsg', Math.min).toFixed(2)} | ${capacity} |`,
  );
}
console.log(`load average at the end: ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
if (sizes.length >= 2) {
  const small = sizes[0];
  const large = sizes[sizes.length - 1];
  const ratio = best(large, 'rss', Math.max) / best(small, 'rss', Math.max);
  const rate = best(large, 'rate', Math.max);
  console.log('');
  console.log(`peak RSS ${large} / ${small}: ${ratio.toFixed(2)} (target ≤ 1.20) ${ratio <= 1.2 ? 'met' : 'MISSED'}`);
  console.log(`throughput on ${large}: ${rate} msg/s (target ≥ 1,000) ${rate >= 1000 ? 'met' : 'MISSED'}`);
}
