// `atlas-email learn` as a user runs it: a real process on the built CLI (npm run build first).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { classifyMessage, loadModel } from '../../src/core/classify.ts';
import { readMailSource, sourceName, splitMbox } from '../../src/cli/mailsource.ts';
import { root } from '../helpers/env.ts';

const cli = path.join(root, 'dist/cli/index.js');
const run = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });
const fx = (name: string) => path.join(root, 'test/fixtures', name);
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'atlas-learn-'));
const bayes = (raw: Uint8Array, file: string) => classifyMessage(raw, loadModel(new Uint8Array(readFileSync(file)))).symbols[0]?.name;

describe('atlas-email learn', () => {
  it('--help prints the usage and the exit codes', () => {
    const r = run(['learn', '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Usage: atlas-email learn --spam PATH --ham PATH [--model FILE]');
    expect(r.stdout).toContain('Exit codes:');
  });

  it('trains a new model from folders, saves it, and the model separates the classes', () => {
    const model = path.join(tmp(), 'm.model');
    const r = run(['learn', '--spam', fx('classify-train/spam'), '--ham', fx('classify-train/ham'), '--model', model]);
    expect(r.status).toBe(0);
    expect(r.stderr).toContain(`learn: saved ${model}: spam 0 → 8, ham 0 → 8`);
    const m = loadModel(new Uint8Array(readFileSync(model)));
    expect([m.spamDocs, m.hamDocs]).toEqual([8, 8]);
    const enc = (s: string) => new TextEncoder().encode(s);
    expect(bayes(enc('From: Offers <win@promo-deals.example>\r\nSubject: free prize\r\n\r\nclaim your free money now, click here'), model)).toBe('BAYES_SPAM');
    expect(bayes(enc('From: Dev List <dev@lists.example.org>\r\nSubject: Re: patch\r\n\r\nthe patch fixes the build, tests pass'), model)).toBe('BAYES_HAM');
    // No temp file left beside the model.
    expect(readdirSync(path.dirname(model))).toEqual(['m.model']);
  });

  it('is incremental: a second run adds to the existing model; --new starts over', () => {
    const model = path.join(tmp(), 'm.model');
    expect(run(['learn', '-q', '--ham', fx('classify-train/ham'), '--model', model]).status).toBe(0);
    expect(run(['learn', '-q', '--spam', fx('classify-spam.mbox'), '--spam', fx('classify-train/spam'), '--model', model]).status).toBe(0);
    let m = loadModel(new Uint8Array(readFileSync(model)));
    expect([m.spamDocs, m.hamDocs]).toEqual([4 + 8, 8]);
    expect(run(['learn', '-q', '--new', '--spam', fx('classify-spam.mbox'), '--model', model]).status).toBe(0);
    m = loadModel(new Uint8Array(readFileSync(model)));
    expect([m.spamDocs, m.hamDocs]).toEqual([4, 0]);
  });

  it('exits 64 without paths or with a bad flag, 66 for a missing path, 78 for a corrupt model', () => {
    expect(run(['learn']).status).toBe(64);
    expect(run(['learn', '--spam', fx('classify-train/spam'), '--bogus']).status).toBe(64);
    const missing = run(['learn', '--spam', '/nonexistent/folder']);
    expect(missing.status).toBe(66);
    expect(missing.stderr).toContain('/nonexistent/folder');
    const bad = path.join(tmp(), 'bad.model');
    writeFileSync(bad, 'this is not a model');
    const r = run(['learn', '--spam', fx('classify-train/spam'), '--model', bad]);
    expect(r.status).toBe(78);
    expect(r.stderr).toContain('EMODEL');
    expect(readFileSync(bad, 'utf8')).toBe('this is not a model');
  });

  it('exits 65 when the paths hold no message', () => {
    const empty = tmp();
    expect(run(['learn', '--ham', empty, '--model', path.join(empty, 'x.model')]).status).toBe(65);
    expect(existsSync(path.join(empty, 'x.model'))).toBe(false);
  });
});

describe('mbox reading', () => {
  it('splits on From lines, drops the envelope line and unquotes >From', () => {
    const msgs = [...splitMbox(new Uint8Array(readFileSync(fx('classify-spam.mbox'))))].map((m) => new TextDecoder().decode(m));
    expect(msgs).toHaveLength(4);
    expect(msgs[0]!.startsWith('From: Offers <win@promo-deals.example>\n')).toBe(true);
    expect(msgs[1]).toContain('\nFrom the desk of the manager: act now.\n');
    expect(msgs[1]!.endsWith('act now.\n')).toBe(true);
  });

  it('splits CRLF mboxes too', () => {
    const mbox = 'From a@b Mon Mar  2 10:00:00 2026\r\nSubject: one\r\n\r\nbody\r\n\r\nFrom a@b Mon Mar  2 10:01:00 2026\r\nSubject: two\r\n\r\nbody\r\n';
    const msgs = [...splitMbox(new TextEncoder().encode(mbox))].map((m) => new TextDecoder().decode(m));
    expect(msgs).toEqual(['Subject: one\r\n\r\nbody\r\n', 'Subject: two\r\n\r\nbody\r\n']);
  });
});

describe('mail sources', () => {
  it('reads .eml folders recursively and Maildir cur/new, in name order, skipping other files', () => {
    const dir = tmp();
    mkdirSync(path.join(dir, 'cur'));
    mkdirSync(path.join(dir, 'sub'));
    writeFileSync(path.join(dir, 'b.eml'), 'Subject: b\n\nb');
    writeFileSync(path.join(dir, 'a.eml'), 'Subject: a\n\na');
    writeFileSync(path.join(dir, 'notes.txt'), 'not mail');
    writeFileSync(path.join(dir, '.hidden.eml'), 'Subject: h\n\nh');
    writeFileSync(path.join(dir, 'cur', '1700000000.M1P1.host:2,S'), 'Subject: maildir\n\nm');
    writeFileSync(path.join(dir, 'sub', 'c.eml'), 'Subject: c\n\nc');
    const names = [...readMailSource(dir)].map((m) => path.relative(dir, m.name));
    expect(names).toEqual(['a.eml', 'b.eml', path.join('cur', '1700000000.M1P1.host:2,S'), path.join('sub', 'c.eml')]);
  });

  it('reads a single message file as one message', () => {
    const msgs = [...readMailSource(fx('classify-mime.eml'))];
    expect(msgs).toHaveLength(1);
    expect(msgs[0]!.raw.length).toBe(readFileSync(fx('classify-mime.eml')).length);
  });

  it('names sources as eval prints them', () => {
    expect(sourceName('/x/corpus/spamassassin/ham')).toBe('spamassassin');
    expect(sourceName('/x/corpus/spamassassin/spam/')).toBe('spamassassin');
    expect(sourceName('/mail/Junk')).toBe('Junk');
    expect(sourceName('/mail/archive.mbox')).toBe('archive');
  });
});
