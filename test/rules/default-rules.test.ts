// Every shipped rule has a fixture that fires it (test/fixtures/rules/<SYMBOL>.eml), and the rules
// that end a scan never fire on ham.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { quickLook } from '../../src/core/look.ts';
import { corpusFiles, hasCorpus, noCorpusReason } from '../helpers/corpus.ts';
import { fixture, root, shippedRules } from '../helpers/env.ts';

const rules = shippedRules();
const fixtures = new Set(readdirSync(path.join(root, 'test/fixtures/rules')).map((f) => f.replace(/\.eml$/, '')));

describe('shipped rules', () => {
  it.each(rules.rules.map((r) => r.symbol))('%s has a fixture that fires it', (symbol) => {
    expect(fixtures.has(symbol), `add test/fixtures/rules/${symbol}.eml`).toBe(true);
    const raw = fixture(`rules/${symbol}.eml`);
    const hits = rules.match(quickLook(raw), raw).map((h) => h.symbol);
    expect(hits).toContain(symbol);
  });

  it('fires nothing on a plain ham message', () => {
    const raw = fixture('ham-plain.eml');
    expect(rules.match(quickLook(raw), raw)).toEqual([]);
  });

  const corpusTitle = hasCorpus ? 'never ends a scan on corpus ham, and scores under the tag threshold' : noCorpusReason;
  it.skipIf(!hasCorpus)(corpusTitle, () => {
    const ham = corpusFiles().filter((f) => f.label === 'ham');
    expect(ham.length).toBeGreaterThan(1000);
    const problems: string[] = [];
    for (const f of ham) {
      const raw = new Uint8Array(readFileSync(f.path));
      const hits = rules.match(quickLook(raw), raw);
      const score = hits.reduce((a, h) => a + h.score, 0);
      if (hits.some((h) => h.action) || score >= 5) problems.push(`${f.source}/${path.basename(f.path)}: ${hits.map((h) => h.symbol)}`);
    }
    expect(problems).toEqual([]);
  });
});
