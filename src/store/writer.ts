// The writing side of the verdict log: owns the one read-write connection, brings the schema up to
// date when it opens, and writes each batch in one transaction. Runs in the writer thread
// (writer-worker.ts) so SQLite's synchronous calls never hold up the event loop that answers mail.
// A failed operation closes the connection: the next one reopens the file, which is how the log
// resumes once a read-only, full, locked or replaced file is usable again.
import { limits } from '../core/limits.ts';
import { type Db, openDb, storeError } from './db.ts';
import { migrateUp } from './migrate.ts';
import { deleteOlderThan, queryVerdicts, type VerdictFilters, type VerdictPage } from './query.ts';
import { COLUMNS, type Row } from './row.ts';

export interface WriterOptions {
  file: string;
  migrationsDir?: string;
  busyTimeoutMs?: number;
}

export class LogWriter {
  private db: Db | null = null;
  private insertBatch: ((rows: Row[]) => void) | null = null;
  /** Migrations applied by the most recent open (serve logs them). */
  applied: string[] = [];

  constructor(private readonly options: WriterOptions) {}

  /** Opens the file and applies pending migrations, unless already open. Throws ESTORE. */
  open(): Db {
    if (this.db) return this.db;
    const db = openDb(this.options.file, { busyTimeoutMs: this.options.busyTimeoutMs });
    try {
      this.applied = migrateUp(db, { dir: this.options.migrationsDir }).map((m) => `${String(m.version).padStart(4, '0')}_${m.name}`);
      const insert = db.prepare(`INSERT INTO verdicts (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})`);
      this.insertBatch = db.transaction((rows: Row[]) => {
        // Spread arguments, not the array: better-sqlite3 reads an array through the V8 API one element
        // at a time, which cost about a tenth of each insert in bench/store.
        for (const r of rows) insert.run(...r);
      });
    } catch (e) {
      db.close();
      throw storeError(e, this.options.file, 'prepare the schema');
    }
    this.db = db;
    return db;
  }

  /** Writes all rows in one transaction: all of them are logged, or none. Throws ESTORE. */
  write(rows: Row[]): void {
    this.open();
    try {
      (this.insertBatch as (rows: Row[]) => void)(rows);
    } catch (e) {
      this.reset();
      const err = storeError(e, this.options.file, 'write verdicts');
      // Not a storage condition but this batch itself (a constraint, a value SQLite refuses):
      // retrying it would block the log for good, so the store gives it up.
      if (err.details.reason === 'other') err.details.badBatch = true;
      throw err;
    }
  }

  query(filters: VerdictFilters): VerdictPage {
    return this.guard('read verdicts', () => queryVerdicts(this.open(), filters));
  }

  /** Deletes rows older than `cutoff` in small transactions, yielding between them. */
  async retain(cutoff: number, between?: () => Promise<void>): Promise<number> {
    try {
      return await deleteOlderThan(this.open(), cutoff, limits.retentionBatchRows, between);
    } catch (e) {
      this.reset();
      throw storeError(e, this.options.file, 'delete old verdicts');
    }
  }

  /** Closing checkpoints the WAL into the main file; a failure there loses nothing already committed. */
  close(): void {
    this.reset();
  }

  private guard<T>(doing: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      this.reset();
      throw storeError(e, this.options.file, doing);
    }
  }

  private reset(): void {
    const db = this.db;
    this.db = null;
    this.insertBatch = null;
    if (db?.open) {
      try {
        db.close();
      } catch {
        // The connection is being dropped because it failed; its close error adds nothing.
      }
    }
  }
}
