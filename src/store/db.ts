// Opens the SQLite verdict log and turns SQLite's and the file system's failures into one clear
// FilterError('ESTORE') that says what is wrong with the file and what to do about it.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { FilterError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';

export type Db = Database.Database;

/** Why a store operation failed, as operators read it; 'other' is a fault in our SQL or data. */
export type StoreFailure = 'readonly' | 'full' | 'locked' | 'corrupt' | 'cantopen' | 'io' | 'other';

export interface OpenOptions {
  /** Read without creating or changing anything (history on a file another process writes). */
  readonly?: boolean;
  /** How long a write waits for another process's lock before failing with 'locked', ms. */
  busyTimeoutMs?: number;
}

export function openDb(file: string, options: OpenOptions = {}): Db {
  let db: Db | undefined;
  try {
    if (!options.readonly) mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    db = new Database(file, {
      readonly: options.readonly ?? false,
      fileMustExist: options.readonly ?? false,
      timeout: options.busyTimeoutMs ?? limits.storeBusyTimeoutMs,
    });
    // Reading the schema touches the file header, so a corrupt or foreign file fails here, at open.
    db.pragma('schema_version');
    if (!options.readonly) {
      // WAL lets history read while the writer writes; NORMAL syncs at checkpoints only, which keeps
      // every committed batch across a process crash (only a power loss can take the last ones).
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      // Checkpoints only move committed pages into the main file, so their spacing changes nothing
      // about what survives a crash; it does decide how often hot index pages are copied and synced.
      db.pragma(`wal_autocheckpoint = ${limits.storeWalCheckpointPages}`);
      db.pragma(`journal_size_limit = ${limits.storeWalSizeLimitBytes}`);
    }
    return db;
  } catch (e) {
    db?.close();
    throw storeError(e, file, 'open');
  }
}

const SQLITE_REASONS: [RegExp, StoreFailure][] = [
  [/^SQLITE_READONLY/, 'readonly'],
  [/^SQLITE_FULL/, 'full'],
  [/^SQLITE_(BUSY|LOCKED)/, 'locked'],
  [/^SQLITE_(CORRUPT|NOTADB)/, 'corrupt'],
  [/^SQLITE_(CANTOPEN|PERM|AUTH)/, 'cantopen'],
  [/^SQLITE_IOERR/, 'io'],
];

const FS_REASONS: Record<string, StoreFailure> = {
  EROFS: 'readonly',
  EACCES: 'readonly',
  EPERM: 'readonly',
  ENOSPC: 'full',
  EDQUOT: 'full',
  ENOENT: 'cantopen',
  ENOTDIR: 'cantopen',
  EIO: 'io',
};

export function failureOf(e: unknown): StoreFailure {
  const code = (e as { code?: unknown })?.code;
  if (typeof code !== 'string') return 'other';
  if (code.startsWith('SQLITE_')) {
    for (const [re, reason] of SQLITE_REASONS) if (re.test(code)) return reason;
    return 'other';
  }
  return FS_REASONS[code] ?? 'other';
}

const ADVICE: Record<StoreFailure, string> = {
  readonly: 'the file or its folder is read-only; make it writable by the filter',
  full: 'the disk is full; free space',
  locked: 'the database is locked by another process; it is retried',
  corrupt: 'the file is not a SQLite database or is corrupt; move it aside to start a new log',
  cantopen: 'the file cannot be opened; check that its folder exists and is writable',
  io: 'a disk I/O error happened; check the disk',
  other: 'an unexpected storage error',
};

/** Wraps a SQLite or file-system error into ESTORE, naming the file, the operation and the cure. */
export function storeError(e: unknown, file: string, doing: string): FilterError {
  if (e instanceof FilterError) return e;
  const reason = failureOf(e);
  const code = (e as { code?: unknown })?.code;
  const raw = e instanceof Error ? e.message : String(e);
  return new FilterError(
    'ESTORE',
    `verdict log ${file}: cannot ${doing}: ${ADVICE[reason]} (${typeof code === 'string' ? code : 'error'}: ${raw})`,
    { file, reason, sqlite: code },
    { cause: e },
  );
}
