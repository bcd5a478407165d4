// Schema migrations: migrations/NNNN_name.up.sql and NNNN_name.down.sql, applied in version order,
// each in its own transaction together with its row in schema_migrations, so a migration that fails
// leaves the schema exactly as the previous one left it. SQLite's DDL is transactional, which is what
// makes this safe; migration files must therefore not contain BEGIN/COMMIT themselves.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FilterError } from '../core/errors.ts';
import { type Db, storeError } from './db.ts';

/** The shipped migrations, beside the package (the same path from src/store and dist/store). */
export const defaultMigrationsDir = (): string => fileURLToPath(new URL('../../migrations', import.meta.url));

export interface Migration {
  version: number;
  name: string;
  up: string;
  down: string;
}

export interface MigrationStatus {
  version: number;
  name: string;
  applied: boolean;
  /** When it was applied, ms since the epoch. */
  appliedAt: number | null;
  /** Applied in the database but its files are gone (a newer build ran against this file). */
  missing: boolean;
}

const FILE = /^(\d{4})_([A-Za-z0-9][A-Za-z0-9_-]*)\.(up|down)\.sql$/;

/** Reads every migration in `dir`; a version without both halves, or two names for one version, is an error. */
export function readMigrations(dir: string): Migration[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw new FilterError('ESTORE', `cannot read the migrations folder ${dir}: ${(e as Error).message}`, { dir });
  }
  const byVersion = new Map<number, { name: string; up?: string; down?: string }>();
  for (const f of names.sort()) {
    const m = FILE.exec(f);
    if (!m) continue;
    const version = Number(m[1]);
    const name = m[2] as string;
    const entry = byVersion.get(version) ?? { name };
    if (entry.name !== name) {
      throw new FilterError('ESTORE', `migrations ${dir}: version ${m[1]} has two names, "${entry.name}" and "${name}"`, { dir, version });
    }
    entry[m[3] as 'up' | 'down'] = readFileSync(path.join(dir, f), 'utf8');
    byVersion.set(version, entry);
  }
  return [...byVersion.entries()]
    .sort(([a], [b]) => a - b)
    .map(([version, e]) => {
      const label = `${String(version).padStart(4, '0')}_${e.name}`;
      if (e.up === undefined) throw new FilterError('ESTORE', `migration ${label} has no .up.sql in ${dir}`, { dir, version });
      if (e.down === undefined) throw new FilterError('ESTORE', `migration ${label} has no .down.sql in ${dir}`, { dir, version });
      return { version, name: e.name, up: e.up, down: e.down };
    });
}

function ensureVersionTable(db: Db): void {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at INTEGER NOT NULL
  )`);
}

function appliedRows(db: Db): { version: number; name: string; applied_at: number }[] {
  const exists = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).get();
  if (!exists) return [];
  return db.prepare('SELECT version, name, applied_at FROM schema_migrations ORDER BY version').all() as {
    version: number;
    name: string;
    applied_at: number;
  }[];
}

/** The schema version of the file: the highest applied migration, 0 for a new file. */
export function currentVersion(db: Db): number {
  const rows = appliedRows(db);
  return rows.length ? (rows[rows.length - 1] as { version: number }).version : 0;
}

export function migrationStatus(db: Db, dir: string = defaultMigrationsDir()): MigrationStatus[] {
  const known = readMigrations(dir);
  const applied = new Map(appliedRows(db).map((r) => [r.version, r]));
  const out: MigrationStatus[] = known.map((m) => {
    const row = applied.get(m.version);
    return { version: m.version, name: m.name, applied: !!row, appliedAt: row?.applied_at ?? null, missing: false };
  });
  for (const row of applied.values()) {
    if (!known.some((m) => m.version === row.version)) {
      out.push({ version: row.version, name: row.name, applied: true, appliedAt: row.applied_at, missing: true });
    }
  }
  return out.sort((a, b) => a.version - b.version);
}

function label(m: { version: number; name: string }): string {
  return `${String(m.version).padStart(4, '0')}_${m.name}`;
}

function run(db: Db, m: Migration, direction: 'up' | 'down', file: string, now: number): void {
  const step = db.transaction(() => {
    db.exec(direction === 'up' ? m.up : m.down);
    if (direction === 'up') db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, now);
    else db.prepare('DELETE FROM schema_migrations WHERE version = ?').run(m.version);
  });
  try {
    step();
  } catch (e) {
    const base = storeError(e, file, `apply migration ${label(m)}.${direction}.sql`);
    throw new FilterError('ESTORE', `${base.message}; the schema stays at version ${currentVersion(db)}`, {
      ...base.details,
      migration: label(m),
      direction,
    }, { cause: e });
  }
}

export interface MigrateOptions {
  /** The migrations folder (default: the shipped one). */
  dir?: string;
  /** How many to apply or roll back (up: all pending; down: 1). */
  count?: number;
  /** Told about each migration as soon as it is committed. */
  onStep?: (m: Migration) => void;
  now?: number;
}

/**
 * Applies pending migrations in order (all of them, or the next `count`). Returns what was applied.
 * Stops at the first failure, which leaves every earlier migration applied and the failing one not.
 */
export function migrateUp(db: Db, options: MigrateOptions = {}): Migration[] {
  const { dir = defaultMigrationsDir(), count = Infinity, now = Date.now() } = options;
  const file = db.name;
  const all = readMigrations(dir);
  ensureVersionTable(db);
  const applied = new Set(appliedRows(db).map((r) => r.version));
  const top = Math.max(0, ...applied);
  const pending = all.filter((m) => !applied.has(m.version));
  const gap = pending.find((m) => m.version < top);
  if (gap) {
    throw new FilterError('ESTORE', `verdict log ${file}: migration ${label(gap)} is older than the applied version ${top}; roll back first`, {
      file,
      migration: label(gap),
    });
  }
  const done: Migration[] = [];
  for (const m of pending.slice(0, count)) {
    run(db, m, 'up', file, now);
    done.push(m);
    options.onStep?.(m);
  }
  return done;
}

/** Rolls back the last `count` applied migrations (default one), newest first. Returns what was rolled back. */
export function migrateDown(db: Db, options: MigrateOptions = {}): Migration[] {
  const { dir = defaultMigrationsDir(), count = 1 } = options;
  const file = db.name;
  const all = new Map(readMigrations(dir).map((m) => [m.version, m]));
  const applied = appliedRows(db).reverse().slice(0, count);
  const done: Migration[] = [];
  for (const row of applied) {
    const m = all.get(row.version);
    if (!m) {
      throw new FilterError('ESTORE', `verdict log ${file}: cannot roll back ${label(row)}: its .down.sql is not in ${dir}`, {
        file,
        migration: label(row),
      });
    }
    run(db, m, 'down', file, 0);
    done.push(m);
    options.onStep?.(m);
  }
  return done;
}
