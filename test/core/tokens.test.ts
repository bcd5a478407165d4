import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { analyse } from '../../src/core/content.ts';
import { limits } from '../../src/core/limits.ts';
import { parseMessage } from '../../src/core/parse.ts';
import { defaultTokenOptions, features } from '../../src/core/tokens.ts';

const bytes = (s: string) => new TextEncoder().encode(s);
const feats = (raw: string, opts = defaultTokenOptions) => features(analyse(parseMessage(bytes(raw))), opts).hashes;
const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../fixtures/${name}`, import.meta.url)));

describe('features', () => {
  it('are distinct 32-bit hashes, the same for the same message', () => {
    const a = features(analyse(parseMessage(fixture('classify-mime.eml'))));
    const b = features(analyse(parseMessage(fixture('classify-mime.eml'))));
    expect(a.hashes).toBeInstanceOf(Uint32Array);
    expect([...a.hashes]).toEqual([...b.hashes]);
    expect(a.content).toBe(b.content);
    expect(new Set(a.hashes).size).toBe(a.hashes.length);
  });

  it('put content hashes first and header hashes after', () => {
    const c = analyse(parseMessage(fixture('classify-mime.eml')));
    const all = features(c);
    const contentOnly = features(c, { ...defaultTokenOptions, headers: false });
    expect(all.content).toBe(contentOnly.hashes.length);
    expect([...all.hashes.subarray(0, all.content)]).toEqual([...contentOnly.hashes]);
    expect(all.hashes.length).toBeGreaterThan(all.content);
  });

  it('ignore case and punctuation around words, but tell subject words from body words', () => {
    const body = (t: string) => new Set(feats(`Subject: x\r\n\r\n${t}`, { ...defaultTokenOptions, headers: false }));
    expect(body('Free MONEY!')).toEqual(body('free, money.'));
    const subj = new Set(feats('Subject: money\r\n\r\nx', { ...defaultTokenOptions, headers: false }));
    const inBody = new Set(feats('Subject: x\r\n\r\nmoney', { ...defaultTokenOptions, headers: false }));
    expect(subj).not.toEqual(inBody);
  });

  it('add word pairs when bigrams are on', () => {
    const opts = { ...defaultTokenOptions, headers: false };
    const uni = feats('Subject: s\r\n\r\nalpha beta gamma', opts);
    const bi = feats('Subject: s\r\n\r\nalpha beta gamma', { ...opts, bigrams: true });
    expect(bi.length).toBe(uni.length + 2);
  });

  it('include link domains and selected headers', () => {
    const raw = 'From: A <a@sender.example>\r\nX-Mailer: FooMail 3\r\nSubject: s\r\n\r\nsee https://deep.link.example/x';
    const withHeaders = feats(raw);
    const without = feats(raw, { ...defaultTokenOptions, headers: false });
    expect(withHeaders.length).toBeGreaterThan(without.length);
    // Domains of links count even without headers: the link adds host and registrable domain.
    expect(without.length).toBeGreaterThan(feats('Subject: s\r\n\r\nsee', { ...defaultTokenOptions, headers: false }).length + 1);
  });

  it('read at most limits.maxTokenTextChars of text and keep at most limits.maxTokens', () => {
    let body = '';
    for (let i = 0; body.length < limits.maxTokenTextChars * 2; i++) body += `w${i.toString(36)} `;
    const all = feats(`Subject: s\r\n\r\n${body}`);
    expect(all.length).toBeLessThanOrEqual(limits.maxTokens);
    expect(all.length).toBeGreaterThan(limits.maxTokenTextChars / 8);
    expect([...feats(`Subject: s\r\n\r\n${body} lateword`)]).toEqual([...all]);
  });
});
