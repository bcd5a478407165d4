// The verdict store end to end in one process: the real writer thread (from dist/, run
// `npm run build` first), real SQLite files, and real storage failures: a lock held by another
// connection, a file that is not a database, an immutable folder, a full file system.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { Verdict } from '../../src/core/verdict.ts';
import { defaultMigrationsDir } from '../../src/store/migrate.ts';
import { toRow } from '../../src/store/row.ts';
import { openStore, type StoreOptions, type VerdictStore } from '../../src/store/store.ts';
import { LogWriter } from '../../src/store/writer.ts';
import { scalar, tempDir, until, verdict } from './helpers.ts';

const opened: VerdictStore[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
});

async function store(over: Partial<StoreOptions> & { file: string }, logs: string[] = []): Promise<VerdictStore> {
  const s = await openStore({ batchSize: 500, flushMs: 50, queueLength: 100_000, closeTimeoutMs: 500, log: (m) => logs.push(m), ...over });
  opened.push(s);
  return s;
}

const rows = (file: string) => scalar(file, 'SELECT count(*) FROM verdicts') as number;

/** flush() until it resolves: each call retries the held batch at once. */
async function flushUntilWritten(s: VerdictStore, what: string): Promise<void> {
  let ok = false;
  await until(async () => {
    ok = await s.flush().then(
      () => true,
      () => false,
    );
    return ok;
  }, what);
}

describe('openStore', () => {
  it('logs 10,000 verdicts in batches and has exactly 10,000 rows after close', async () => {
    const file = path.join(tempDir(), 'data', 'atlas.db');
    const logs: string[] = [];
    const s = await store({ file }, logs);
    expect(logs[0]).toMatch(/applied migrations 0001_verdicts/);
    for (let i = 0; i < 10_000; i++) s.record(verdict({ messageId: `<${i}@example.org>`, action: i % 10 === 0 ? 'reject' : 'accept' }));
    expect(s.stats().queued).toBeGreaterThan(0);
    await s.close();
    expect(s.stats()).toMatchObject({ queued: 0, written: 10_000, dropped: 0, failedBatches: 0, lastError: null, writable: true });
    expect(s.stats().transactions).toBeGreaterThanOrEqual(2);
    expect(s.stats().transactions).toBeLessThanOrEqual(20);
    expect(rows(file)).toBe(10_000);
    expect(scalar(file, `SELECT count(DISTINCT message_id) FROM verdicts`)).toBe(10_000);
    expect(scalar(file, `SELECT count(*) FROM verdicts WHERE action = 'reject'`)).toBe(1_000);
    expect(scalar(file, 'PRAGMA integrity_check')).toBe('ok');
    expect(scalar(file, 'PRAGMA journal_mode')).toBe('wal');
  });

  it('keeps every column of the verdict', async () => {
    const file = path.join(tempDir(), 'atlas.db');
    const s = await store({ file });
    const v = verdict({ sender: 'Alice@Example.ORG', country: 'DE', score: 7.25, action: 'tag', source: 'early', elapsedMs: 0.35 });
    s.record(v);
    await s.flush();
    const row = new Database(file, { readonly: true }).prepare('SELECT * FROM verdicts').get();
    expect(row).toEqual({
      id: 1,
      time: expect.any(Number),
      message_id: '<m1@example.org>',
      queue_id: 'ABC123',
      sender: 'alice@example.org',
      sender_domain: 'example.org',
      recipients: '["bob@example.net"]',
      subject: 'Quarterly report',
      relay_ip: '192.0.2.10',
      country: 'DE',
      score: 7.25,
      action: 'tag',
      source: 'early',
      symbols: JSON.stringify(v.symbols),
      elapsed_ms: 0.35,
    });
    expect(Math.abs((row as { time: number }).time - Date.now())).toBeLessThan(60_000);
  });

  it('writes a partial batch after the flush window without being asked', async () => {
    const file = path.join(tempDir(), 'atlas.db');
    const s = await store({ file, batchSize: 1_000, flushMs: 20 });
    for (let i = 0; i < 3; i++) s.record(verdict());
    await until(() => s.stats().written === 3, 'the flush window to write 3 verdicts');
    expect(rows(file)).toBe(3);
  });

  it('answers history queries from the writer thread', async () => {
    const s = await store({ file: path.join(tempDir(), 'atlas.db') });
    for (let i = 0; i < 5; i++) s.record(verdict({ subject: `s${i}`, action: i < 2 ? 'reject' : 'accept' }));
    await s.flush();
    const page = await s.query({ action: ['reject'], limit: 1 });
    expect(page.rows.map((r) => r.subject)).toEqual(['s1']);
    expect(page.nextCursor).toEqual(expect.any(String));
    expect((await s.query({ action: ['reject'], cursor: page.nextCursor as string })).rows.map((r) => r.subject)).toEqual(['s0']);
  });

  it('never throws from record(): an unserialisable verdict and verdicts after close are counted as dropped', async () => {
    const logs: string[] = [];
    const s = await store({ file: path.join(tempDir(), 'atlas.db') }, logs);
    const circular = verdict();
    (circular.symbols as unknown as unknown[]).push(circular);
    expect(() => s.record(circular)).not.toThrow();
    expect(() => s.record(null as unknown as Verdict)).not.toThrow();
    await s.close();
    expect(() => s.record(verdict())).not.toThrow();
    expect(s.stats()).toMatchObject({ dropped: 3, written: 0 });
    expect(logs.some((l) => /a verdict could not be queued/.test(l))).toBe(true);
  });

  it('applies retainDays when it starts (and hourly after)', async () => {
    const file = path.join(tempDir(), 'atlas.db');
    const writer = new LogWriter({ file });
    writer.write([toRow(verdict({ subject: 'old' }), Date.now() - 3 * 86_400_000), toRow(verdict({ subject: 'new' }), Date.now())]);
    writer.close();
    const s = await store({ file, retainDays: 2 });
    await until(() => rows(file) === 1, 'the 3-day-old verdict to be deleted');
    expect((await s.query({})).rows.map((r) => r.subject)).toEqual(['new']);
  });

  it('refuses bad options with a RangeError naming them', async () => {
    await expect(openStore({ file: 'x.db', batchSize: 0, flushMs: 1, queueLength: 1, log: () => {} })).rejects.toThrow(
      /batchSize must be a positive whole number, got 0/,
    );
  });
});

describe('when the file cannot be written', () => {
  it('holds verdicts while another process holds the lock, then writes them', async () => {
    const file = path.join(tempDir(), 'atlas.db');
    const logs: string[] = [];
    const s = await store({ file, busyTimeoutMs: 50 }, logs);
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    s.record(verdict());
    await expect(s.flush()).rejects.toMatchObject({ code: 'ESTORE', details: { reason: 'locked' } });
    expect(s.stats()).toMatchObject({ writable: false, queued: 1, failedBatches: 1, lastError: expect.stringMatching(/locked by another process.*SQLITE_BUSY/) });
    other.exec('COMMIT');
    other.close();
    await flushUntilWritten(s, 'the lock to be released');
    expect(s.stats()).toMatchObject({ writable: true, written: 1, queued: 0 });
    expect(rows(file)).toBe(1);
    expect(logs.some((l) => /writable again/.test(l))).toBe(true);
  });

  it('group commit: batches that queue up behind a write go together, up to groupRows per transaction', async () => {
    const file = path.join(tempDir(), 'atlas.db');
    const s = await store({ file, busyTimeoutMs: 50, batchSize: 10, groupRows: 40 });
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    for (let i = 0; i < 10; i++) s.record(verdict({ messageId: `<${i}@example.org>` }));
    await expect(s.flush()).rejects.toMatchObject({ details: { reason: 'locked' } });
    // Nine more batches wait behind the held one while the lock is held.
    for (let i = 10; i < 100; i++) s.record(verdict({ messageId: `<${i}@example.org>` }));
    other.exec('COMMIT');
    other.close();
    await flushUntilWritten(s, 'the lock to be released');
    // The held batch is retried alone (it was sent before the others queued); the other 90 rows go
    // in groups of at most 40: 1 + 3 transactions, not 10.
    expect(s.stats()).toMatchObject({ written: 100, transactions: 4, dropped: 0 });
    expect(rows(file)).toBe(100);
    // In the order recorded: <i@example.org> is row i + 1.
    expect(scalar(file, "SELECT count(*) FROM verdicts WHERE id = CAST(substr(message_id, 2, length(message_id) - 14) AS INTEGER) + 1")).toBe(100);
  });

  it('a group SQLite refuses is split into its batches, so only the batch with the bad verdict is given up', async () => {
    const file = path.join(tempDir(), 'atlas.db');
    const s = await store({ file, busyTimeoutMs: 50, batchSize: 10, groupRows: 100 });
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    for (let i = 0; i < 10; i++) s.record(verdict());
    await expect(s.flush()).rejects.toMatchObject({ details: { reason: 'locked' } });
    // score NaN binds as NULL, which the NOT NULL column refuses: a fault in the data, not the disk.
    for (let i = 10; i < 40; i++) s.record(verdict({ score: i === 25 ? Number.NaN : 1 }));
    other.exec('COMMIT');
    other.close();
    await s.close();
    expect(s.stats()).toMatchObject({ written: 30, dropped: 10, queued: 0 });
    expect(rows(file)).toBe(30);
    expect(s.stats().lastError).toMatch(/NOT NULL constraint failed: verdicts.score/);
  });

  it('bounds the queue: past queueLength verdicts are dropped, counted and logged at a limited rate', async () => {
    const file = path.join(tempDir(), 'atlas.db');
    const logs: string[] = [];
    const s = await store({ file, busyTimeoutMs: 50, batchSize: 10, queueLength: 100 }, logs);
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    for (let i = 0; i < 250; i++) s.record(verdict());
    expect(s.stats()).toMatchObject({ queued: 100, dropped: 150 });
    const dropLines = logs.filter((l) => /queue full \(100\)/.test(l));
    expect(dropLines.length).toBe(1);
    other.exec('COMMIT');
    other.close();
    await flushUntilWritten(s, 'the held verdicts to be written');
    expect(rows(file)).toBe(100);
  });

  it('names a corrupt file at start, keeps accepting verdicts, and writes them once the file is moved aside', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'atlas.db');
    writeFileSync(file, 'not a database, just text '.repeat(200));
    const logs: string[] = [];
    const s = await store({ file }, logs);
    expect(s.stats()).toMatchObject({ writable: false, lastError: expect.stringMatching(/not a SQLite database or is corrupt.*SQLITE_NOTADB/) });
    expect(logs[0]).toMatch(/^ESTORE: verdict log .*atlas\.db: cannot open: the file is not a SQLite database or is corrupt; move it aside/);
    s.record(verdict());
    await expect(s.flush()).rejects.toMatchObject({ code: 'ESTORE', details: { reason: 'corrupt' } });
    renameSync(file, path.join(dir, 'atlas.db.corrupt'));
    await flushUntilWritten(s, 'a new log file to be created');
    expect(rows(file)).toBe(1);
  });

  it('holds verdicts while a migration fails at open, and names the migration', async () => {
    const dir = path.join(tempDir(), 'migrations');
    mkdirSync(dir);
    for (const f of ['0001_verdicts.up.sql', '0001_verdicts.down.sql']) copyFileSync(path.join(defaultMigrationsDir(), f), path.join(dir, f));
    writeFileSync(path.join(dir, '0002_bad.up.sql'), 'CREATE TABLE verdicts (id INTEGER);');
    writeFileSync(path.join(dir, '0002_bad.down.sql'), '');
    const file = path.join(tempDir(), 'atlas.db');
    const s = await store({ file, migrationsDir: dir });
    expect(s.stats().lastError).toMatch(/apply migration 0002_bad\.up\.sql.*table verdicts already exists.*schema stays at version 1/);
    s.record(verdict());
    expect(s.stats().queued).toBe(1);
  });

  it('gives up on close after closeTimeoutMs, saying how many verdicts were not written', async () => {
    const file = path.join(tempDir(), 'atlas.db');
    const logs: string[] = [];
    const s = await openStore({ file, batchSize: 10, flushMs: 20, queueLength: 100, busyTimeoutMs: 20, closeTimeoutMs: 200, log: (m) => logs.push(m) });
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    s.record(verdict());
    s.record(verdict());
    await s.close();
    other.exec('COMMIT');
    other.close();
    expect(logs.some((l) => /closing the verdict log with 2 verdicts unwritten: .*locked/.test(l))).toBe(true);
  });

  // Tests run as root, where permission bits do not stop writes; the immutable attribute does.
  const chattrWorks = (() => {
    const d = tempDir('atlas-chattr-');
    try {
      execFileSync('chattr', ['+i', d], { stdio: 'ignore' });
      execFileSync('chattr', ['-i', d], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  })();

  it.skipIf(!chattrWorks)('holds verdicts while the folder and files are immutable (read-only), then resumes', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'atlas.db');
    const logs: string[] = [];
    const s = await store({ file }, logs);
    s.record(verdict());
    await s.flush();
    // The -shm index stays writable: SQLite maps it into memory, and making a mapped file immutable
    // is not something a read-only mount does to a running process.
    const locked = [dir, file, `${file}-wal`];
    execFileSync('chattr', ['+i', ...locked]);
    try {
      s.record(verdict());
      await expect(s.flush()).rejects.toMatchObject({ code: 'ESTORE' });
      s.record(verdict());
      await expect(s.flush()).rejects.toThrow(/read-only; make it writable by the filter \(SQLITE_READONLY/);
      expect(s.stats()).toMatchObject({ writable: false, queued: 2 });
    } finally {
      execFileSync('chattr', ['-i', ...locked]);
    }
    await flushUntilWritten(s, 'the folder to become writable');
    expect(s.stats()).toMatchObject({ writable: true, written: 3 });
    expect(rows(file)).toBe(3);
    expect(scalar(file, 'PRAGMA integrity_check')).toBe('ok');
  });

  const mountWorks = (() => {
    const d = tempDir('atlas-mount-');
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', d], { stdio: 'ignore' });
      execFileSync('umount', [d], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  })();

  it.skipIf(!mountWorks)('holds verdicts while the disk is full (a 512 KiB tmpfs), then resumes when space is freed', async () => {
    const dir = tempDir();
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', dir]);
    try {
      const file = path.join(dir, 'atlas.db');
      const s = await store({ file, batchSize: 100 });
      writeFileSync(path.join(dir, 'filler'), Buffer.alloc(256 * 1024));
      let failure: unknown;
      for (let i = 0; i < 200 && !failure; i++) {
        for (let j = 0; j < 100; j++) s.record(verdict({ subject: 'x'.repeat(400) }));
        await s.flush().catch((e: unknown) => (failure = e));
      }
      expect(failure).toMatchObject({ code: 'ESTORE', details: { reason: 'full' } });
      expect((failure as Error).message).toMatch(/the disk is full; free space \(SQLITE_FULL/);
      const { written, queued } = s.stats();
      expect(queued).toBeGreaterThan(0);
      rmSync(path.join(dir, 'filler'));
      await flushUntilWritten(s, 'space to be freed');
      expect(s.stats().written).toBe(written + queued);
      await s.close();
      opened.splice(opened.indexOf(s), 1);
      expect(rows(file)).toBe(written + queued);
      expect(scalar(file, 'PRAGMA integrity_check')).toBe('ok');
    } finally {
      // Lazy, so a store a failed assertion left open cannot keep the mount (afterEach closes it).
      execFileSync('umount', ['-l', dir]);
    }
  });
});
