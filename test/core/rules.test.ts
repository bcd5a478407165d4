import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { quickLook } from '../../src/core/look.ts';
import { loadRules } from '../../src/core/rules/load.ts';
import { watchRules } from '../../src/cli/rules-watch.ts';
import { bytes } from '../helpers/env.ts';

const rule = (extra: string) => `rules:\n  - symbol: TEST_RULE\n    score: 3\n    description: a test rule\n${extra}`;
const load = (text: string, file = 'rules/local.yaml') => loadRules([{ path: file, text }]);
const msg = (headers: string, body = 'hello') => bytes(`${headers}\r\n\r\n${body}\r\n`);
const fire = (rulesText: string, raw: Uint8Array, env = {}) => load(rulesText).match(quickLook(raw, env), raw).map((h) => h.symbol);

describe('rule validation names file, rule and field', () => {
  const cases: [string, string][] = [
    ['rules: {}', 'rules/local.yaml: field "rules" must be a list'],
    ['other: 1', 'rules/local.yaml: field "other" is not a known top-level key'],
    [rule('    match: { subject: x }').replace('TEST_RULE', 'lower'), 'rule lower: field "symbol" must be UPPER_CASE'],
    [rule('    match: { subject: x }').replace('score: 3', 'score: high'), 'rule TEST_RULE: field "score" must be a number'],
    [rule('    match: { subject: "/(unclosed/" }'), 'rule TEST_RULE: field "match.subject" has an invalid pattern /(unclosed/'],
    [rule('    match: { subject: "/x/g" }'), 'rule TEST_RULE: field "match.subject" pattern /x/g has unsupported flags "g"'],
    [rule('    match: { ip: [300.1.1.1] }'), 'rule TEST_RULE: field "match.ip" has an invalid address or CIDR "300.1.1.1"'],
    [rule('    match: { colour: red }'), 'rule TEST_RULE: field "match.colour" is not a known condition'],
    [rule('    match: {}'), 'rule TEST_RULE: field "match" needs at least one condition'],
    [rule('    action: drop\n    match: { subject: x }'), 'rule TEST_RULE: field "action" must be one of accept, tag, quarantine, reject, tempfail'],
    [rule('    prio: 1\n    match: { subject: x }'), 'rule TEST_RULE: field "prio" is not a known field'],
    ['rules: [ {', 'rules/local.yaml: not valid YAML'],
  ];
  it.each(cases)('%#: %s', (text, message) => {
    expect(() => load(text)).toThrow(message);
    try {
      load(text);
    } catch (e) {
      expect((e as { code: string }).code).toBe('ERULES');
    }
  });

  it('refuses a symbol defined twice, naming both files', () => {
    const text = rule('    match: { subject: x }');
    expect(() => loadRules([{ path: 'a.yaml', text }, { path: 'b.yaml', text }])).toThrow('b.yaml: rule TEST_RULE: field "symbol" is already defined in a.yaml');
  });
});

describe('rule matching', () => {
  it('matches sender lists exactly and by *@domain', () => {
    const r = rule('    match: { sender: ["boss@corp.example", "*@partner.example"] }');
    expect(fire(r, msg('From: Boss <BOSS@corp.example>'))).toEqual(['TEST_RULE']);
    expect(fire(r, msg('From: x@partner.example'))).toEqual(['TEST_RULE']);
    expect(fire(r, msg('From: x@sub.partner.example'))).toEqual([]);
    expect(fire(r, msg('From: x@corp.example'))).toEqual([]);
    expect(fire(r, msg('From: x@other.example'), { from: 'boss@corp.example' })).toEqual(['TEST_RULE']);
  });

  it('matches domains with their subdomains', () => {
    const r = rule('    match: { domain: [partner.example] }');
    expect(fire(r, msg('From: x@mail.partner.example'))).toEqual(['TEST_RULE']);
    expect(fire(r, msg('From: x@notpartner.example'))).toEqual([]);
  });

  it('matches relay IPs by CIDR', () => {
    const r = rule('    match: { ip: [192.0.2.0/24, "2001:db8::/32"] }');
    expect(fire(r, msg('From: a@b.example'), { ip: '192.0.2.77' })).toEqual(['TEST_RULE']);
    expect(fire(r, msg('From: a@b.example'), { ip: '2001:db8::5' })).toEqual(['TEST_RULE']);
    expect(fire(r, msg('From: a@b.example'), { ip: '198.51.100.1' })).toEqual([]);
  });

  it('needs every condition of a rule, any entry of a list', () => {
    const r = rule('    match:\n      subject: [invoice, receipt]\n      body: "/pay now/i"');
    expect(fire(r, msg('Subject: Your Invoice', 'please PAY NOW'))).toEqual(['TEST_RULE']);
    expect(fire(r, msg('Subject: Your receipt', 'please pay now'))).toEqual(['TEST_RULE']);
    expect(fire(r, msg('Subject: Your invoice', 'thanks'))).toEqual([]);
    expect(fire(r, msg('Subject: Hello', 'pay now'))).toEqual([]);
  });

  it('treats plain phrases as literal, case-insensitive and whitespace-tolerant', () => {
    const r = rule('    match: { body: "win a (free) iPhone" }');
    expect(fire(r, msg('Subject: s', 'WIN A   (FREE)\r\n iphone today'))).toEqual(['TEST_RULE']);
    expect(fire(r, msg('Subject: s', 'win a free iphone'))).toEqual([]);
  });

  it('matches named headers and missing headers', () => {
    const r = rule('    match:\n      header: { X-Mailer: "/bulk ?mailer/i" }\n      missing: [list-unsubscribe, list-id]');
    expect(fire(r, msg('X-Mailer: Bulk Mailer 3\r\nSubject: s'))).toEqual(['TEST_RULE']);
    expect(fire(r, msg('X-Mailer: Bulk Mailer 3\r\nList-Id: <l.example>\r\nSubject: s'))).toEqual([]);
    expect(fire(r, msg('X-Mailer: Bulk Mailer 3\r\nList-Id: <l.example>\r\nList-Unsubscribe: <mailto:u@l.example>'))).toEqual([]);
    expect(fire(r, msg('X-Mailer: Thunderbird\r\nSubject: s'))).toEqual([]);
  });

  it('applies score overrides from config', () => {
    const set = loadRules([{ path: 'x.yaml', text: rule('    match: { subject: x }') }], { TEST_RULE: 0.5 });
    const raw = msg('Subject: x');
    expect(set.match(quickLook(raw), raw)[0]!.score).toBe(0.5);
  });

  it('reports what matched', () => {
    const raw = msg('Subject: Final notice');
    const hit = load(rule('    match: { subject: "/final notice/i" }')).match(quickLook(raw), raw)[0]!;
    expect(hit.options).toEqual(['subject=Final notice']);
  });
});

describe('rule reload', () => {
  it('swaps in a valid edit and keeps the old set on a broken one', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'atlas-rules-'));
    const file = path.join(dir, 'local.yaml');
    writeFileSync(file, rule('    match: { subject: alpha }'));
    const logs: string[] = [];
    const holder = watchRules(dir, {}, (m) => logs.push(m));
    try {
      const before = holder.current();
      expect(before.rules[0]!.match.subject).toEqual(['alpha']);
      writeFileSync(file, rule('    match: { subject: beta }'));
      expect(holder.reload()).toBe(true);
      expect(holder.current().rules[0]!.match.subject).toEqual(['beta']);
      writeFileSync(file, rule('    match: { subject: "/(broken/" }'));
      expect(holder.reload()).toBe(false);
      expect(holder.current().rules[0]!.match.subject).toEqual(['beta']);
      expect(logs.at(-1)).toContain('reload failed, keeping the previous 1 rules');
      expect(logs.at(-1)).toContain('field "match.subject" has an invalid pattern');
      // The watcher picks up edits by itself.
      writeFileSync(file, rule('    match: { subject: gamma }'));
      await expect.poll(() => holder.current().rules[0]!.match.subject, { timeout: 5000 }).toEqual(['gamma']);
    } finally {
      holder.close();
    }
  });
});
