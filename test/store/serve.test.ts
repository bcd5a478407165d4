// The verdict log of a real `serve` process (the built CLI): every verdict answered over HTTP is in
// SQLite after SIGTERM; after SIGKILL only the unwritten tail of the queue is missing and the file
// passes PRAGMA integrity_check.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { fixture, root } from '../helpers/env.ts';
import { scalar, tempDir, until } from './helpers.ts';

interface Serve {
  child: ChildProcess;
  base: string;
  db: string;
  exited: Promise<number | string>;
  log: () => string;
}

const running: Serve[] = [];
afterEach(async () => {
  for (const s of running.splice(0)) {
    if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    await s.exited;
  }
});

async function serve(config?: string, dbFile?: string): Promise<Serve> {
  const dir = tempDir('atlas-serve-store-');
  const db = dbFile ?? path.join(dir, 'atlas.db');
  const args = [path.join(root, 'dist/cli/index.js'), 'serve', '--http', '127.0.0.1:0', '--db', db];
  if (config) {
    writeFileSync(path.join(dir, 'config.yaml'), config);
    args.push('--config', path.join(dir, 'config.yaml'));
  }
  const child = spawn(process.execPath, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, sig) => resolve(code ?? (sig as string))));
  const s: Serve = { child, base: '', db, exited, log: () => stderr };
  running.push(s);
  await until(() => /http listening on \S+/.test(stderr) || child.exitCode !== null, `serve to listen:\n${stderr}`, 1_200, 50);
  const m = /http listening on (\S+)/.exec(stderr);
  if (!m) throw new Error(`serve did not start:\n${stderr}`);
  s.base = `http://${m[1]}`;
  return s;
}

const ham = fixture('ham-plain.eml');
const spam = fixture('rules/SCAM_LOTTERY_WINNER.eml');

/**
 * POSTs `count` messages over `parallel` connections; resolves with how many were answered 200.
 * `answers` collects queue id → "action score" as the client saw it.
 */
async function check(base: string, count: number, parallel = 16, stop: { after?: number } = {}, answers?: Map<string, string>): Promise<number> {
  let next = 0;
  let answered = 0;
  const one = async (): Promise<void> => {
    while (next < count && (stop.after === undefined || answered < stop.after)) {
      const i = next++;
      const res = await fetch(`${base}/v1/check`, {
        method: 'POST',
        body: i % 5 === 0 ? spam : ham,
        headers: { 'content-type': 'message/rfc822', 'queue-id': `Q${i}` },
      });
      const body = (await res.json()) as { action: string; score: number };
      if (res.status === 200) answered++;
      answers?.set(`Q${i}`, `${body.action} ${body.score}`);
    }
  };
  await Promise.all(Array.from({ length: parallel }, one));
  return answered;
}

const rows = (db: string) => scalar(db, 'SELECT count(*) FROM verdicts') as number;

describe('serve and the verdict log', () => {
  it('10,000 verdicts through POST /v1/check, then SIGTERM: exactly 10,000 rows', async () => {
    const s = await serve();
    const answers = new Map<string, string>();
    expect(await check(s.base, 10_000, 16, {}, answers)).toBe(10_000);
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(0);
    expect(rows(s.db)).toBe(10_000);
    // Each row is the verdict that request was answered with.
    const db = new Database(s.db, { readonly: true });
    const logged = new Map((db.prepare('SELECT queue_id AS q, action, score FROM verdicts').all() as { q: string; action: string; score: number }[]).map((r) => [r.q, `${r.action} ${r.score}`]));
    db.close();
    expect(logged.size).toBe(10_000);
    expect(logged).toEqual(answers);
    expect(scalar(s.db, 'PRAGMA integrity_check')).toBe('ok');
    expect(s.log()).toMatch(/applied migrations 0001_verdicts/);
  }, 300_000);

  it('SIGKILL loses only the verdicts not yet flushed; every written batch survives', async () => {
    // A flush window longer than the test: only full batches of 500 are written, so the loss is
    // exactly the partial batch still queued.
    const s = await serve('log:\n  batchSize: 500\n  flushMs: 600000\n');
    expect(await check(s.base, 2_750)).toBe(2_750);
    await until(() => rows(s.db) === 2_500, 'the five full batches to be written', 400, 50);
    s.child.kill('SIGKILL');
    expect(await s.exited).toBe('SIGKILL');
    expect(rows(s.db)).toBe(2_500);
    expect(scalar(s.db, 'PRAGMA integrity_check')).toBe('ok');
  }, 300_000);

  it('SIGKILL in the middle of writing leaves a database that passes integrity_check', async () => {
    const s = await serve('log:\n  batchSize: 50\n  flushMs: 5\n');
    const load = check(s.base, 100_000, 16, { after: 3_000 });
    await until(() => rows(s.db) > 1_000, 'some batches to be written', 1_200, 50);
    s.child.kill('SIGKILL');
    const answered = await load.catch(() => -1);
    expect(await s.exited).toBe('SIGKILL');
    const n = rows(s.db);
    expect(n).toBeGreaterThan(1_000);
    if (answered >= 0) expect(n).toBeLessThanOrEqual(answered + 16);
    expect(scalar(s.db, 'PRAGMA integrity_check')).toBe('ok');
  }, 300_000);

  it('keeps answering mail while the log file is corrupt, and logs again once it is moved aside', async () => {
    const dir = tempDir('atlas-serve-corrupt-');
    const db = path.join(dir, 'atlas.db');
    writeFileSync(db, 'this is not a SQLite database\n'.repeat(100));
    const s = await serve('log:\n  flushMs: 10\n', db);
    expect(s.log()).toMatch(/ESTORE: verdict log .*atlas\.db: cannot open: the file is not a SQLite database or is corrupt; move it aside/);
    expect(await check(s.base, 20, 4)).toBe(20);
    const health = await fetch(`${s.base}/v1/health`);
    expect(health.status).toBe(503);
    expect(((await health.json()) as { checks: Record<string, { ok: boolean; queued: number }> }).checks.store).toMatchObject({ ok: false, queued: 20 });
    renameSync(db, `${db}.corrupt`);
    // The new file exists a moment before its schema does.
    const logged = () => {
      try {
        return rows(db);
      } catch {
        return -1;
      }
    };
    await until(() => existsSync(db) && logged() === 20, 'the held verdicts to be written to a new file', 1_200, 50);
    expect(await check(s.base, 5, 1)).toBe(5);
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(0);
    expect(rows(db)).toBe(25);
  }, 120_000);

  it('GET /v1/verdicts serves the history of the running process', async () => {
    const s = await serve('log:\n  flushMs: 10\n');
    await check(s.base, 3, 1);
    await until(() => rows(s.db) === 3, 'three verdicts to be written');
    const res = await fetch(`${s.base}/v1/verdicts?limit=2`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { verdicts: { queueId: string }[]; nextCursor: string };
    expect(body.verdicts.map((v) => v.queueId)).toEqual(['Q2', 'Q1']);
    const metrics = await (await fetch(`${s.base}/metrics`)).text();
    expect(metrics).toMatch(/^atlas_log_written_total 3$/m);
    expect(metrics).toMatch(/^atlas_log_dropped_total 0$/m);
    expect(metrics).toMatch(/^atlas_log_writable 1$/m);
    const health = (await (await fetch(`${s.base}/v1/health`)).json()) as { checks: Record<string, { ok: boolean; written: number }> };
    expect(health.checks.store).toMatchObject({ ok: true, written: 3 });
    const bad = await fetch(`${s.base}/v1/verdicts?limit=nope`);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: { code: 'EPROTOCOL', message: expect.stringMatching(/^limit must be/) } });
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(0);
  }, 120_000);
});
