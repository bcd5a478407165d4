// History: the filters shared by GET /v1/verdicts and `atlas-email history`, newest first, with a
// cursor that stays stable while new verdicts arrive (it points at a (time, id) position, not an offset).
import { FilterError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import { domainOf } from '../core/look.ts';
import { ACTIONS, type Action } from '../core/verdict.ts';
import type { Db } from './db.ts';
import { type DbRow, fromDbRow, type LoggedVerdict } from './row.ts';

export interface VerdictFilters {
  /** Oldest time included, ms since the epoch. */
  since?: number;
  /** First time excluded, ms since the epoch. */
  until?: number;
  action?: Action[];
  /** "user@domain" matches that sender; a bare domain matches every sender at it. */
  sender?: string;
  /** Page size, 1..limits.historyMaxLimit (default 50). */
  limit?: number;
  /** nextCursor of the previous page. */
  cursor?: string;
}

export interface VerdictPage {
  rows: LoggedVerdict[];
  /** Pass back as `cursor` for the next (older) page; null on the last page. */
  nextCursor: string | null;
}

export const DEFAULT_LIMIT = 50;

function bad(param: string, message: string): never {
  throw new FilterError('EPROTOCOL', `${param} ${message}`, { param });
}

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** A time as ISO 8601 ("2026-11-23", "2026-11-23T10:00:00Z") or an age ("90s", "15m", "24h", "7d", "2w"). */
export function parseTime(value: string, param: string, now: number): number {
  const v = value.trim();
  const age = /^(\d+(?:\.\d+)?)([smhdw])$/.exec(v);
  if (age) return now - Math.round(Number(age[1]) * (UNITS[age[2] as string] as number));
  const t = /^\d{4}-\d{2}-\d{2}/.test(v) ? Date.parse(v) : NaN;
  if (!Number.isFinite(t)) bad(param, `must be an ISO 8601 time (2026-11-23T10:00:00Z) or an age (15m, 24h, 7d), got "${value}"`);
  return t;
}

export function encodeCursor(time: number, id: number): string {
  return Buffer.from(`${time}:${id}`).toString('base64url');
}

function decodeCursor(cursor: string): { time: number; id: number } {
  const m = /^(\d{1,16}):(\d{1,16})$/.exec(Buffer.from(cursor, 'base64url').toString('latin1'));
  if (!m) bad('cursor', 'is not a cursor this server gave out');
  return { time: Number(m[1]), id: Number(m[2]) };
}

/**
 * Reads filters from query-string style text (the HTTP query, CLI flags). Unknown keys are the
 * caller's business; a bad value throws EPROTOCOL naming the parameter.
 */
export function parseFilters(params: Record<string, string | undefined>, now = Date.now()): VerdictFilters {
  const f: VerdictFilters = {};
  if (params.since) f.since = parseTime(params.since, 'since', now);
  if (params.until) f.until = parseTime(params.until, 'until', now);
  if (params.action) {
    const list = params.action.split(',').map((a) => a.trim().toLowerCase());
    for (const a of list) if (!(ACTIONS as readonly string[]).includes(a)) bad('action', `must be one of ${ACTIONS.join(', ')} (comma-separated), got "${a}"`);
    f.action = list as Action[];
  }
  if (params.sender !== undefined) {
    const s = params.sender.trim().toLowerCase();
    if (!s) bad('sender', 'must not be empty');
    f.sender = s;
  }
  if (params.limit !== undefined) {
    const n = Number(params.limit);
    if (!/^\d+$/.test(params.limit) || n < 1 || n > limits.historyMaxLimit) bad('limit', `must be a whole number from 1 to ${limits.historyMaxLimit}, got "${params.limit}"`);
    f.limit = n;
  }
  if (params.cursor) {
    decodeCursor(params.cursor);
    f.cursor = params.cursor;
  }
  return f;
}

type Statement = ReturnType<Db['prepare']>;
const statements = new WeakMap<Db, Map<string, Statement>>();

function prepared(db: Db, sql: string): Statement {
  let cache = statements.get(db);
  if (!cache) statements.set(db, (cache = new Map()));
  let stmt = cache.get(sql);
  if (!stmt) cache.set(sql, (stmt = db.prepare(sql)));
  return stmt;
}

/** One page of the verdict log, newest first. */
export function queryVerdicts(db: Db, filters: VerdictFilters = {}): VerdictPage {
  const where: string[] = [];
  const params: Record<string, string | number> = {};
  if (filters.since !== undefined) {
    where.push('time >= @since');
    params.since = filters.since;
  }
  if (filters.until !== undefined) {
    where.push('time < @until');
    params.until = filters.until;
  }
  if (filters.action?.length) {
    where.push(`action IN (${filters.action.map((_, i) => `@a${i}`).join(', ')})`);
    filters.action.forEach((a, i) => (params[`a${i}`] = a));
  }
  if (filters.sender) {
    const s = filters.sender.toLowerCase();
    // The domain narrows through its index even when a full address is asked for.
    where.push('sender_domain = @domain');
    if (s.includes('@')) {
      params.domain = domainOf(s);
      where.push('sender = @sender');
      params.sender = s;
    } else {
      params.domain = s;
    }
  }
  if (filters.cursor) {
    const c = decodeCursor(filters.cursor);
    where.push('(time < @ct OR (time = @ct AND id < @cid))');
    params.ct = c.time;
    params.cid = c.id;
  }
  const limit = Math.min(Math.max(1, filters.limit ?? DEFAULT_LIMIT), limits.historyMaxLimit);
  params.limit = limit + 1;
  const sql = `SELECT * FROM verdicts${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY time DESC, id DESC LIMIT @limit`;
  const raw = prepared(db, sql).all(params) as DbRow[];
  const more = raw.length > limit;
  const page = more ? raw.slice(0, limit) : raw;
  const last = page[page.length - 1];
  return { rows: page.map(fromDbRow), nextCursor: more && last ? encodeCursor(last.time, last.id) : null };
}

/**
 * Deletes verdicts older than `cutoff` in transactions of `batchRows`, so a writer waits at most one
 * small batch. `between` runs between batches (the writer thread yields there). Returns rows deleted.
 */
export async function deleteOlderThan(
  db: Db,
  cutoff: number,
  batchRows: number = limits.retentionBatchRows,
  between: () => Promise<void> = async () => {},
): Promise<number> {
  const stmt = prepared(db, 'DELETE FROM verdicts WHERE id IN (SELECT id FROM verdicts WHERE time < ? ORDER BY time LIMIT ?)');
  let total = 0;
  for (;;) {
    const { changes } = stmt.run([cutoff, batchRows]);
    total += changes;
    if (changes < batchRows) return total;
    await between();
  }
}
