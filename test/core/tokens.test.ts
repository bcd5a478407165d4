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
    expect([...all.hashes.subarray(0, contentOnly.hashes.length)]).toEqual([...contentOnly.hashes]);
    // The five alignment tokens come from headers but are counted with the content.
    expect(all.content).toBe(contentOnly.hashes.length + 5);
    expect(features(c, { ...defaultTokenOptions, alignment: false }).content).toBe(contentOnly.hashes.length);
    expect(all.hashes.length).toBeGreaterThan(all.content);
  });

  it('count the content rules that fired as content tokens, by name', () => {
    const c = analyse(parseMessage(fixture('classify-mime.eml')));
    const plain = features(c);
    const ruled = features(c, defaultTokenOptions, ['HTML_HIDDEN_TEXT', 'URL_SHORTENER']);
    expect(ruled.content).toBe(plain.content + 2);
    expect(ruled.hashes.length).toBe(plain.hashes.length + 2);
    const token = (rule: string) => features(c, defaultTokenOptions, [rule]).hashes[plain.content];
    expect(token('URL_SHORTENER')).not.toBe(token('HTML_HIDDEN_TEXT'));
    expect(plain.hashes).not.toContain(token('URL_SHORTENER'));
  });

  describe('alignment of the From domain', () => {
    /** The alignment tokens alone: the content group with them minus the content group without. */
    const alignment = (raw: string) => {
      const c = analyse(parseMessage(bytes(raw)));
      const on = features(c);
      const without = features(c, { ...defaultTokenOptions, alignment: false });
      const off = new Set(without.hashes.subarray(0, without.content));
      return [...on.hashes.subarray(0, on.content)].filter((h) => !off.has(h)).sort();
    };
    const newsletter = (d: string) =>
      `Received: from mta.${d} (mta.${d} [192.0.2.1]) by mx.example.net\r\nReturn-Path: <bounce@mail.${d}>\r\n` +
      `From: News <news@${d}>\r\nMessage-ID: <1@mail.${d}>\r\nList-Unsubscribe: <https://${d}/u>\r\nSubject: s\r\n\r\nsee https://www.${d}/offer`;

    it('say the same for any domain that is used consistently, and something else when it is not', () => {
      const a = alignment(newsletter('shop.example'));
      expect(a).toHaveLength(5);
      // Only whether the domains agree matters, never which domain it is (no domain text in these tokens).
      expect(alignment(newsletter('other.example.co.uk'))).toEqual(a);
      const forged = newsletter('shop.example').replace('From: News <news@shop.example>', 'From: Bank <alerts@bank.example>');
      const f = alignment(forged);
      expect(f).toHaveLength(5);
      expect(f.filter((h) => a.includes(h))).toHaveLength(0);
    });

    it('compare registrable domains, ignoring case', () => {
      const upper = newsletter('shop.example').replace('Received: from mta.shop.example', 'Received: from MTA.SHOP.EXAMPLE');
      expect(alignment(upper)).toEqual(alignment(newsletter('shop.example')));
    });

    it('give one token when From has no domain, and none without header tokens', () => {
      expect(alignment('Subject: s\r\n\r\nhello there')).toHaveLength(1);
      expect(alignment('From: nobody\r\nSubject: s\r\n\r\nhello')).toEqual(alignment('Subject: s\r\n\r\nhello there'));
      const c = analyse(parseMessage(bytes(newsletter('shop.example'))));
      const bare = features(c, { ...defaultTokenOptions, headers: false });
      expect(bare.content).toBe(bare.hashes.length);
      expect(bare.hashes.length).toBe(features(c).content - 5);
    });
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
