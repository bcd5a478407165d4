// Shared by the Postfix integration suites: the private Postfix (test/integration/postfix.sh), the filter
// as a real `atlas-email serve` process, a bulk SMTP sender, and Maildir readers.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { root } from '../helpers/env.ts';
import { reapOnExit } from '../helpers/reap.ts';

const script = path.join(root, 'test/integration/postfix.sh');
const cli = path.join(root, 'dist/cli/index.js');

/**
 * Why the Postfix suites cannot run here, or null when they can. Installs Postfix when missing and we are
 * root (as CI is). Under CI=true a missing prerequisite is an error, never a skip.
 */
export function postfixUnavailable(): string | null {
  let reason: string | null = null;
  const hasPostfix = () => spawnSync('sh', ['-c', 'command -v postfix && test -x /usr/lib/postfix/sbin/master']).status === 0;
  if (!hasPostfix() && process.getuid?.() === 0) spawnSync('bash', [script, 'install'], { stdio: 'inherit' });
  if (!hasPostfix()) reason = 'Postfix is not installed (run .ci/system-deps as root, or test/integration/postfix.sh install)';
  else if (process.getuid?.() !== 0) reason = 'the private Postfix needs root (its master runs as root)';
  else if (!existsSync(cli)) reason = `${cli} is missing: run "npm run build" first (the filter runs as a real serve process)`;
  if (reason && process.env.CI === 'true') throw new Error(`Postfix integration tests cannot run in CI: ${reason}`);
  return reason;
}

export interface PostfixInstance {
  dir: string;
  smtpPort: number;
  reinjectPort: number;
  mail: (mailbox: string) => string;
  log: () => string;
  flush(): void;
  queued(): number;
  clean(): void;
}

export function startPostfix(o: { dir: string; smtpPort: number; reinjectPort: number; filterPort: number; mailboxes: string[] }): PostfixInstance {
  const env = {
    ...process.env,
    PF_DIR: o.dir,
    PF_SMTP_PORT: String(o.smtpPort),
    PF_REINJECT_PORT: String(o.reinjectPort),
    PF_CONTENT_FILTER: `127.0.0.1:${o.filterPort}`,
    PF_MILTERS: '',
    PF_MAILBOXES: o.mailboxes.join(' '),
  };
  const run = (cmd: string) => {
    const r = spawnSync('bash', [script, cmd], { env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`postfix.sh ${cmd} failed (${r.status}): ${r.stderr}`);
    return r.stdout;
  };
  run('clean');
  run('start');
  return {
    dir: o.dir,
    smtpPort: o.smtpPort,
    reinjectPort: o.reinjectPort,
    mail: (mailbox) => path.join(o.dir, 'mail', mailbox, 'new'),
    log: () => readFileSync(path.join(o.dir, 'log/maillog'), 'utf8'),
    flush: () => void run('flush'),
    queued: () => Number(run('queue').trim()),
    clean: () => void run('clean'),
  };
}

export interface FilterProcess {
  child: ChildProcess;
  output: () => string;
  /** Resolves with the exit code or signal once the process is gone. */
  exited: Promise<string>;
  stop(signal?: NodeJS.Signals): Promise<string>;
}

/** Starts `atlas-email serve --smtp` and resolves once it accepts connections. */
export async function startFilter(o: { port: number; nextHop: number; dir: string; config?: string; rules?: string }): Promise<FilterProcess> {
  const args = [
    cli,
    'serve',
    '--no-http',
    '--smtp',
    `127.0.0.1:${o.port}`,
    '--next-hop',
    `127.0.0.1:${o.nextHop}`,
    '--rules',
    o.rules ?? path.join(root, 'test/fixtures/smtp/rules'),
    '--db',
    path.join(o.dir, 'atlas.db'),
    ...(o.config ? ['--config', o.config] : []),
  ];
  const child = spawn(process.execPath, args, { env: { ...process.env, ATLAS_WORKER_COUNT: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  const exited = new Promise<string>((resolve) => child.once('exit', (code, sig) => resolve(sig ?? String(code))));
  // A test that failed before its stop() once left the filter listening, and the next run's Postfix delivered through it.
  reapOnExit(child);
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`the filter exited early (${child.exitCode}):\n${out}`);
    if (await canConnect(o.port)) break;
    if (i > 300) {
      await stop('SIGKILL');
      throw new Error(`the filter did not listen on ${o.port} within 30 s:\n${out}`);
    }
    await sleep(100);
  }
  return { child, output: () => out, exited, stop };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `check` returns true; throws with `what` after `timeoutMs`. */
export async function waitFor(what: string, check: () => boolean, timeoutMs: number, everyMs = 250): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export interface OutMessage {
  from: string;
  to: string[];
  raw: string;
}

/** Sends every message over `connections` parallel SMTP sessions; resolves with the replies in order. */
export async function sendAll(port: number, messages: OutMessage[], connections = 1): Promise<string[]> {
  const replies: string[] = new Array(messages.length);
  let next = 0;
  const worker = async () => {
    const conn = new SMTPConnection({ host: '127.0.0.1', port, ignoreTLS: true, allowInternalNetworkInterfaces: true, socketTimeout: 60_000 });
    await new Promise<void>((resolve, reject) => {
      conn.once('error', reject);
      conn.connect(() => resolve());
    });
    try {
      while (next < messages.length) {
        const i = next++;
        const m = messages[i];
        replies[i] = await new Promise<string>((resolve, reject) =>
          conn.send({ from: m.from, to: m.to }, m.raw, (err, info) => (err ? reject(err) : resolve(info?.response ?? ''))),
        );
      }
    } finally {
      conn.quit();
    }
  };
  await Promise.all(Array.from({ length: Math.min(connections, messages.length) }, worker));
  return replies;
}

export function message(o: { id: string; subject: string; from?: string; to?: string; body?: string }): OutMessage {
  const from = o.from ?? 'alice@example.org';
  const to = o.to ?? 'bob@test.local';
  const raw = [
    `From: Alice <${from}>`,
    `To: ${to}`,
    `Subject: ${o.subject}`,
    'Date: Mon, 23 Nov 2026 09:12:00 +0000',
    `Message-ID: <${o.id}>`,
    'X-Spam-Flag: YES',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    o.body ?? `Hello, this is ${o.id}.`,
    '',
  ].join('\r\n');
  return { from, to: [to], raw };
}

export interface Delivered {
  file: string;
  text: string;
  messageId: string;
}

/** Files in a Maildir's new/ folder (count only: cheap enough to poll). */
export function countMail(dir: string): number {
  return existsSync(dir) ? readdirSync(dir).length : 0;
}

export function readMail(dir: string): Delivered[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).map((f) => {
    const text = readFileSync(path.join(dir, f), 'latin1');
    const head = text.slice(0, text.search(/\r?\n\r?\n/) + 1);
    const messageId = /^Message-ID:\s*<([^>]*)>/im.exec(head)?.[1] ?? '';
    return { file: f, text, messageId };
  });
}

/** The value of the first header `name` in the header block. */
export function header(text: string, name: string): string | undefined {
  const head = text.slice(0, text.search(/\r?\n\r?\n/) + 1);
  const m = new RegExp(`^${name}:[ \\t]*(.*(?:\\r?\\n[ \\t].*)*)`, 'im').exec(head);
  return m?.[1].replace(/\r?\n[ \t]+/g, ' ').trim();
}
