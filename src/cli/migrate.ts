// `atlas-email migrate up|down [N]|status`: moves the verdict log's schema between versions.
import { existsSync } from 'node:fs';
import { openDb } from '../store/db.ts';
import { currentVersion, defaultMigrationsDir, migrateDown, migrateUp, migrationStatus, readMigrations } from '../store/migrate.ts';
import { EXIT, parseCommand, UsageError } from './args.ts';
import { loadConfig } from './config-file.ts';

export const migrateHelp = `Usage: atlas-email migrate up [N] | down [N] | status [options]

Moves the verdict log's schema (migrations/NNNN_name.up.sql and .down.sql). Each migration runs in
its own transaction: one that fails changes nothing, and the ones before it stay applied.
"serve" applies pending up migrations by itself when it starts.

Actions:
  up [N]       apply pending migrations (all of them, or the next N)
  down [N]     roll back the last N applied migrations (default 1)
  status       list migrations and whether each is applied

Options:
  --db FILE           verdict log (default ./data/atlas.db)
  --migrations DIR    migrations folder (default: the shipped migrations/)
  --config FILE       YAML config file (default: embedded defaults, or $ATLAS_CONFIG)
  -h, --help          this help

Exit codes: 0 done, 64 usage error, 74 the database or a migration failed (ESTORE), 78 bad config.`;

function count(raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1) throw new UsageError(`N must be a whole number of at least 1, got "${raw}"`);
  return n;
}

const label = (m: { version: number; name: string }) => `${String(m.version).padStart(4, '0')}_${m.name}`;

export async function migrateCommand(argv: string[]): Promise<number> {
  const args = parseCommand(
    argv,
    { db: { type: 'string' }, migrations: { type: 'string' }, config: { type: 'string' } },
    migrateHelp,
  );
  if (!args) return EXIT.OK;
  const [action, n, ...extra] = args.positionals;
  if (!action || !['up', 'down', 'status'].includes(action)) {
    throw new UsageError(action ? `unknown action "${action}": use up, down or status` : 'give an action: up, down or status');
  }
  if (extra.length || (action === 'status' && n !== undefined)) throw new UsageError(`unexpected argument "${extra[0] ?? n}"`);
  const config = loadConfig(args.values.config as string | undefined);
  const file = (args.values.db as string | undefined) ?? config.dbFile;
  const dir = (args.values.migrations as string | undefined) ?? defaultMigrationsDir();
  const out = (line: string) => process.stdout.write(line + '\n');

  if (action === 'status' && !existsSync(file)) {
    // Looking must not create the file.
    for (const m of readMigrations(dir)) out(`${label(m)}  pending`);
    out(`${file} does not exist yet: schema version 0`);
    return EXIT.OK;
  }
  const db = openDb(file);
  try {
    if (action === 'status') {
      for (const s of migrationStatus(db, dir)) {
        const state = s.missing ? 'applied (its files are missing)' : s.applied ? 'applied' : 'pending';
        const at = s.appliedAt !== null ? `  ${new Date(s.appliedAt).toISOString()}` : '';
        out(`${label(s)}  ${state}${at}`);
      }
      out(`${file}: schema version ${currentVersion(db)}`);
      return EXIT.OK;
    }
    const onStep = (m: { version: number; name: string }) => out(`${action === 'up' ? 'applied' : 'rolled back'} ${label(m)}`);
    const done =
      action === 'up' ? migrateUp(db, { dir, count: count(n, Infinity), onStep }) : migrateDown(db, { dir, count: count(n, 1), onStep });
    if (done.length === 0) out(action === 'up' ? 'nothing to apply' : 'nothing to roll back');
    out(`${file}: schema version ${currentVersion(db)}`);
    return EXIT.OK;
  } finally {
    db.close();
  }
}
