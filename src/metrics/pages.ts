// The operator's pages, served by the same Hono app as the API: GET /performance (live charts from
// /v1/stats) and GET /history (the verdict log, through GET /v1/verdicts). Assets are read once at start
// and served from memory; the chart library (uPlot) is bundled from node_modules, so the pages work
// offline. Bound to anything but loopback, the pages and their data need the API token.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import { FilterError } from '../core/errors.ts';
import { parseIp } from '../core/net.ts';
import { sameToken } from '../ingress/token.ts';
import type { Series } from './series.ts';

export interface PagesDeps {
  series: Series;
  http: { host: string; token: string | null };
  /** Trains on a message kept in quarantine, found by Message-ID; absent when nothing can learn. */
  learnFromQuarantine?: (messageId: string, label: 'spam' | 'ham') => Promise<Record<string, unknown>>;
  assetsDir: string;
  uplotDir: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  const ip = parseIp(host);
  if (!ip) return false;
  const v4 = ip[10] === 0xff && ip[11] === 0xff;
  return v4 ? ip[12] === 127 : ip.every((b, i) => (i === 15 ? b === 1 : b === 0));
}

/**
 * The admin guard: open on loopback; elsewhere a bearer token (header), or the `atlas_token` cookie a
 * browser got by opening a page once with ?token=…. No token configured off loopback: refused.
 */
export function adminGuard(http: PagesDeps['http']): MiddlewareHandler {
  const open = isLoopback(http.host);
  return async (c, next) => {
    if (open) return next();
    if (!http.token) throw new FilterError('EAUTH', 'the pages are bound to a public address: set http.token (ATLAS_API_TOKEN) to use them', { status: 403 });
    const bearer = /^Bearer\s+(.+)$/i.exec(c.req.header('authorization') ?? '')?.[1];
    const query = c.req.query('token');
    const given = bearer ?? query ?? getCookie(c, 'atlas_token');
    if (given === undefined || !sameToken(given, http.token)) throw new FilterError('EAUTH', 'missing or wrong token (Authorization: Bearer …, or open the page once with ?token=…)');
    if (query) setCookie(c, 'atlas_token', query, { httpOnly: true, sameSite: 'Strict', path: '/' });
    return next();
  };
}

export function pagesApp(deps: PagesDeps): Hono {
  const files = new Map<string, { body: Uint8Array; type: string }>();
  const load = (name: string, file: string) => {
    files.set(name, { body: new Uint8Array(readFileSync(file)), type: TYPES[path.extname(file)] ?? 'application/octet-stream' });
  };
  for (const f of ['performance.html', 'history.html', 'performance.js', 'history.js', 'common.js', 'style.css']) load(f, path.join(deps.assetsDir, f));
  load('uplot.js', path.join(deps.uplotDir, 'uPlot.iife.min.js'));
  load('uplot.css', path.join(deps.uplotDir, 'uPlot.min.css'));

  const app = new Hono();
  const guard = adminGuard(deps.http);
  // Through the context, so a cookie set by the guard travels with the page.
  const send = (c: Context, name: string) => {
    const f = files.get(name) as { body: Uint8Array; type: string };
    return c.body(f.body as Uint8Array<ArrayBuffer>, 200, { 'content-type': f.type, 'cache-control': name.endsWith('.html') ? 'no-store' : 'public, max-age=3600' });
  };
  app.use('/performance', guard);
  app.use('/history', guard);
  app.use('/v1/stats', guard);
  app.use('/v1/history/*', guard);
  app.get('/', (c) => c.redirect('/performance'));
  app.get('/performance', (c) => send(c, 'performance.html'));
  app.get('/history', (c) => send(c, 'history.html'));
  app.get('/assets/:name', (c) => {
    const name = c.req.param('name');
    if (!files.has(name) || name.endsWith('.html')) throw new FilterError('EPROTOCOL', `no asset ${name}`, { status: 404 });
    return send(c, name);
  });
  app.get('/v1/stats', (c) => c.json(deps.series.snapshot()));
  app.post('/v1/history/learn', async (c) => {
    const body = (await c.req.json().catch(() => null)) as { messageId?: unknown; label?: unknown } | null;
    const messageId = typeof body?.messageId === 'string' ? body.messageId : '';
    const label = body?.label;
    if (!messageId || (label !== 'spam' && label !== 'ham')) {
      throw new FilterError('EPROTOCOL', 'send {"messageId": "<…>", "label": "spam" | "ham"}');
    }
    if (!deps.learnFromQuarantine) throw new FilterError('EWORKER', 'this process cannot learn (no model loaded)');
    return c.json({ learned: label, messageId, ...(await deps.learnFromQuarantine(messageId, label)) });
  });
  return app;
}
