// Migrations against real SQLite files: round trips, a broken migration, a malformed folder.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Db, openDb } from '../../src/store/db.ts';
import { currentVersion, defaultMigrationsDir, migrateDown, migrateUp, migrationStatus, readMigrations } from '../../src/store/migrate.ts';
import { tempDir } from './helpers.ts';

/** Everything that makes up the schema, user tables and indexes, in a stable order. */
function schema(db: Db): string[] {
  return (db.prepare(`SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name`).all() as {
    type: string;
    name: string;
    sql: string;
  }[]).map((r) => `${r.type} ${r.name}: ${r.sql}`);
}

/** A migrations folder holding the shipped 0001 plus the given extra files. */
function folderWith(extra: Record<string, string>): string {
  const dir = path.join(tempDir(), 'migrations');
  mkdirSync(dir);
  for (const f of ['0001_verdicts.up.sql', '0001_verdicts.down.sql']) copyFileSync(path.join(defaultMigrationsDir(), f), path.join(dir, f));
  for (const [name, text] of Object.entries(extra)) writeFileSync(path.join(dir, name), text);
  return dir;
}

describe('migrations', () => {
  it('applies the shipped migrations to a new file, with the verdicts table and its indexes', () => {
    const db = openDb(path.join(tempDir(), 'atlas.db'));
    const applied = migrateUp(db);
    expect(applied[0]).toMatchObject({ version: 1, name: 'verdicts' });
    expect(currentVersion(db)).toBe(applied[applied.length - 1]?.version);
    const indexes = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'verdicts'`).all() as { name: string }[]).map((r) => r.name);
    expect(indexes).toEqual(expect.arrayContaining(['verdicts_time', 'verdicts_sender_domain', 'verdicts_action']));
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(migrateUp(db)).toEqual([]);
    db.close();
  });

  it('round-trips: down to 0 then up again gives the same schema', () => {
    const db = openDb(path.join(tempDir(), 'atlas.db'));
    migrateUp(db);
    const before = schema(db);
    const all = readMigrations(defaultMigrationsDir()).length;
    expect(migrateDown(db, { count: all }).map((m) => m.version)).toEqual(readMigrations(defaultMigrationsDir()).map((m) => m.version).reverse());
    expect(currentVersion(db)).toBe(0);
    expect(schema(db)).toEqual(['table schema_migrations: ' + (db.prepare(`SELECT sql FROM sqlite_master WHERE name = 'schema_migrations'`).get() as { sql: string }).sql]);
    migrateUp(db);
    expect(schema(db)).toEqual(before);
    db.close();
  });

  it('steps one at a time with count, and reports status', () => {
    const dir = folderWith({ '0002_notes.up.sql': 'CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT);', '0002_notes.down.sql': 'DROP TABLE notes;' });
    const db = openDb(path.join(tempDir(), 'atlas.db'));
    expect(migrateUp(db, { dir, count: 1, now: 1_000 }).map((m) => m.name)).toEqual(['verdicts']);
    expect(migrationStatus(db, dir)).toEqual([
      { version: 1, name: 'verdicts', applied: true, appliedAt: 1_000, missing: false },
      { version: 2, name: 'notes', applied: false, appliedAt: null, missing: false },
    ]);
    migrateUp(db, { dir });
    expect(currentVersion(db)).toBe(2);
    migrateDown(db, { dir });
    expect(currentVersion(db)).toBe(1);
    expect(db.prepare(`SELECT name FROM sqlite_master WHERE name = 'notes'`).get()).toBeUndefined();
    db.close();
  });

  it('a failed migration leaves the previous schema and its data intact', () => {
    const dir = folderWith({
      // The first statement works, the second does not: the transaction must undo the first too.
      '0002_broken.up.sql': 'CREATE TABLE half_done (id INTEGER);\nALTER TABLE verdicts ADD COLUMN nope NOT A VALID TYPE DEFAULT (;\n',
      '0002_broken.down.sql': 'DROP TABLE half_done;',
    });
    const file = path.join(tempDir(), 'atlas.db');
    const db = openDb(file);
    migrateUp(db, { dir, count: 1 });
    db.prepare(`INSERT INTO verdicts (time, score, action, source, elapsed_ms) VALUES (1, 2.5, 'tag', 'early', 0.1)`).run();
    const before = schema(db);
    let error: unknown;
    try {
      migrateUp(db, { dir });
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'ESTORE', details: { migration: '0002_broken', direction: 'up' } });
    expect((error as Error).message).toMatch(/0002_broken\.up\.sql.*the schema stays at version 1/);
    expect(schema(db)).toEqual(before);
    expect(currentVersion(db)).toBe(1);
    expect(db.prepare('SELECT count(*) AS n FROM verdicts').get()).toEqual({ n: 1 });
    db.close();
  });

  it('a failed down migration leaves the schema as it was', () => {
    const dir = folderWith({ '0002_notes.up.sql': 'CREATE TABLE notes (id INTEGER);', '0002_notes.down.sql': 'DROP TABLE notes;\nDROP TABLE no_such_table;' });
    const db = openDb(path.join(tempDir(), 'atlas.db'));
    migrateUp(db, { dir });
    const before = schema(db);
    expect(() => migrateDown(db, { dir })).toThrow(/0002_notes\.down\.sql.*no such table: no_such_table.*version 2/);
    expect(schema(db)).toEqual(before);
    db.close();
  });

  it('names what is wrong with a migrations folder', () => {
    expect(() => readMigrations(folderWith({ '0002_x.up.sql': 'SELECT 1;' }))).toThrow(/migration 0002_x has no \.down\.sql/);
    expect(() => readMigrations(folderWith({ '0002_x.up.sql': '', '0002_x.down.sql': '', '0002_y.down.sql': '' }))).toThrow(
      /version 0002 has two names, "x" and "y"/,
    );
    expect(() => readMigrations(path.join(tempDir(), 'none'))).toThrow(/cannot read the migrations folder/);
    // Other files (notes, editors' backups) are not migrations.
    expect(readMigrations(folderWith({ 'README.md': '#', '0002_x.up.sql~': '' })).map((m) => m.version)).toEqual([1]);
  });

  it('refuses to apply a migration older than the applied version', () => {
    const dir = folderWith({ '0003_c.up.sql': 'CREATE TABLE c (id INTEGER);', '0003_c.down.sql': 'DROP TABLE c;' });
    const db = openDb(path.join(tempDir(), 'atlas.db'));
    migrateUp(db, { dir });
    writeFileSync(path.join(dir, '0002_b.up.sql'), 'CREATE TABLE b (id INTEGER);');
    writeFileSync(path.join(dir, '0002_b.down.sql'), 'DROP TABLE b;');
    expect(() => migrateUp(db, { dir })).toThrow(/0002_b is older than the applied version 3/);
    db.close();
  });
});
