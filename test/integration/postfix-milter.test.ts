// The milter door against real Postfix 3.7 (smtpd_milters): ham is delivered with our headers, spam is
// refused during the SMTP conversation with our 554, several messages share one connection, and probes
// on either port do no harm.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { root } from '../helpers/env.ts';
import { reapOnExit } from '../helpers/reap.ts';
import { countMail, header, message, postfixUnavailable, readMail, sendAll, sleep, waitFor } from './postfix-harness.ts';

const unavailable = postfixUnavailable();
const PF_SMTP = 13525;
const PF_REINJECT = 13526;
const MILTER = 13532;
const script = path.join(root, 'test/integration/postfix.sh');
// Not mkdtemp: its 0700 mode would lock Postfix's own users out of the instance folder.
const dir = path.join(os.tmpdir(), `atlas-milter-pf-${process.pid}`);
const pfEnv = {
  ...process.env,
  PF_DIR: dir,
  PF_SMTP_PORT: String(PF_SMTP),
  PF_REINJECT_PORT: String(PF_REINJECT),
  PF_CONTENT_FILTER: '',
  PF_MILTERS: `inet:127.0.0.1:${MILTER}`,
  PF_MILTER_DEFAULT_ACTION: 'tempfail',
  PF_MAILBOXES: 'bob@test.local',
};
const pf = (cmd: string) => {
  const r = spawnSync('bash', [script, cmd], { env: pfEnv, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`postfix.sh ${cmd}: ${r.stderr}`);
};
const inbox = path.join(dir, 'mail/bob@test.local/new');

let filter: ChildProcess | undefined;
let output = '';

async function startMilter(): Promise<void> {
  output = '';
  filter = spawn(process.execPath, [path.join(root, 'dist/cli/index.js'), 'serve', '--no-http', '--milter', `127.0.0.1:${MILTER}`, '--db', path.join(dir, 'atlas.db')], {
    env: { ...process.env, ATLAS_WORKER_COUNT: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  reapOnExit(filter);
  filter.stderr?.on('data', (d) => (output += d));
  await waitFor(`the milter on ${MILTER}\n${output}`, () => output.includes('milter listening on'), 60_000, 100);
}

async function stopMilter(): Promise<void> {
  if (!filter || filter.exitCode !== null) return;
  const gone = new Promise((r) => filter!.once('exit', r));
  filter.kill('SIGTERM');
  await gone;
}

const sextortion = readFileSync(path.join(root, 'test/fixtures/rules/SCAM_SEXTORTION.eml'), 'latin1').split(/\r?\n\r?\n/).slice(1).join('\n\n');

describe.skipIf(unavailable !== null)(unavailable ? `milter with real Postfix (skipped: ${unavailable})` : 'milter with real Postfix', () => {
  beforeAll(async () => {
    pf('clean');
    pf('start');
    await startMilter();
  }, 120_000);

  afterAll(async () => {
    await stopMilter();
    pf('clean');
  });

  it('delivers ham with our X-Spam headers, the forged one gone', async () => {
    const [reply] = await sendAll(PF_SMTP, [message({ id: 'milter-ham-1@example.org', subject: 'Lunch on Friday?' })]);
    expect(reply).toMatch(/^250 /);
    await waitFor('ham delivery', () => readMail(inbox).some((m) => m.messageId === 'milter-ham-1@example.org'), 20_000);
    const m = readMail(inbox).find((x) => x.messageId === 'milter-ham-1@example.org')!;
    expect(header(m.text, 'X-Spam-Flag')).toBe('NO');
    expect(header(m.text, 'X-Spam-Status')).toMatch(/^No, score=-?[\d.]+ required=5\.0 tests=/);
    // The sender's forged "X-Spam-Flag: YES" (the harness adds one) was deleted.
    expect(m.text.match(/^X-Spam-Flag:/gim)).toHaveLength(1);
  });

  it('refuses spam during the SMTP conversation with our 554 5.7.1', async () => {
    const spam = message({ id: 'milter-spam-1@example.org', subject: 'Your account', body: sextortion });
    await expect(sendAll(PF_SMTP, [spam])).rejects.toMatchObject({ responseCode: 554, response: expect.stringMatching(/5\.7\.1 Message rejected as spam/) });
    await sleep(500);
    expect(readMail(inbox).some((m) => m.messageId === 'milter-spam-1@example.org')).toBe(false);
  });

  it('judges several messages on one SMTP connection', async () => {
    const batch = Array.from({ length: 5 }, (_, i) => message({ id: `milter-batch-${i}@example.org`, subject: `Report ${i}` }));
    const before = countMail(inbox);
    const replies = await sendAll(PF_SMTP, batch, 1);
    expect(replies.every((r) => r.startsWith('250 '))).toBe(true);
    await waitFor('5 deliveries', () => countMail(inbox) >= before + 5, 20_000);
    const got = readMail(inbox).filter((m) => m.messageId.startsWith('milter-batch-'));
    expect(got).toHaveLength(5);
    for (const m of got) expect(header(m.text, 'X-Spam-Flag')).toBe('NO');
  });

  it('survives a bare TCP probe of Postfix and an HTTP request on the milter port', async () => {
    // A probe that connects, reads the banner and hangs up: Postfix still opens a milter session for it.
    const banner = await new Promise<string>((resolve) => {
      const s = net.connect(PF_SMTP, '127.0.0.1');
      s.once('data', (d) => {
        s.destroy();
        resolve(d.toString());
      });
    });
    expect(banner).toMatch(/^220 /);
    const http = await new Promise<string>((resolve) => {
      const s = net.connect(MILTER, '127.0.0.1', () => s.write('POST /checkv2 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi'));
      let got = '';
      s.on('data', (d) => (got += d));
      s.on('close', () => resolve(got));
    });
    expect(http).toBe('');
    const [reply] = await sendAll(PF_SMTP, [message({ id: 'milter-after-probe@example.org', subject: 'Still there?' })]);
    expect(reply).toMatch(/^250 /);
    expect(output).toMatch(/milter: closing .* out of range/);
  });

  it('tempfails at SMTP time while the milter is down (milter_default_action = tempfail)', async () => {
    await stopMilter();
    await expect(sendAll(PF_SMTP, [message({ id: 'milter-down@example.org', subject: 'Anyone home?' })])).rejects.toMatchObject({ responseCode: 451 });
    await startMilter();
    const [reply] = await sendAll(PF_SMTP, [message({ id: 'milter-back@example.org', subject: 'Back again' })]);
    expect(reply).toMatch(/^250 /);
  });
});
