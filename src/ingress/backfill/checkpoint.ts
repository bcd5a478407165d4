// Where a sweep stands, per account and folder, and what it decided for every message it scanned.
// A batch is written as pending before its IMAP actions run and marked done together with the
// checkpoint in one transaction: a run killed at any point neither scans a message twice nor loses
// a decision it already made.
import { existsSync, readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { FilterError } from '../../core/errors.ts';

/** What happened to a message on the server. */
export type Outcome = 'kept' | 'moved' | 'tagged' | 'flagged' | 'too-large' | 'error';

export interface LedgerRow {
  uid: number;
  messageId: string | null;
  /** The verdict's action, or the error code when the message could not be judged. */
  verdict: string;
  score: number | null;
  spam: boolean;
  outcome: Outcome;
}

export interface FolderKey {
  account: string;
  folder: string;
  /** UIDVALIDITY as a decimal string (IMAP allows the full unsigned 32-bit range). */
  uidValidity: string;
}

export interface Checkpoint {
  uidValidity: string;
  lastUid: number;
}

export interface Ledger {
  get(account: string, folder: string): Checkpoint | undefined;
  /** Starts the folder over: a new UIDVALIDITY means every old UID now names another message. */
  restart(key: FolderKey): void;
  /** Decisions written before a run stopped, whose actions may or may not have reached the server. */
  pending(key: FolderKey): LedgerRow[];
  /** Writes a batch's decisions as pending; `alsoInTransaction` runs inside the same transaction. */
  addPending(key: FolderKey, rows: LedgerRow[], alsoInTransaction?: () => void): void;
  /** Marks the batch done and moves the checkpoint to lastUid, atomically. */
  commit(key: FolderKey, uids: number[], lastUid: number): void;
  close(): void;
}

/** The saved checkpoints of an account, read without creating or changing anything; none without the file. */
export function readCheckpoints(file: string, account: string): (Checkpoint & { account: string; folder: string })[] {
  if (!existsSync(file)) return [];
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const table = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'backfill_checkpoints'").get();
    if (!table) return [];
    return db
      .prepare<[string], { folder: string; uid_validity: string; last_uid: number }>('SELECT folder, uid_validity, last_uid FROM backfill_checkpoints WHERE account = ?')
      .all(account)
      .map((r) => ({ account, folder: r.folder, uidValidity: r.uid_validity, lastUid: r.last_uid }));
  } catch (e) {
    throw new FilterError('ESTORE', `cannot read the backfill checkpoints in ${file}: ${(e as Error).message}`, { file }, { cause: e });
  } finally {
    db?.close();
  }
}

const migrationUp = new URL('../../../migrations/0002_backfill_checkpoints.up.sql', import.meta.url);

interface RawRow {
  uid: number;
  message_id: string | null;
  verdict: string;
  score: number | null;
  spam: number;
  outcome: Outcome;
}

/**
 * The ledger in `target`: a file of its own, or a connection the verdict log already opened (then the
 * ledger's writes and the verdict rows written in `addPending`'s callback share one transaction).
 */
export function openLedger(target: string | Database.Database, now: () => number = Date.now): Ledger {
  const owned = typeof target === 'string';
  const file = typeof target === 'string' ? target : target.name;
  let db: Database.Database;
  try {
    db = typeof target === 'string' ? new Database(target) : target;
    if (owned) {
      db.pragma('journal_mode = WAL');
      // Other writers (the verdict log, a second sweep) share the file: wait for them instead of failing.
      db.pragma('busy_timeout = 5000');
    }
    db.exec(readFileSync(migrationUp, 'utf8'));
  } catch (e) {
    throw new FilterError('ESTORE', `cannot open the backfill checkpoint database ${file}: ${(e as Error).message}`, { file }, { cause: e });
  }
  const getCp = db.prepare<[string, string], { uid_validity: string; last_uid: number }>(
    'SELECT uid_validity, last_uid FROM backfill_checkpoints WHERE account = ? AND folder = ?',
  );
  const setCp = db.prepare(
    `INSERT INTO backfill_checkpoints (account, folder, uid_validity, last_uid, updated_at) VALUES (@account, @folder, @uidValidity, @lastUid, @at)
     ON CONFLICT (account, folder) DO UPDATE SET uid_validity = excluded.uid_validity, last_uid = excluded.last_uid, updated_at = excluded.updated_at`,
  );
  const dropPending = db.prepare("DELETE FROM backfill_messages WHERE account = ? AND folder = ? AND state = 'pending'");
  const listPending = db.prepare<[string, string, string], RawRow>(
    `SELECT uid, message_id, verdict, score, spam, outcome FROM backfill_messages
     WHERE account = ? AND folder = ? AND uid_validity = ? AND state = 'pending' ORDER BY uid`,
  );
  // A plain INSERT, not OR IGNORE: scanning a message twice is a bug that must fail loudly. The batch
  // goes in as one JSON array of rows in one statement: a statement per row cost ~25 µs a message.
  const insert = db.prepare(
    `INSERT INTO backfill_messages (account, folder, uid_validity, uid, message_id, verdict, score, spam, outcome, state, scanned_at)
     SELECT ?, ?, ?, value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, 'pending', ? FROM json_each(?)`,
  );
  // One statement per batch (the UIDs as a JSON array) rather than one per message.
  const markDone = db.prepare(
    `UPDATE backfill_messages SET state = 'done' WHERE account = ? AND folder = ? AND uid_validity = ? AND state = 'pending'
     AND uid IN (SELECT value FROM json_each(?))`,
  );

  const guard = <T>(what: string, fn: () => T): T => {
    try {
      return fn();
    } catch (e) {
      throw new FilterError('ESTORE', `backfill checkpoint ${what} failed: ${(e as Error).message}`, { file }, { cause: e });
    }
  };

  const restart = db.transaction((key: FolderKey) => {
    dropPending.run(key.account, key.folder);
    setCp.run({ ...key, lastUid: 0, at: now() });
  });
  const addPending = db.transaction((key: FolderKey, rows: LedgerRow[], also?: () => void) => {
    const at = now();
    also?.();
    if (rows.length === 0) return;
    const json = JSON.stringify(rows.map((r) => [r.uid, r.messageId, r.verdict, r.score, r.spam ? 1 : 0, r.outcome]));
    insert.run(key.account, key.folder, key.uidValidity, at, json);
  });
  const commit = db.transaction((key: FolderKey, uids: number[], lastUid: number) => {
    if (uids.length > 0) markDone.run(key.account, key.folder, key.uidValidity, JSON.stringify(uids));
    setCp.run({ ...key, lastUid, at: now() });
  });

  return {
    get: (account, folder) =>
      guard('read', () => {
        const r = getCp.get(account, folder);
        return r ? { uidValidity: r.uid_validity, lastUid: r.last_uid } : undefined;
      }),
    restart: (key) => guard('restart', () => restart(key)),
    pending: (key) =>
      guard('read', () =>
        listPending.all(key.account, key.folder, key.uidValidity).map((r) => ({
          uid: r.uid,
          messageId: r.message_id,
          verdict: r.verdict,
          score: r.score,
          spam: r.spam === 1,
          outcome: r.outcome,
        })),
      ),
    addPending: (key, rows, also) => guard('write', () => addPending(key, rows, also)),
    commit: (key, uids, lastUid) => guard('commit', () => commit(key, uids, lastUid)),
    close: () => {
      if (owned) db.close();
    },
  };
}

/**
 * A ledger that forgets everything on exit: --dry-run must leave the database as it found it. Seeded
 * with the saved checkpoints, it shows what the next real run would do.
 */
export function memoryLedger(seed: readonly (Checkpoint & { account: string; folder: string })[] = []): Ledger {
  const cps = new Map<string, Checkpoint>(seed.map((c) => [`${c.account}\u0000${c.folder}`, { uidValidity: c.uidValidity, lastUid: c.lastUid }]));
  const pendingRows = new Map<string, LedgerRow[]>();
  const id = (account: string, folder: string) => `${account}\u0000${folder}`;
  return {
    get: (account, folder) => cps.get(id(account, folder)),
    restart: (key) => {
      cps.set(id(key.account, key.folder), { uidValidity: key.uidValidity, lastUid: 0 });
      pendingRows.delete(id(key.account, key.folder));
    },
    pending: (key) => pendingRows.get(id(key.account, key.folder)) ?? [],
    addPending: (key, rows) => pendingRows.set(id(key.account, key.folder), [...(pendingRows.get(id(key.account, key.folder)) ?? []), ...rows]),
    commit: (key, uids, lastUid) => {
      const done = new Set(uids);
      const k = id(key.account, key.folder);
      pendingRows.set(k, (pendingRows.get(k) ?? []).filter((r) => !done.has(r.uid)));
      cps.set(k, { uidValidity: key.uidValidity, lastUid });
    },
    close: () => {},
  };
}
