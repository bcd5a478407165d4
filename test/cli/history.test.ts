// `atlas-email history` as an operator runs it: the built CLI on a log written by the real store.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toRow } from '../../src/store/row.ts';
import { LogWriter } from '../../src/store/writer.ts';
import { root } from '../helpers/env.ts';
import { verdict } from '../store/helpers.ts';

const cli = path.join(root, 'dist/cli/index.js');
const work = mkdtempSync(path.join(os.tmpdir(), 'atlas-history-cli-'));
const file = path.join(work, 'atlas.db');
afterAll(() => rmSync(work, { recursive: true, force: true }));
const run = (args: string[]) => spawnSync(process.execPath, [cli, 'history', '--db', file, ...args], { cwd: work, encoding: 'utf8', timeout: 60_000 });
const jsonLines = (out: string) => out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

const DAY = 86_400_000;
const now = Date.now();

beforeAll(() => {
  const writer = new LogWriter({ file });
  const rows = [];
  // Ten verdicts, one a day, the newest an hour ago; every third one from spam.test and rejected.
  for (let i = 9; i >= 0; i--) {
    const spam = i % 3 === 0;
    rows.push(
      toRow(
        verdict({ subject: `day ${i}`, action: spam ? 'reject' : 'accept', score: spam ? 20 : 0.5, sender: spam ? `bulk${i}@spam.test` : 'alice@example.org' }),
        now - 3_600_000 - i * DAY,
      ),
    );
  }
  writer.write(rows);
  writer.close();
});

// Each run starts the whole CLI (about 1 s on a busy 2-core machine), so the tests get room.
describe('atlas-email history', { timeout: 120_000 }, () => {
  it('prints JSON lines, newest first, with the filters', () => {
    const r = run(['--json', '--action', 'reject']);
    expect(r.status).toBe(0);
    expect(jsonLines(r.stdout).map((v) => v.subject)).toEqual(['day 0', 'day 3', 'day 6', 'day 9']);
    expect(jsonLines(r.stdout)[0]).toMatchObject({ action: 'reject', score: 20, sender: 'bulk0@spam.test', senderDomain: 'spam.test', recipients: ['bob@example.net'] });
    expect(jsonLines(run(['--json', '--since', '2d']).stdout).map((v) => v.subject)).toEqual(['day 0', 'day 1']);
    expect(jsonLines(run(['--json', '--until', '8d']).stdout).map((v) => v.subject)).toEqual(['day 8', 'day 9']);
    expect(jsonLines(run(['--json', '--sender', 'alice@example.org', '--since', '3d']).stdout).map((v) => v.subject)).toEqual(['day 1', 'day 2']);
  });

  it('pages with --limit and the --cursor it prints on stderr', () => {
    const seen: unknown[] = [];
    let args = ['--json', '--limit', '4'];
    for (let i = 0; i < 5; i++) {
      const r = run(args);
      expect(r.status).toBe(0);
      seen.push(...jsonLines(r.stdout).map((v) => v.subject));
      const next = /^more verdicts: --cursor (\S+)$/m.exec(r.stderr);
      if (!next) break;
      args = ['--json', '--limit', '4', '--cursor', next[1] as string];
    }
    expect(seen).toEqual(Array.from({ length: 10 }, (_, i) => `day ${i}`));
  });

  it('prints a table when not asked for JSON', () => {
    const r = run(['--limit', '2']);
    expect(r.status).toBe(0);
    const [head, first, second, extra] = r.stdout.split('\n');
    expect(head).toMatch(/^TIME\s+ACTION\s+SCORE\s+SOURCE\s+SENDER\s+SUBJECT$/);
    expect(first).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\s+reject\s+20\.00\s+classifier\s+bulk0@spam\.test\s+day 0$/);
    expect(second).toMatch(/\saccept\s+0\.50\s.*alice@example\.org\s+day 1$/);
    expect(extra).toBe('');
    expect(run(['--sender', 'nobody.test']).stdout).toBe('no verdicts match\n');
  });

  it('--retain-days deletes older verdicts and keeps the rest', () => {
    const copy = path.join(work, 'retain.db');
    const src = new Database(file);
    src.exec(`VACUUM INTO '${copy}'`);
    src.close();
    const r = spawnSync(process.execPath, [cli, 'history', '--db', copy, '--retain-days', '5'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^deleted 5 verdicts older than 5 days \(before \d{4}-/);
    const left = jsonLines(spawnSync(process.execPath, [cli, 'history', '--db', copy, '--json'], { encoding: 'utf8' }).stdout).map((v) => v.subject);
    expect(left).toEqual(['day 0', 'day 1', 'day 2', 'day 3', 'day 4']);
  });

  it('explains a missing file, bad flags and --help', () => {
    const missing = spawnSync(process.execPath, [cli, 'history', '--db', path.join(work, 'nope.db')], { encoding: 'utf8' });
    expect(missing.status).toBe(74);
    expect(missing.stderr).toMatch(/^atlas-email: ESTORE: verdict log .*nope\.db does not exist yet: serve creates it/);
    for (const [args, message] of [
      [['--since', 'soon'], /--since must be an ISO 8601 time/],
      [['--action', 'spam'], /--action must be one of accept, tag, quarantine, reject, tempfail/],
      [['--limit', '5000'], /--limit must be a whole number from 1 to 1000/],
      [['--retain-days', '0'], /--retain-days must be at least 1/],
      [['--retain-days', '3', '--action', 'tag'], /--retain-days does not combine with --action/],
      [['--frobnicate'], /Unknown option '--frobnicate'/],
    ] as const) {
      const r = run([...args]);
      expect(r.status, args.join(' ')).toBe(64);
      expect(r.stderr).toMatch(message);
    }
    const help = run(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^Usage: atlas-email history \[options\]/);
    for (const flag of ['--since', '--until', '--action', '--sender', '--limit', '--cursor', '--json', '--retain-days', '--db']) expect(help.stdout).toContain(flag);
  });
});
