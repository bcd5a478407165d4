// `atlas-email migrate` as an operator runs it: the built CLI on a real SQLite file.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { readMigrations } from '../../src/store/migrate.ts';
import { root } from '../helpers/env.ts';

const cli = path.join(root, 'dist/cli/index.js');
const work = mkdtempSync(path.join(os.tmpdir(), 'atlas-migrate-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const run = (args: string[]) => spawnSync(process.execPath, [cli, 'migrate', ...args], { cwd: work, encoding: 'utf8', timeout: 60_000 });
const shipped = readMigrations(path.join(root, 'migrations'));
const label = (m: { version: number; name: string }) => `${String(m.version).padStart(4, '0')}_${m.name}`;

function schema(file: string): string[] {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare(`SELECT type || ' ' || name || ': ' || sql AS s FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY 1`).all() as { s: string }[]).map(
      (r) => r.s,
    );
  } finally {
    db.close();
  }
}

// Each run starts the whole CLI (about 1 s on a busy 2-core machine), so the tests get room.
describe('atlas-email migrate', { timeout: 120_000 }, () => {
  it('status on a missing file lists every migration as pending without creating the file', () => {
    const file = path.join(work, 'none.db');
    const r = run(['status', '--db', file]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${shipped.map((m) => `${label(m)}  pending\n`).join('')}${file} does not exist yet: schema version 0\n`);
    expect(existsSync(file)).toBe(false);
  });

  it('up, status, down N, up again: round-trips to the same schema', () => {
    const file = path.join(work, 'round.db');
    const up = run(['up', '--db', file]);
    expect(up.status).toBe(0);
    const top = shipped[shipped.length - 1]?.version;
    expect(up.stdout).toBe(`${shipped.map((m) => `applied ${label(m)}\n`).join('')}${file}: schema version ${top}\n`);
    const full = schema(file);
    expect(full.some((s) => s.startsWith('index verdicts_sender_domain'))).toBe(true);

    const status = run(['status', '--db', file]);
    expect(status.stdout).toMatch(new RegExp(`^0001_verdicts  applied  \\d{4}-\\d\\d-\\d\\dT`, 'm'));

    const down = run(['down', String(shipped.length), '--db', file]);
    expect(down.status).toBe(0);
    expect(down.stdout).toBe(`${[...shipped].reverse().map((m) => `rolled back ${label(m)}\n`).join('')}${file}: schema version 0\n`);
    expect(schema(file).filter((s) => !s.includes('schema_migrations'))).toEqual([]);
    expect(run(['down', '--db', file]).stdout).toMatch(/^nothing to roll back\n/);

    expect(run(['up', '1', '--db', file]).stdout).toBe(`applied 0001_verdicts\n${file}: schema version 1\n`);
    expect(run(['up', '--db', file]).status).toBe(0);
    expect(schema(file)).toEqual(full);
    expect(run(['up', '--db', file]).stdout).toBe(`nothing to apply\n${file}: schema version ${top}\n`);
  });

  it('a failed migration exits 74, names it, and leaves the previous schema', () => {
    const dir = path.join(work, 'broken-migrations');
    mkdirSync(dir);
    for (const f of ['0001_verdicts.up.sql', '0001_verdicts.down.sql']) copyFileSync(path.join(root, 'migrations', f), path.join(dir, f));
    writeFileSync(path.join(dir, '0002_add_score_index.up.sql'), 'CREATE INDEX verdicts_score ON verdicts (score);\nCREATE INDEX broken ON no_such_table (x);\n');
    writeFileSync(path.join(dir, '0002_add_score_index.down.sql'), 'DROP INDEX verdicts_score;\n');
    const file = path.join(work, 'broken.db');
    expect(run(['up', '1', '--db', file, '--migrations', dir]).status).toBe(0);
    const before = schema(file);
    const r = run(['up', '--db', file, '--migrations', dir]);
    expect(r.status).toBe(74);
    expect(r.stderr).toMatch(/^atlas-email: ESTORE: verdict log .*broken\.db: cannot apply migration 0002_add_score_index\.up\.sql: .*no such table: main\.no_such_table.*; the schema stays at version 1\n$/);
    expect(schema(file)).toEqual(before);
    expect(run(['status', '--db', file, '--migrations', dir]).stdout).toMatch(/0002_add_score_index  pending\n.*schema version 1\n$/);
  });

  it('has --help and refuses unknown actions and counts as usage errors', () => {
    const help = run(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^Usage: atlas-email migrate up \[N\] \| down \[N\] \| status/);
    expect(help.stdout).toMatch(/--db FILE/);
    for (const args of [[], ['sideways'], ['down', 'two'], ['up', '0'], ['status', '3'], ['up', '1', '2']]) {
      const r = run(args);
      expect(r.status, args.join(' ')).toBe(64);
      expect(r.stderr).toMatch(/^atlas-email: .+\n\(see --help\)\n$/);
    }
  });
});
