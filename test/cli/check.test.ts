// `atlas-email check` as a user runs it: a real process on the built CLI.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { root } from '../helpers/env.ts';

const cli = path.join(root, 'dist/cli/index.js');
const run = (args: string[], input?: string) =>
  spawnSync(process.execPath, [cli, ...args], { cwd: root, input, encoding: 'utf8', timeout: 60_000 });
const fx = (name: string) => path.join(root, 'test/fixtures', name);
const lines = (out: string) => out.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));

describe('atlas-email check', () => {
  it('prints one JSON verdict per file and exits 1 when one is spam', () => {
    const r = run(['check', '--no-classify', fx('ham-plain.eml'), fx('rules/SCAM_SEXTORTION.eml')]);
    expect(r.status).toBe(1);
    const [ham, spam] = lines(r.stdout);
    expect(ham).toMatchObject({ file: fx('ham-plain.eml'), action: 'accept', spam: false, required: 5, source: 'classifier' });
    expect(Object.keys(ham)).toEqual(expect.arrayContaining(['action', 'score', 'required', 'spam', 'symbols', 'source', 'elapsedMs', 'messageId']));
    expect(spam).toMatchObject({ action: 'reject', spam: true, source: 'early' });
    expect(spam.symbols[0]).toMatchObject({ name: 'SCAM_SEXTORTION', score: 15 });
  });

  it('runs as the package bin, as `npx atlas-email` starts it (the built file is executable)', () => {
    // tsc writes files without the execute bit; the README's first screen runs `npx atlas-email check`.
    const r = spawnSync(cli, ['check', '--no-classify', fx('rules/SCAM_SEXTORTION.eml')], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(r.error).toBeUndefined();
    expect(r.status).toBe(1);
    expect(lines(r.stdout)[0]).toMatchObject({ action: 'reject', score: 15 });
  });

  it('exits 0 for ham only, reads stdin with -', () => {
    const r = run(['check', '--no-classify', '-'], 'From: a@b.example\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID: <x@b.example>\nSubject: hi\n\nhello\n');
    expect(r.status).toBe(0);
    expect(lines(r.stdout)[0]).toMatchObject({ file: '-', action: 'accept' });
  });

  it('--explain prints a symbol table', () => {
    const r = run(['check', '--no-classify', '--explain', fx('rules/PHISH_PAYPAL_SPOOF.eml')]);
    expect(r.stdout).toContain('PHISH_PAYPAL_SPOOF');
    expect(r.stdout).toMatch(/symbol\s+points\s+description/);
  });

  it('uses another rules folder with --rules', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'atlas-check-'));
    writeFileSync(path.join(dir, 'mine.yaml'), 'rules:\n  - symbol: MY_MINUTES\n    score: 20\n    description: minutes\n    match: { subject: minutes }\n');
    const r = run(['check', '--no-classify', '--rules', dir, fx('ham-plain.eml')]);
    expect(r.status).toBe(1);
    expect(lines(r.stdout)[0]).toMatchObject({ action: 'reject', score: 20 });
  });

  it('reports an empty message with its code and exit 65', () => {
    const r = run(['check', '--no-classify', '-'], '');
    expect(r.status).toBe(65);
    expect(lines(r.stdout)[0]).toEqual({ file: '-', error: { code: 'EMALFORMED', message: 'the message is empty' } });
  });

  it('exits 66 for a missing file, 64 for a bad flag or no file, 78 for a bad config', () => {
    expect(run(['check', '/nonexistent/x.eml']).status).toBe(66);
    expect(run(['check', '--bogus', 'x']).status).toBe(64);
    expect(run(['check']).status).toBe(64);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'atlas-check-'));
    writeFileSync(path.join(dir, 'c.yaml'), 'thresholds:\n  required: high\n');
    const bad = run(['check', '--config', path.join(dir, 'c.yaml'), fx('ham-plain.eml')]);
    expect(bad.status).toBe(78);
    expect(bad.stderr).toContain('ECONFIG: config option "thresholds.required" must be a number, got string');
  });

  it('has --help on the command and the program', () => {
    const r = run(['check', '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Usage: atlas-email check');
    expect(r.stdout).toContain('Exit codes:');
    const top = run(['--help']);
    expect(top.status).toBe(0);
    expect(top.stdout).toContain('check');
    expect(top.stdout).toContain('serve');
    expect(run([]).status).toBe(64);
  });
});
