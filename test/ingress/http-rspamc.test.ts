// Debian's real rspamc (package rspamd, installed by .ci/system-deps) against `atlas-email serve`:
// existing Rspamd clients must work unchanged on POST /checkv2.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { root } from '../helpers/env.ts';
import { RULES_ONLY, type ServeProcess, startServe, stopServe, trainModel } from './http-helpers.ts';

const hasRspamc = spawnSync('rspamc', ['--help'], { encoding: 'utf8' }).status === 0;
const fx = (name: string) => path.join(root, 'test/fixtures', name);

let proc: ServeProcess | undefined;
beforeAll(async () => {
  if (hasRspamc) proc = await startServe(RULES_ONLY);
});
afterAll(async () => {
  await stopServe(proc);
});

const rspamc = (args: string[]) => spawnSync('rspamc', ['-h', (proc as ServeProcess).address, '-t', '20', ...args], { encoding: 'utf8', timeout: 30_000 });

const title = hasRspamc ? 'rspamc against POST /checkv2' : 'rspamc against POST /checkv2 (skipped: rspamc missing; .ci/system-deps installs Debian package rspamd)';

describe.skipIf(!hasRspamc)(title, () => {
  it('prints our action, score and symbols for a tagged message', () => {
    const r = rspamc(['symbols', fx('rules/SCAM_LOTTERY_WINNER.eml')]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Action: add header$/m);
    expect(r.stdout).toMatch(/^Spam: true$/m);
    expect(r.stdout).toMatch(/^Score: 8\.00 \/ 5\.00$/m);
    expect(r.stdout).toMatch(/^Symbol: SCAM_LOTTERY_WINNER \(8\.00\)\[body=Lottery Board/m);
    expect(r.stdout).toMatch(/^Message-ID: <3781\.7289@mailer\.example\.com>$/m);
  });

  it('scans several files in one run: no action, reject', () => {
    const r = rspamc(['symbols', fx('ham-plain.eml'), fx('rules/SCAM_SEXTORTION.eml')]);
    expect(r.status).toBe(0);
    const parts = r.stdout.split(/^Results for file: /m).filter((p) => p.trim());
    const byFile = Object.fromEntries(parts.map((p) => [path.basename(p.split(' ')[0] as string), p]));
    expect(byFile['ham-plain.eml']).toMatch(/^Action: no action$/m);
    expect(byFile['ham-plain.eml']).toMatch(/^Spam: false$/m);
    expect(byFile['SCAM_SEXTORTION.eml']).toMatch(/^Action: reject$/m);
    expect(byFile['SCAM_SEXTORTION.eml']).toMatch(/^Symbol: SCAM_SEXTORTION \(15\.00\)/m);
  });

  it('passes the envelope options as Rspamd headers (-i, -F, -r)', () => {
    const reserved = rspamc(['-i', '240.1.2.3', '-F', 'alice@example.org', '-r', 'bob@example.net', '-r', 'carol@example.net', 'symbols', fx('ham-plain.eml')]);
    expect(reserved.status).toBe(0);
    expect(reserved.stdout).toMatch(/^Symbol: RELAY_RESERVED_IP \(6\.00\)/m);
    const denied = rspamc(['-F', 'someone@mailer.invalid', 'symbols', fx('ham-plain.eml')]);
    expect(denied.stdout).toMatch(/^Action: reject$/m);
    expect(denied.stdout).toMatch(/^Symbol: DENY_INVALID_SENDER_TLD/m);
  });

  it('trains the model with rspamc -P TOKEN learn_spam (Rspamd\'s controller protocol)', async () => {
    const { model } = trainModel();
    const learner = await startServe(['--model', model], { ATLAS_API_TOKEN: 'rspamc-token' });
    try {
      const run = (password: string) =>
        spawnSync('rspamc', ['-h', learner.address, '-t', '20', '-P', password, 'learn_spam', fx('ham-plain.eml')], { encoding: 'utf8', timeout: 30_000 });
      const ok = run('rspamc-token');
      expect(ok.status).toBe(0);
      expect(ok.stdout).toMatch(/^success = true;$/m);
      const health = await (await fetch(`http://${learner.address}/v1/health`)).json();
      expect(health.checks.pool.modelVersion).toBe(1);
      const refused = run('wrong-token');
      expect(refused.stdout + refused.stderr).toMatch(/401/);
    } finally {
      await stopServe(learner);
    }
  });

  it('gives rspamc -j the milter headers to add', () => {
    const r = rspamc(['-j', 'symbols', fx('rules/SCAM_LOTTERY_WINNER.eml')]);
    expect(r.status).toBe(0);
    const reply = JSON.parse(r.stdout.slice(r.stdout.indexOf('{')));
    expect(reply).toMatchObject({ action: 'add header', score: 8, required_score: 5, is_skipped: false });
    expect(reply.milter.add_headers['X-Spam-Flag']).toBe('YES');
  });
});
