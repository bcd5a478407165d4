import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { root } from '../helpers/env.ts';

const cli = path.join(root, 'dist/cli/index.js');
const dir = mkdtempSync(path.join(os.tmpdir(), 'atlas-serve-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[]): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    // Bounded: a serve that did start would wait for a signal.
    const timer = setTimeout(() => child.kill('SIGTERM'), 60_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stderr });
    });
  });
}

describe('atlas-email serve', () => {
  it('exits 78 with ECONFIG and the address when a door cannot listen, not 70 with a stack trace', async () => {
    const taken: Server = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const port = (taken.address() as { port: number }).port;
    try {
      const r = await run(['serve', '--http', `127.0.0.1:${port}`, '--db', path.join(dir, 'atlas.db'), '--model', path.join(dir, 'none.model')]);
      expect(r.status).toBe(78);
      expect(r.stderr).toContain(`atlas-email: ECONFIG: a door cannot start: listen EADDRINUSE: address already in use 127.0.0.1:${port}\n`);
      expect(r.stderr).not.toContain('    at ');
    } finally {
      taken.close();
    }
  }, 90_000);

  // Both failures come after the verdict log has opened (its writer thread keeps a process alive): the
  // process must still end with the code, not linger answering nothing. A lingering one is cut by the
  // timer in run() and reports no status.
  it('exits 78 with EMODEL when the model file is not a model', async () => {
    const model = path.join(dir, 'bad.model');
    writeFileSync(model, 'ATLSMODL\u0002junk');
    const r = await run(['serve', '--http', '127.0.0.1:0', '--db', path.join(dir, 'model.db'), '--model', model]);
    expect(r.status).toBe(78);
    expect(r.stderr).toContain('atlas-email: EMODEL: ');
  }, 90_000);

  it('exits 78 with ERULES when a rule file is invalid', async () => {
    const rules = path.join(dir, 'bad-rules');
    mkdirSync(rules, { recursive: true });
    writeFileSync(path.join(rules, 'x.yaml'), 'rules:\n  - symbol: lower\n    score: 1\n    match:\n      subject: x\n');
    const r = await run(['serve', '--http', '127.0.0.1:0', '--db', path.join(dir, 'rules.db'), '--rules', rules]);
    expect(r.status).toBe(78);
    expect(r.stderr).toContain('atlas-email: ERULES: ');
  }, 90_000);
});
