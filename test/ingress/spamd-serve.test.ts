// `atlas-email serve --spamd HOST:PORT` starts the SPAMC door from the CLI (compiled code in dist/), and
// SIGTERM stops it cleanly.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { root } from '../helpers/env.ts';
import { requireSpamc, SPAM, spamc, testRulesDir } from './spamd-helpers.ts';

describe('serve --spamd', () => {
  let dir: string;
  let work: string;
  let child: ChildProcess;
  let port = 0;
  let stderr = '';

  beforeAll(async () => {
    requireSpamc();
    dir = testRulesDir();
    work = mkdtempSync(path.join(tmpdir(), 'atlas-spamd-serve-'));
    // No DNS from tests (auth off) and no model (rules only), so the verdict is the test rules' alone.
    writeFileSync(path.join(work, 'config.yaml'), 'auth:\n  enabled: false\n');
    child = spawn(
      process.execPath,
      ['dist/cli/index.js', 'serve', '--no-http', '--spamd', '127.0.0.1:0', '--rules', dir, '--db', path.join(work, 'atlas.db'), '--model', path.join(work, 'none.model'), '--config', path.join(work, 'config.yaml')],
      { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve did not start the spamd door:\n${stderr}`)), 30_000);
      child.stderr?.on('data', (c: Buffer) => {
        stderr += c.toString();
        const m = /spamd listening on 127\.0\.0\.1:(\d+)/.exec(stderr);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      child.once('exit', (code) => reject(new Error(`serve exited with ${code}:\n${stderr}`)));
    });
  });

  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  it('answers spamc on the port it was given', async () => {
    const r = await spamc(port, ['-c'], SPAM);
    expect(r.code).toBe(1);
    expect(r.stdout.toString()).toBe('16.0/5.0\n');
    const ping = await spamc(port, ['-K'], '');
    expect(ping.stdout.toString()).toBe('SPAMD/1.5 0\n');
  });

  it('refuses TELL while spamd.allowTell is off (the default)', async () => {
    const r = await spamc(port, ['-L', 'spam'], SPAM);
    expect(r.code).toBe(74);
  });

  it('stops on SIGTERM with exit 0', async () => {
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toContain('stopped');
  });
});
