import path from 'node:path';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { errorResponse } from '../../src/ingress/http.ts';
import { findQuarantined } from '../../src/ingress/smtp/quarantine-find.ts';
import { isLoopback, pagesApp } from '../../src/metrics/pages.ts';
import { Series } from '../../src/metrics/series.ts';
import { root } from '../helpers/env.ts';

function app(host: string, token: string | null, learn?: (id: string, label: 'spam' | 'ham') => Promise<Record<string, unknown>>) {
  const series = new Series({ intervalMs: 1000 });
  const outer = new Hono();
  outer.route('/', pagesApp({ series, http: { host, token }, assetsDir: path.join(root, 'src/metrics/assets'), uplotDir: path.join(root, 'node_modules/uplot/dist'), learnFromQuarantine: learn }));
  outer.onError((e) => errorResponse(e));
  return { outer, series };
}

describe('pages', () => {
  it('serve the dashboard, history and bundled chart library on loopback', async () => {
    const { outer } = app('127.0.0.1', null);
    const perf = await outer.request('/performance');
    expect(perf.status).toBe(200);
    expect(await perf.text()).toContain('<script src="/assets/uplot.js">');
    expect((await outer.request('/history')).status).toBe(200);
    const js = await outer.request('/assets/uplot.js');
    expect(js.headers.get('content-type')).toContain('javascript');
    expect((await js.text()).length).toBeGreaterThan(10_000);
    expect((await outer.request('/assets/../../package.json')).status).toBe(404);
    expect((await outer.request('/')).headers.get('location')).toBe('/performance');
  });

  it('need the token when bound to a public address', async () => {
    const { outer } = app('0.0.0.0', 's3cret');
    expect((await outer.request('/performance')).status).toBe(401);
    expect((await outer.request('/v1/stats')).status).toBe(401);
    expect((await outer.request('/v1/stats', { headers: { authorization: 'Bearer s3cret' } })).status).toBe(200);
    const viaQuery = await outer.request('/performance?token=s3cret');
    expect(viaQuery.status).toBe(200);
    const cookie = viaQuery.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/atlas_token=s3cret;.*HttpOnly/);
    expect((await outer.request('/history', { headers: { cookie: cookie.split(';')[0]! } })).status).toBe(200);
    // The assets themselves are not secret: the pages need them before any token exchange.
    expect((await outer.request('/assets/style.css')).status).toBe(200);
    const none = app('192.0.2.10', null).outer;
    const refused = await none.request('/performance');
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ error: { code: 'EAUTH' } });
  });

  it('report the recent series', async () => {
    const { outer, series } = app('::1', null);
    series.countDoor('smtp');
    series.observe({ action: 'reject', score: 20, required: 5, spam: true, symbols: [], source: 'early', elapsedMs: 0.2, messageId: '<a@b>', stages: { look: 0.01, early: 0.1 } });
    series.tick();
    const s = (await (await outer.request('/v1/stats')).json()) as ReturnType<Series['snapshot']>;
    expect(s.totals.messages).toBe(1);
    expect(s.samples[0]).toMatchObject({ doors: { smtp: 1 }, actions: { reject: 1 }, sources: { early: 1 } });
    expect(s.samples[0]!.latency.total).toEqual({ p50: 0.2, p95: 0.2, p99: 0.2 });
  });

  it('learn from a quarantined message, and say so when it is not there', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'atlas-quarantine-'));
    writeFileSync(path.join(dir, 'q1.json'), JSON.stringify({ id: 'q1', verdict: { messageId: '<held@x>' } }));
    writeFileSync(path.join(dir, 'q1.eml'), 'Subject: held\r\n\r\nbody\r\n');
    const learned: string[] = [];
    const { outer } = app('127.0.0.1', null, async (id, label) => {
      const raw = await findQuarantined(dir, id);
      if (!raw) throw Object.assign(new Error('gone'), {});
      learned.push(`${label}:${Buffer.from(raw).toString().split('\r\n')[0]}`);
      return { changed: true };
    });
    const ok = await outer.request('/v1/history/learn', { method: 'POST', body: JSON.stringify({ messageId: '<held@x>', label: 'spam' }) });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ learned: 'spam', messageId: '<held@x>', changed: true });
    expect(learned).toEqual(['spam:Subject: held']);
    expect(await findQuarantined(dir, '<other@x>')).toBeNull();
    const bad = await outer.request('/v1/history/learn', { method: 'POST', body: JSON.stringify({ messageId: '<held@x>', label: 'maybe' }) });
    expect(bad.status).toBe(400);
  });

  it('tell loopback from public addresses', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) expect(isLoopback(h)).toBe(true);
    for (const h of ['0.0.0.0', '192.0.2.1', '::', 'example.com']) expect(isLoopback(h)).toBe(false);
  });
});
