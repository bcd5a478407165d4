// History queries and retention against a real SQLite file written by the real LogWriter.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FilterError } from '../../src/core/errors.ts';
import { openDb } from '../../src/store/db.ts';
import { deleteOlderThan, parseFilters, parseTime, queryVerdicts } from '../../src/store/query.ts';
import { toRow } from '../../src/store/row.ts';
import { LogWriter } from '../../src/store/writer.ts';
import { tempDir, verdict } from './helpers.ts';

const T0 = Date.parse('2026-11-20T00:00:00Z');
const MIN = 60_000;

/** 60 verdicts one minute apart, senders and actions rotating; several share a millisecond. */
function seeded() {
  const file = path.join(tempDir(), 'atlas.db');
  const writer = new LogWriter({ file });
  const actions = ['accept', 'tag', 'reject'] as const;
  const rows = [];
  for (let i = 0; i < 60; i++) {
    const domain = ['example.org', 'spam.test', 'example.net'][i % 3];
    rows.push(toRow(verdict({ action: actions[i % 3], sender: `user${i % 2}@${domain}`, subject: `n${i}`, score: i }), T0 + Math.floor(i / 2) * MIN));
  }
  writer.write(rows);
  writer.close();
  return { file, db: openDb(file, { readonly: true }) };
}

describe('queryVerdicts', () => {
  it('returns the newest first, in the API shape', () => {
    const { db } = seeded();
    const page = queryVerdicts(db, { limit: 2 });
    expect(page.rows.map((r) => r.subject)).toEqual(['n59', 'n58']);
    expect(page.rows[0]).toEqual({
      id: 60,
      time: new Date(T0 + 29 * MIN).toISOString(),
      messageId: '<m1@example.org>',
      queueId: 'ABC123',
      sender: 'user1@example.net',
      senderDomain: 'example.net',
      recipients: ['bob@example.net'],
      subject: 'n59',
      relayIp: '192.0.2.10',
      country: 'NL',
      score: 59,
      action: 'reject',
      source: 'classifier',
      symbols: [{ name: 'DKIM_VALID', score: -0.1, description: 'a valid DKIM signature' }],
      elapsedMs: 0.8,
    });
    db.close();
  });

  it('filters by time window, action and sender (address or domain)', () => {
    const { db } = seeded();
    const subjects = (f: Parameters<typeof queryVerdicts>[1]) => queryVerdicts(db, { limit: 1000, ...f }).rows.map((r) => r.subject);
    expect(subjects({ since: T0 + 28 * MIN })).toEqual(['n59', 'n58', 'n57', 'n56']);
    expect(subjects({ until: T0 + MIN })).toEqual(['n1', 'n0']);
    expect(subjects({ since: T0 + 10 * MIN, until: T0 + 11 * MIN })).toEqual(['n21', 'n20']);
    expect(subjects({ action: ['reject'], since: T0 + 25 * MIN })).toEqual(['n59', 'n56', 'n53', 'n50']);
    expect(subjects({ action: ['reject', 'tag'] })).toHaveLength(40);
    expect(subjects({ sender: 'spam.test' })).toHaveLength(20);
    expect(subjects({ sender: 'USER1@spam.test', since: T0 + 25 * MIN })).toEqual(['n55']);
    expect(subjects({ sender: 'nobody@example.org' })).toEqual([]);
    db.close();
  });

  it('pages with a cursor that covers every row once, even while new rows arrive', () => {
    const { file, db } = seeded();
    const writer = new LogWriter({ file });
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = queryVerdicts(db, { limit: 7, cursor });
      seen.push(...page.rows.map((r) => r.subject));
      cursor = page.nextCursor ?? undefined;
      // Newer verdicts (same millisecond as the newest, too) must not shift the pages being read.
      writer.write([toRow(verdict({ subject: `late${pages}` }), T0 + 29 * MIN), toRow(verdict({ subject: `later${pages}` }), T0 + 90 * MIN)]);
      pages++;
    } while (cursor);
    writer.close();
    expect(pages).toBe(9);
    expect(seen).toEqual(Array.from({ length: 60 }, (_, i) => `n${59 - i}`));
    db.close();
  });

  it('says when there is no next page', () => {
    const { db } = seeded();
    expect(queryVerdicts(db, { limit: 60 }).nextCursor).toBeNull();
    expect(queryVerdicts(db, { limit: 59 }).nextCursor).toEqual(expect.any(String));
    db.close();
  });
});

describe('parseFilters', () => {
  const now = Date.parse('2026-11-23T12:00:00Z');
  it('reads ISO times, ages, action lists, senders, limits and cursors', () => {
    expect(parseFilters({ since: '24h', until: '2026-11-23T11:00:00Z', action: 'Tag,reject', sender: ' Example.ORG ', limit: '10' }, now)).toEqual({
      since: now - 24 * 3_600_000,
      until: Date.parse('2026-11-23T11:00:00Z'),
      action: ['tag', 'reject'],
      sender: 'example.org',
      limit: 10,
    });
    expect(parseTime('2026-11-20', 'since', now)).toBe(Date.parse('2026-11-20'));
    expect(parseTime('15m', 'since', now)).toBe(now - 15 * 60_000);
    expect(parseTime('2w', 'since', now)).toBe(now - 14 * 86_400_000);
  });

  it.each([
    [{ since: 'yesterday' }, /^since must be an ISO 8601 time/],
    [{ until: '12' }, /^until must be/],
    [{ action: 'accept,spam' }, /^action must be one of accept, tag, quarantine, reject, tempfail.*"spam"/],
    [{ limit: '0' }, /^limit must be a whole number from 1 to 1000, got "0"/],
    [{ limit: '1001' }, /^limit must be/],
    [{ limit: '5x' }, /^limit must be/],
    [{ sender: '  ' }, /^sender must not be empty/],
    [{ cursor: 'not-a-cursor' }, /^cursor is not a cursor this server gave out/],
  ])('refuses %j with a message naming the parameter', (params, message) => {
    let error: unknown;
    try {
      parseFilters(params, now);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(FilterError);
    expect(error).toMatchObject({ code: 'EPROTOCOL', details: { param: Object.keys(params)[0] } });
    expect((error as Error).message).toMatch(message);
  });
});

describe('deleteOlderThan', () => {
  it('deletes only older rows, in batches, yielding between them', async () => {
    const { file } = seeded();
    const db = openDb(file);
    let yields = 0;
    const deleted = await deleteOlderThan(db, T0 + 10 * MIN, 7, async () => {
      yields++;
    });
    expect(deleted).toBe(20);
    expect(yields).toBe(2);
    const left = queryVerdicts(db, { limit: 1000 }).rows;
    expect(left).toHaveLength(40);
    expect(Math.min(...left.map((r) => Date.parse(r.time)))).toBe(T0 + 10 * MIN);
    expect(await deleteOlderThan(db, T0 + 10 * MIN)).toBe(0);
    db.close();
  });
});
