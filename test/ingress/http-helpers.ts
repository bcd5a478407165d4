// Starts the built CLI's `serve` as a real process on port 0 and reads the bound address from its log.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { root } from '../helpers/env.ts';

export interface ServeProcess {
  child: ChildProcess;
  /** "127.0.0.1:PORT" from the "http listening on" line. */
  address: string;
  port: number;
  dir: string;
  /** Everything the process wrote on stderr so far. */
  log(): string;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
}

export async function startServe(args: string[] = [], env: Record<string, string> = {}, waitMs = 60_000): Promise<ServeProcess> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'atlas-http-'));
  const child = spawn(
    process.execPath,
    [path.join(root, 'dist/cli/index.js'), 'serve', '--http', '127.0.0.1:0', '--db', path.join(dir, 'atlas.db'), ...args],
    { cwd: dir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += d.toString()));
  child.stdout?.on('data', (d) => (stderr += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, sig) => resolve(code ?? (sig as string))));
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve did not report its address within ${waitMs} ms:\n${stderr}`));
    }, waitMs);
    const look = () => {
      const m = /http listening on (\S+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(m[1] as string);
      }
    };
    child.stderr?.on('data', look);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${code}) before listening:\n${stderr}`));
    });
  });
  return { child, address, port: Number(address.split(':').pop()), dir, log: () => stderr, exited };
}

/** `serve` flags for a rules-only run (no model file), so the expected scores are the rules' own. */
export const RULES_ONLY = ['--model', path.join(os.tmpdir(), 'atlas-no-such.model')];

/** Stops a serve process that a failed test left running (bounded: SIGKILL after 10 s). */
export async function stopServe(p: ServeProcess | undefined): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const t = setTimeout(() => p.child.kill('SIGKILL'), 10_000);
  await p.exited;
  clearTimeout(t);
}

/** A small model trained by the real `learn` command: the rule fixtures as spam, the plain ham as ham. */
export function trainModel(): { dir: string; model: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'atlas-http-model-'));
  mkdirSync(path.join(dir, 'ham'));
  copyFileSync(path.join(root, 'test/fixtures/ham-plain.eml'), path.join(dir, 'ham/1.eml'));
  const model = path.join(dir, 'test.model');
  const cli = path.join(root, 'dist/cli/index.js');
  const r = spawnSync(process.execPath, [cli, 'learn', '--new', '-q', '--spam', path.join(root, 'test/fixtures/rules'), '--ham', path.join(dir, 'ham'), '--model', model], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (r.status !== 0) throw new Error(`learn failed (${r.status}): ${r.stderr}`);
  return { dir, model };
}
