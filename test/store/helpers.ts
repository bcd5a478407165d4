// Shared by the store tests: verdicts that look like the pipeline's, temp folders, row counts.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import Database from 'better-sqlite3';
import type { Verdict } from '../../src/core/verdict.ts';

export function verdict(over: Partial<Verdict> = {}): Verdict {
  return {
    action: 'accept',
    score: 1.2,
    required: 5,
    spam: false,
    symbols: [{ name: 'DKIM_VALID', score: -0.1, description: 'a valid DKIM signature' }],
    source: 'classifier',
    elapsedMs: 0.8,
    messageId: '<m1@example.org>',
    queueId: 'ABC123',
    sender: 'alice@example.org',
    recipients: ['bob@example.net'],
    subject: 'Quarterly report',
    relayIp: '192.0.2.10',
    country: 'NL',
    ...over,
  };
}

const made: string[] = [];
afterEach(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A temp folder removed after the test. */
export function tempDir(prefix = 'atlas-store-'): string {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(d);
  return d;
}

/** Reads a number with a fresh connection, as an operator's sqlite3 would. */
export function scalar(file: string, sql: string): unknown {
  const db = new Database(file, { readonly: true });
  try {
    return Object.values(db.prepare(sql).get() as Record<string, unknown>)[0];
  } finally {
    db.close();
  }
}

/** Polls until `check` holds, at most `tries` times `everyMs` apart; the test fails with `what` otherwise. */
export async function until(check: () => boolean | Promise<boolean>, what: string, tries = 400, everyMs = 25): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`gave up waiting: ${what}`);
}
