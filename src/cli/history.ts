// `atlas-email history`: reads the verdict log with the filters of GET /v1/verdicts, or applies
// retention (--retain-days) to it.
import { existsSync } from 'node:fs';
import { FilterError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import { type Db, openDb, storeError } from '../store/db.ts';
import { deleteOlderThan, parseFilters, queryVerdicts } from '../store/query.ts';
import type { LoggedVerdict } from '../store/row.ts';
import { EXIT, intFlag, parseCommand, UsageError } from './args.ts';
import { loadConfig } from './config-file.ts';

export const historyHelp = `Usage: atlas-email history [options]

Lists logged verdicts, newest first: a table on a terminal, one JSON object per line with --json.
When more rows match than --limit, the cursor for the next page is printed on stderr.

Filters (the same as GET /v1/verdicts):
  --since TIME        from this time: ISO 8601 (2026-11-23, 2026-11-23T10:00:00Z) or an age (15m, 24h, 7d)
  --until TIME        up to (not including) this time, same forms
  --action LIST       accept, tag, quarantine, reject, tempfail; comma-separated for several
  --sender ADDRESS    one sender (user@example.com), or every sender at a domain (example.com)
  --limit N           rows per page, 1-${limits.historyMaxLimit} (default 50)
  --cursor CURSOR     the next page, as printed by the previous one

Options:
  --json              one JSON object per line
  --retain-days N     delete verdicts older than N days (in small batches, so a running serve keeps
                      writing), print how many, and exit
  --db FILE           verdict log (default ./data/atlas.db)
  --config FILE       YAML config file (default: embedded defaults, or $ATLAS_CONFIG)
  -h, --help          this help

Exit codes: 0 done, 64 usage error, 74 the database cannot be read or written (ESTORE), 78 bad config.`;

const FILTERS = ['since', 'until', 'action', 'sender', 'limit', 'cursor'] as const;

export async function historyCommand(argv: string[]): Promise<number> {
  const args = parseCommand(
    argv,
    {
      db: { type: 'string' },
      config: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      action: { type: 'string' },
      sender: { type: 'string' },
      limit: { type: 'string' },
      cursor: { type: 'string' },
      json: { type: 'boolean' },
      'retain-days': { type: 'string' },
    },
    historyHelp,
    false,
  );
  if (!args) return EXIT.OK;
  const v = args.values;
  const config = loadConfig(v.config as string | undefined);
  const file = (v.db as string | undefined) ?? config.dbFile;

  const retainDays = intFlag(v, 'retain-days');
  if (retainDays !== undefined) {
    if (retainDays < 1) throw new UsageError(`--retain-days must be at least 1, got ${retainDays}`);
    const used = FILTERS.filter((f) => v[f] !== undefined);
    if (used.length) throw new UsageError(`--retain-days does not combine with --${used[0]}`);
    return retain(file, retainDays);
  }

  let filters;
  try {
    filters = parseFilters(Object.fromEntries(FILTERS.map((f) => [f, v[f] as string | undefined])));
  } catch (e) {
    if (e instanceof FilterError) throw new UsageError(`--${e.message}`);
    throw e;
  }
  const db = openForReading(file);
  try {
    const page = guard(file, 'read verdicts', () => queryVerdicts(db, filters));
    if (v.json) for (const row of page.rows) process.stdout.write(JSON.stringify(row) + '\n');
    else process.stdout.write(table(page.rows, process.stdout.isTTY ? process.stdout.columns : undefined));
    if (page.nextCursor) process.stderr.write(`more verdicts: --cursor ${page.nextCursor}\n`);
    return EXIT.OK;
  } finally {
    db.close();
  }
}

function openForReading(file: string): Db {
  if (!existsSync(file)) {
    throw new FilterError('ESTORE', `verdict log ${file} does not exist yet: serve creates it (or run "atlas-email migrate up --db ${file}")`, {
      file,
      reason: 'cantopen',
    });
  }
  const db = openDb(file, { readonly: true });
  const hasTable = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'verdicts'`).get();
  if (!hasTable) {
    db.close();
    throw new FilterError('ESTORE', `verdict log ${file} has no verdicts table yet: run "atlas-email migrate up --db ${file}" or start serve`, {
      file,
      reason: 'other',
    });
  }
  return db;
}

function guard<T>(file: string, doing: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw storeError(e, file, doing);
  }
}

async function retain(file: string, days: number): Promise<number> {
  const db = openDb(file);
  try {
    const cutoff = Date.now() - days * 86_400_000;
    // Yielding between batches lets a serve process sharing the file take its write lock.
    const deleted = await deleteOlderThan(db, cutoff, limits.retentionBatchRows, () => new Promise((r) => setImmediate(r)));
    process.stdout.write(`deleted ${deleted} verdicts older than ${days} days (before ${new Date(cutoff).toISOString()})\n`);
    return EXIT.OK;
  } catch (e) {
    throw storeError(e, file, 'delete old verdicts');
  } finally {
    db.close();
  }
}

/** A fixed-width table; the subject takes what the terminal width leaves. */
export function table(rows: LoggedVerdict[], columns = 120): string {
  if (rows.length === 0) return 'no verdicts match\n';
  const head = ['TIME', 'ACTION', 'SCORE', 'SOURCE', 'SENDER', 'SUBJECT'];
  const cells = rows.map((r) => [
    r.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
    r.action,
    r.score.toFixed(2),
    r.source,
    r.sender || '-',
    r.subject.replace(/\s+/g, ' '),
  ]);
  const widths = head.map((h, i) => (i === head.length - 1 ? 0 : Math.max(h.length, ...cells.map((c) => (c[i] as string).length))));
  widths[4] = Math.min(widths[4] as number, 40);
  const fixed = widths.slice(0, -1).reduce((a, b) => a + b + 2, 0);
  const subjectWidth = Math.max(10, columns - fixed);
  const fit = (s: string, w: number) => (s.length > w ? s.slice(0, Math.max(0, w - 1)) + '…' : s);
  const line = (c: string[]) =>
    c
      .map((s, i) => (i === c.length - 1 ? fit(s, subjectWidth) : i === 2 ? fit(s, widths[i] as number).padStart(widths[i] as number) : fit(s, widths[i] as number).padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return [line(head), ...cells.map(line)].join('\n') + '\n';
}
