// `atlas-email serve` as an operator runs it: a real process, the HTTP door on port 0, SIGTERM.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fixture, root } from '../helpers/env.ts';
import { RULES_ONLY, type ServeProcess, startServe, stopServe, trainModel } from './http-helpers.ts';

let proc: ServeProcess | undefined;
afterEach(async () => {
  await stopServe(proc);
  proc = undefined;
});

describe('atlas-email serve (HTTP door)', () => {
  it('serves check, health and metrics, then exits 0 on SIGTERM', async () => {
    proc = await startServe(RULES_ONLY);
    const base = `http://${proc.address}`;
    expect(proc.address).toMatch(/^127\.0\.0\.1:\d+$/);

    const res = await fetch(`${base}/v1/check`, {
      method: 'POST',
      body: fixture('rules/SCAM_LOTTERY_WINNER.eml'),
      headers: { 'content-type': 'message/rfc822', 'Queue-Id': 'ABC123' },
    });
    expect(res.status).toBe(200);
    const v = await res.json();
    expect(v).toMatchObject({ action: 'tag', spam: true, queueId: 'ABC123' });
    expect(v.symbols.map((s: { name: string }) => s.name)).toContain('SCAM_LOTTERY_WINNER');

    const health = await fetch(`${base}/v1/health`);
    expect(health.status).toBe(200);
    const checks = (await health.json()).checks;
    expect(checks.pool.ok).toBe(true);
    expect(checks.store).toMatchObject({ ok: true, file: path.join(proc.dir, 'atlas.db') });

    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/^atlas_verdicts_total\{action="tag",source="\w+"\} 1$/m);
    expect(metrics).toMatch(/^atlas_cache_requests_total\{level="verdict",result="miss"\} \d+$/m);
    expect(metrics).toMatch(/^process_resident_memory_bytes \d+/m);

    const learn = await fetch(`${base}/v1/learn/spam`, { method: 'POST', body: fixture('ham-plain.eml') });
    expect(learn.status).toBe(403);

    proc.child.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
    expect(proc.log()).toMatch(/SIGTERM: stopping/);
    expect(proc.log()).toMatch(/stopped/);
  });

  it('with a model: classifies in the pool, answers repeats from the cache, reports the pool in health', async () => {
    const { dir, model } = trainModel();

    proc = await startServe(['--model', model], { ATLAS_API_TOKEN: 'test-token-123' });
    const base = `http://${proc.address}`;
    const check = async () => (await fetch(`${base}/v1/check`, { method: 'POST', body: fixture('ham-plain.eml') })).json();
    expect((await check()).source).toBe('classifier');
    expect((await check()).source).toBe('cache');

    const health = await (await fetch(`${base}/v1/health`)).json();
    expect(health.checks.pool).toMatchObject({ ok: true, classifier: 'running', workers: expect.any(Number), queued: 0 });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/^atlas_verdicts_total\{action="\w+",source="cache"\} 1$/m);
    expect(metrics).toMatch(/^atlas_pool_queue_depth 0$/m);
    expect(metrics).toMatch(/^atlas_scan_stage_seconds_count\{stage="classify"\} [1-9]/m);

    // Learning over HTTP: refused without the token; with it the model file and the pool are updated.
    const lottery = fixture('rules/SCAM_LOTTERY_WINNER.eml');
    const refused = await fetch(`${base}/v1/learn/ham`, { method: 'POST', body: lottery });
    expect(refused.status).toBe(401);
    const before = readFileSync(model);
    const learned = await fetch(`${base}/v1/learn/ham`, { method: 'POST', body: lottery, headers: { authorization: 'Bearer test-token-123' } });
    expect(learned.status).toBe(200);
    expect(await learned.json()).toEqual({ learned: 'ham', modelVersion: 1, learnedSinceStart: 1 });
    expect(readFileSync(model).equals(before)).toBe(false);
    const afterLearn = await (await fetch(`${base}/v1/health`)).json();
    expect(afterLearn.checks.pool.modelVersion).toBe(1);
    // The reload cleared the verdict cache: the next answer comes from the new model.
    expect((await check()).source).toBe('classifier');
  });

  it('answers 503 with Retry-After when the real pool queue is full, and 200 to the rest', async () => {
    const { dir, model } = trainModel();
    writeFileSync(path.join(dir, 'config.yaml'), 'pool: { workers: 1, queueLength: 1 }\nauth: { enabled: false }\n');
    proc = await startServe(['--model', model, '--config', path.join(dir, 'config.yaml')]);

    // Unique bodies (no cache hits), all at once, each large enough to keep the one worker busy.
    const filler = 'lorem ipsum dolor sit amet '.repeat(8000);
    const base = Buffer.from(fixture('ham-plain.eml')).toString('latin1');
    const replies = await Promise.all(
      Array.from({ length: 120 }, (_, i) =>
        fetch(`http://${proc!.address}/v1/check`, { method: 'POST', body: `${base}\n${filler}${i}\n` }).then(async (r) => ({
          status: r.status,
          retryAfter: r.headers.get('retry-after'),
          body: await r.json(),
        })),
      ),
    );
    const refused = replies.filter((r) => r.status === 503);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) {
      expect(r.retryAfter).toBe('1');
      expect(r.body.error.code).toBe('EOVERLOAD');
    }
    for (const r of replies.filter((x) => x.status !== 503)) expect(r.status).toBe(200);
    const metrics = await (await fetch(`http://${proc.address}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`^atlas_scan_failures_total\\{code="EOVERLOAD"\\} ${refused.length}$`, 'm'));
  });

  it('finishes a request that is in flight when SIGTERM arrives', async () => {
    proc = await startServe();
    const body = Buffer.from(fixture('ham-plain.eml'));
    const sock = net.connect(proc.port, '127.0.0.1');
    let reply = '';
    sock.on('data', (d) => (reply += d.toString('latin1')));
    const closed = new Promise<void>((r) => sock.on('close', () => r()));
    await new Promise<void>((r) => sock.on('connect', () => r()));
    // Headers and half the body now; the rest after the signal.
    sock.write(`POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`);
    sock.write(body.subarray(0, 100));
    await new Promise((r) => setTimeout(r, 200));
    proc.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    sock.write(body.subarray(100));
    await closed;
    expect(reply).toMatch(/^HTTP\/1\.1 200/);
    expect(reply).toMatch(/connection: close/i);
    expect(reply).toContain('"action":"accept"');
    expect(await proc.exited).toBe(0);
  });

  it('--no-http starts no HTTP door', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'atlas-http-'));
    const child = spawn(process.execPath, [path.join(root, 'dist/cli/index.js'), 'serve', '--no-http', '--db', path.join(dir, 'a.db')], {
      cwd: dir,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code).toBe(0);
    expect(err).not.toMatch(/http listening/);
    expect(err).toMatch(/no door enabled/);
  });
});
