import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { bayesSymbol, classifyMessage, emptyModel, loadModel, prepare, serializeModel, score, trainMessage } from '../../src/core/classify.ts';
import { trainBatch } from '../../src/core/model.ts';
import { auc } from '../../src/cli/eval.ts';
import { corpusFiles, hasCorpus, noCorpusReason } from '../helpers/corpus.ts';

const root = path.resolve(new URL('../..', import.meta.url).pathname);
const fixture = (name: string) => new Uint8Array(readFileSync(path.join(root, 'test/fixtures', name)));
const bytes = (s: string) => new TextEncoder().encode(s);
const names = (r: { symbols: { name: string }[] }) => r.symbols.map((s) => s.name);
const total = (r: { symbols: { score: number }[] }) => r.symbols.reduce((a, s) => a + s.score, 0);

function fixtureModel() {
  const m = emptyModel();
  for (let pass = 0; pass < 5; pass++) {
    for (const label of ['spam', 'ham'] as const) {
      const dir = path.join(root, 'test/fixtures/classify-train', label);
      for (const f of readdirSync(dir)) trainMessage(m, new Uint8Array(readFileSync(path.join(dir, f))), label);
    }
  }
  return m;
}

describe('bayesSymbol', () => {
  it('gives points graded by the probability, capped both ways, nothing near 0.5', () => {
    expect(bayesSymbol(0.5)).toBeNull();
    expect(bayesSymbol(0.55)).toBeNull();
    const s997 = bayesSymbol(0.997)!;
    expect(s997.name).toBe('BAYES_SPAM');
    expect(s997.score).toBeGreaterThanOrEqual(5);
    expect(bayesSymbol(0.99)!.score).toBeLessThan(5);
    expect(bayesSymbol(1)!.score).toBe(8);
    expect(bayesSymbol(0.2)).toMatchObject({ name: 'BAYES_HAM' });
    expect(bayesSymbol(0)!.score).toBe(-4);
    expect(bayesSymbol(0.999)!.options).toEqual(['p=0.9990']);
  });
});

describe('classifyMessage', () => {
  it('without a model gives content rules only', () => {
    const r = classifyMessage(fixture('classify-spam-html.eml'), null);
    expect(names(r)).not.toContain('BAYES_SPAM');
    expect(names(r)).toContain('HTML_LINK_MISMATCH');
    expect(classifyMessage(fixture('classify-spam-html.eml'), emptyModel()).symbols).toEqual(r.symbols);
  });

  it('with a trained model, shows the content rules that fired at 0 points: their weight is in the model', () => {
    const raw = fixture('classify-spam-html.eml');
    const fixed = classifyMessage(raw, null).symbols;
    expect(fixed.find((s) => s.name === 'HTML_LINK_MISMATCH')!.score).toBeGreaterThan(0);
    const learned = classifyMessage(raw, fixtureModel()).symbols;
    const rules = learned.filter((s) => !s.name.startsWith('BAYES_'));
    expect(rules.map((s) => s.name)).toEqual(fixed.map((s) => s.name));
    for (const s of rules) expect(s.score).toBe(0);
  });

  it('with a model trained on the fixtures, says BAYES_SPAM to spam and BAYES_HAM to ham, across a save and load', () => {
    const m = loadModel(serializeModel(fixtureModel()));
    const spam = classifyMessage(bytes('From: Offers <win@promo-deals.example>\r\nSubject: claim your free prize now\r\n\r\nClick here to claim your free money, limited offer, act now!\r\n'), m);
    expect(names(spam)[0]).toBe('BAYES_SPAM');
    expect(total(spam)).toBeGreaterThanOrEqual(5);
    const ham = classifyMessage(bytes('From: Dev List <dev@lists.example.org>\r\nSubject: Re: patch for the build\r\n\r\nI rebuilt the package and the tests pass with the patch; the changelog is updated.\r\n'), m);
    expect(names(ham)[0]).toBe('BAYES_HAM');
    expect(total(ham)).toBeLessThan(0);
  });

  it.each([
    ['200-deep multipart nesting', () => bytes(Array.from({ length: 200 }, (_, i) => `Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\n--b${i}\r\n`).join('') + 'text')],
    ['10,000 headers', () => bytes('X-H: v\r\n'.repeat(10_000) + '\r\nbody')],
    ['NUL bytes everywhere', () => bytes('Subject: \0\0\r\nContent-Type: text/html\r\n\r\n<p>\0a\0</p>\0'.repeat(100))],
    ['broken base64 and QP', () => bytes('Content-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n@@@!!!====aGk=\r\n=ZZ=\r\n')],
    ['an unknown charset', () => bytes('Content-Type: text/plain; charset=klingon-8\r\n\r\nqapla\xff')],
    ['a truncated multipart', () => bytes('Content-Type: multipart/alternative; boundary=z\r\n\r\n--z\r\nContent-Type: text/html\r\n\r\n<a href="http://x')],
    ['random bytes', () => Uint8Array.from({ length: 50_000 }, (_, i) => (i * 2654435761) >>> 24)],
    ['an empty message', () => new Uint8Array(0)],
  ])('never throws or hangs on %s', (_name, make) => {
    const m = fixtureModel();
    const r = classifyMessage(make(), m);
    expect(Array.isArray(r.symbols)).toBe(true);
    for (const s of r.symbols) expect(Number.isFinite(s.score)).toBe(true);
  });

  it('the shipped default model tags the fixture spam and leaves the fixture ham alone', () => {
    const file = path.join(root, 'models/default.model');
    expect(existsSync(file)).toBe(true);
    const m = loadModel(new Uint8Array(readFileSync(file)));
    expect(total(classifyMessage(fixture('classify-spam-html.eml'), m))).toBeGreaterThanOrEqual(5);
    expect(total(classifyMessage(fixture('classify-mime.eml'), m))).toBeLessThan(5);
  });

  it('loads and classifies unchanged on Deno (runtime-neutral core)', () => {
    const deno = path.join(root, 'node_modules/.bin/deno');
    const code = `import { classifyMessage } from './src/core/classify.ts';
const raw = await Deno.readFile('test/fixtures/classify-spam-html.eml');
console.log(JSON.stringify(classifyMessage(raw, null).symbols.map((s) => s.name)));`;
    const out = execFileSync(deno, ['eval', '--ext=ts', code], { cwd: root, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' } });
    expect(JSON.parse(out.trim().split('\n').at(-1)!)).toContain('HTML_HIDDEN_TEXT');
  }, 60_000);
});

describe.skipIf(!hasCorpus)('on the corpus', () => {
  if (!hasCorpus) it.skip(noCorpusReason, () => {});
  it('a model trained on 80% of spamassassin separates the held-out 20%', () => {
    const files = corpusFiles(['spamassassin']);
    const m = emptyModel();
    const held: { spam: boolean; p: number; points: number }[] = [];
    // As learn does: features once, then a few seeded passes.
    const train = files.filter((_, i) => i % 5 !== 0).map((f) => ({ features: prepare(new Uint8Array(readFileSync(f.path))).features, label: f.label }));
    trainBatch(m, train);
    files.forEach((f, i) => {
      if (i % 5 !== 0) return;
      const r = score(new Uint8Array(readFileSync(f.path)), m);
      held.push({ spam: f.label === 'spam', p: r.probability!, points: total(r) });
    });
    const ham = held.filter((h) => !h.spam);
    const spam = held.filter((h) => h.spam);
    const fpr = ham.filter((h) => h.points >= 5).length / ham.length;
    const recall = spam.filter((h) => h.points >= 5).length / spam.length;
    expect(auc(held.map((h) => ({ value: h.p, spam: h.spam })))).toBeGreaterThan(0.99);
    expect(fpr).toBeLessThan(0.01);
    expect(recall).toBeGreaterThan(0.8);
  }, 120_000);
});
