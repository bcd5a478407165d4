// GET /v1/verdicts through app.request(), over a real store (writer thread from dist/).
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { storeHealth, verdictRoutes } from '../../src/store/routes.ts';
import { openStore, type VerdictStore } from '../../src/store/store.ts';
import { tempDir, verdict } from './helpers.ts';

let store: VerdictStore | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
});

async function seeded(n: number) {
  store = await openStore({ file: path.join(tempDir(), 'atlas.db'), batchSize: 100, flushMs: 20, queueLength: 1_000, log: () => {} });
  for (let i = 0; i < n; i++) {
    store.record(verdict({ subject: `s${i}`, action: i % 2 ? 'reject' : 'accept', sender: i % 3 ? `u${i}@example.org` : `u${i}@spam.test` }));
  }
  await store.flush();
  return verdictRoutes(store);
}

describe('GET /v1/verdicts', () => {
  it('pages newest first with a cursor until nextCursor is null', async () => {
    const app = await seeded(25);
    const seen: string[] = [];
    let cursor = '';
    for (let page = 0; page < 10; page++) {
      const res = await app.request(`/v1/verdicts?limit=10${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      const body = (await res.json()) as { verdicts: { subject: string }[]; nextCursor: string | null };
      seen.push(...body.verdicts.map((v) => v.subject));
      if (!body.nextCursor) break;
      cursor = encodeURIComponent(body.nextCursor);
    }
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => `s${24 - i}`));
  });

  it('filters by action, sender and time', async () => {
    const app = await seeded(12);
    const subjects = async (q: string) =>
      ((await (await app.request(`/v1/verdicts?${q}`)).json()) as { verdicts: { subject: string }[] }).verdicts.map((v) => v.subject);
    expect(await subjects('action=reject&sender=spam.test')).toEqual(['s9', 's3']);
    expect(await subjects('sender=u4@example.org')).toEqual(['s4']);
    expect(await subjects('since=1h&action=accept&limit=2')).toEqual(['s10', 's8']);
    expect(await subjects(`until=${encodeURIComponent(new Date(Date.now() - 3_600_000).toISOString())}`)).toEqual([]);
  });

  it.each([
    ['limit=0', 'limit'],
    ['since=last-tuesday', 'since'],
    ['action=maybe', 'action'],
    ['cursor=zzz', 'cursor'],
  ])('answers 400 with a JSON error for %s', async (q, param) => {
    const app = await seeded(1);
    const res = await app.request(`/v1/verdicts?${q}`);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('EPROTOCOL');
    expect(body.error.message.startsWith(`${param} `)).toBe(true);
  });

  it('answers 503 with ESTORE when the log cannot be read', async () => {
    const app = await seeded(1);
    await store?.close();
    const res = await app.request('/v1/verdicts');
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ESTORE');
  });
});

describe('storeHealth', () => {
  it('reports the counters and is healthy while the log is writable', async () => {
    await seeded(3);
    expect(storeHealth(store as VerdictStore)).toEqual({
      name: 'store',
      ok: true,
      detail: { file: (store as VerdictStore).file, queued: 0, written: 3, dropped: 0, failedBatches: 0, lastError: null },
    });
  });
});
