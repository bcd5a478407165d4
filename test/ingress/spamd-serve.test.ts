// `atlas-email serve --spamd HOST:PORT` starts the SPAMC door from the CLI (compiled code in dist/), TELL
// trains the running model when allowed, and SIGTERM stops it cleanly.
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { root } from '../helpers/env.ts';
import { HAM, requireSpamc, SPAM, spamc, testRulesDir } from './spamd-helpers.ts';

interface Served {
  child: ChildProcess;
  port: number;
  stderr: () => string;
}

/** Starts serve with the test rules, no DNS (auth off) and the given model path and YAML lines. */
async function serve(rules: string, work: string, model: string, yaml: string): Promise<Served> {
  writeFileSync(path.join(work, 'config.yaml'), `auth:\n  enabled: false\n${yaml}`);
  const args = ['dist/cli/index.js', 'serve', '--no-http', '--spamd', '127.0.0.1:0', '--rules', rules, '--db', path.join(work, 'atlas.db')];
  const child = spawn(process.execPath, [...args, '--model', model, '--config', path.join(work, 'config.yaml')], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const port = await new Promise<number>((resolve, reject) => {
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
  return { child, port, stderr: () => stderr };
}

function stop(s: Served | undefined): Promise<number | null> {
  if (!s || s.child.exitCode !== null) return Promise.resolve(s?.child.exitCode ?? null);
  const exited = new Promise<number | null>((resolve) => s.child.once('exit', (code) => resolve(code)));
  s.child.kill('SIGTERM');
  return exited;
}

describe('serve --spamd', () => {
  let rules: string;
  let work: string;
  let plain: Served;
  let telling: Served;
  const model = () => path.join(work, 'tell.model');

  beforeAll(async () => {
    requireSpamc();
    rules = testRulesDir();
    work = mkdtempSync(path.join(tmpdir(), 'atlas-spamd-serve-'));
    // Rules only (no model file): the verdict is the test rules' alone.
    plain = await serve(rules, work, path.join(work, 'none.model'), '');
    // A copy of the shipped model, since TELL writes the model file back.
    copyFileSync(path.join(root, 'models/default.model'), model());
    const tellWork = mkdtempSync(path.join(work, 'tell-'));
    telling = await serve(rules, tellWork, model(), 'spamd:\n  allowTell: true\n');
  });

  afterAll(async () => {
    for (const s of [plain, telling]) if (s && s.child.exitCode === null) s.child.kill('SIGKILL');
    rmSync(rules, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  it('answers spamc on the port it was given', async () => {
    const r = await spamc(plain.port, ['-c'], SPAM);
    expect(r.code).toBe(1);
    expect(r.stdout.toString()).toBe('16.0/5.0\n');
    const ping = await spamc(plain.port, ['-K'], '');
    expect(ping.stdout.toString()).toBe('SPAMD/1.5 0\n');
  });

  it('refuses TELL while spamd.allowTell is off (the default)', async () => {
    const r = await spamc(plain.port, ['-L', 'spam'], SPAM);
    expect(r.code).toBe(74);
  });

  it('spamc -L spam / ham trains the running model and saves it; forget is refused', async () => {
    const before = readFileSync(model());
    const spam = await spamc(telling.port, ['-L', 'spam'], SPAM);
    expect(spam.stdout.toString()).toBe('Message successfully un/learned\n');
    expect(spam.code).toBe(0);
    const afterSpam = readFileSync(model());
    expect(afterSpam.equals(before)).toBe(false);
    const ham = await spamc(telling.port, ['-L', 'ham'], HAM);
    expect(ham.stdout.toString()).toBe('Message successfully un/learned\n');
    expect(readFileSync(model()).equals(afterSpam)).toBe(false);
    const forget = await spamc(telling.port, ['-L', 'forget'], SPAM);
    expect(forget.code).toBe(74);
    // Still answering checks with the reloaded model.
    expect((await spamc(telling.port, ['-c'], SPAM)).code).toBe(1);
  });

  it('stops on SIGTERM with exit 0', async () => {
    expect(await stop(plain)).toBe(0);
    expect(plain.stderr()).toContain('stopped');
    expect(await stop(telling)).toBe(0);
  });
});
