// The Deno edge entry and the Node HTTP door, both started for real (`npm run edge` under the Deno of the
// `deno` devDependency; `atlas-email serve`), pass the same contract suite and give identical verdicts.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contractCases, contractConfig, disagreement, verdictOf } from '../contract/http-contract.ts';
import { corpusFiles, hasCorpus } from '../helpers/corpus.ts';
import { fixture, root } from '../helpers/env.ts';

const NODE_PORT = 13540;
const DENO_PORT = 13541;
const dir = mkdtempSync(path.join(os.tmpdir(), 'atlas-contract-'));
// Inside the project: the edge runs with --allow-read=. only.
mkdirSync(path.join(root, '.tmp'), { recursive: true });
const configFile = path.join(root, '.tmp', `contract-${process.pid}.yaml`);
writeFileSync(configFile, contractConfig);

interface Proc {
  child: ChildProcess;
  out: string;
  stdout: string;
}
const procs: Proc[] = [];

async function start(cmd: string, args: string[], env: Record<string, string>, port: number): Promise<Proc> {
  // Detached: its own process group, so stopping `npm run edge` also stops the deno it started.
  const p: Proc = { child: spawn(cmd, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true }), out: '', stdout: '' };
  p.child.stdout?.on('data', (d) => {
    p.out += d;
    p.stdout += d;
  });
  p.child.stderr?.on('data', (d) => (p.out += d));
  procs.push(p);
  for (let i = 0; i < 600; i++) {
    if (p.child.exitCode !== null) throw new Error(`${cmd} exited early:\n${p.out}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/v1/health`)).ok) return p;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${cmd} did not answer on ${port} within 60 s:\n${p.out}`);
}

const bases = { node: `http://127.0.0.1:${NODE_PORT}`, deno: `http://127.0.0.1:${DENO_PORT}` };

beforeAll(async () => {
  await Promise.all([
    start(process.execPath, [path.join(root, 'dist/cli/index.js'), 'serve', '--http', `127.0.0.1:${NODE_PORT}`, '--db', path.join(dir, 'atlas.db'), '--config', configFile], { ATLAS_WORKER_COUNT: '1' }, NODE_PORT),
    start('npm', ['run', '--silent', 'edge'], { PORT: String(DENO_PORT), ATLAS_CONFIG: configFile, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' }, DENO_PORT),
  ]);
}, 120_000);

/** Stops a whole process group: SIGTERM, then SIGKILL after 3 s (deno serve drains keep-alive connections). */
async function stopGroup(p: Proc): Promise<void> {
  const group = -(p.child.pid as number);
  const alive = () => {
    try {
      process.kill(group, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!alive()) return;
  process.kill(group, 'SIGTERM');
  for (let i = 0; i < 50 && alive(); i++) {
    if (i === 30) process.kill(group, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
  }
}

afterAll(async () => {
  rmSync(configFile, { force: true });
  await Promise.all(procs.map(stopGroup));
});

describe.each(Object.entries(bases))('HTTP contract on %s', (_runtime, base) => {
  it.each(contractCases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    await c.run(base);
  });
});

describe('Node and Deno agree', () => {
  it('give identical verdicts for the same messages', async () => {
    const messages: Uint8Array[] = [fixture('ham-plain.eml'), ...['SCAM_ADVANCE_FEE', 'PHISH_PAYPAL_SPOOF', 'MISSING_DATE'].map((s) => fixture(`rules/${s}.eml`))];
    if (hasCorpus) {
      const files = corpusFiles();
      // Every 50th corpus message: all sources, ham and spam, small and large.
      for (let i = 0; i < files.length; i += 50) messages.push(new Uint8Array(readFileSync(files[i]!.path)));
    }
    const differ: string[] = [];
    for (const [i, raw] of messages.entries()) {
      const [n, d] = await Promise.all([verdictOf(bases.node, raw), verdictOf(bases.deno, raw)]);
      const why = disagreement(n, d);
      if (why) differ.push(`#${i} (${why}): node ${JSON.stringify(n)} deno ${JSON.stringify(d)}`);
    }
    expect(differ).toEqual([]);
    expect(messages.length).toBeGreaterThan(3);
  }, 120_000);

  it('the edge logs each verdict as a JSON line', () => {
    const deno = procs[1]!;
    const lines = deno.stdout.split('\n').filter((l) => l.startsWith('{'));
    expect(lines.length, deno.out.slice(0, 600)).toBeGreaterThan(0);
    expect(JSON.parse(lines[0]!)).toMatchObject({ time: expect.any(String), action: expect.any(String), score: expect.any(Number) });
  });
});
