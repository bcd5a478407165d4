// GET /v1/verdicts: the verdict log over HTTP, as a Hono sub-app the HTTP door mounts with
// app.route('/', verdictRoutes(store)). Same filters and cursor as `atlas-email history`.
import { Hono } from 'hono';
import { toFilterError } from '../core/errors.ts';
import { parseFilters } from './query.ts';
import type { VerdictStore } from './store.ts';

const PARAMS = ['since', 'until', 'action', 'sender', 'limit', 'cursor'] as const;

export function verdictRoutes(store: Pick<VerdictStore, 'query'>): Hono {
  const app = new Hono();
  app.get('/v1/verdicts', async (c) => {
    try {
      const filters = parseFilters(Object.fromEntries(PARAMS.map((p) => [p, c.req.query(p)])));
      const page = await store.query(filters);
      return c.json({ verdicts: page.rows, nextCursor: page.nextCursor });
    } catch (e) {
      const err = toFilterError(e);
      // A bad parameter is the caller's to fix; a log that cannot be read now is worth retrying.
      const status = err.code === 'EPROTOCOL' ? 400 : err.code === 'ESTORE' ? 503 : 500;
      return c.json({ error: { code: err.code, message: err.message } }, status);
    }
  });
  return app;
}

/** The store's line in /v1/health: unhealthy while verdicts cannot be written (mail still flows). */
export function storeHealth(store: Pick<VerdictStore, 'stats' | 'file'>): { name: string; ok: boolean; detail: Record<string, unknown> } {
  const s = store.stats();
  return {
    name: 'store',
    ok: s.writable,
    detail: { file: store.file, queued: s.queued, written: s.written, dropped: s.dropped, failedBatches: s.failedBatches, lastError: s.lastError },
  };
}
