import { describe, expect, it } from 'vitest';
import { FilterError } from '../../src/core/errors.ts';
import { emptyModel, loadModel, MODEL_VERSION, serializeModel, spamProbability, trainBatch, update } from '../../src/core/model.ts';

// The first hash is content, the rest headers: both groups take part.
const f = (...xs: number[]) => ({ hashes: Uint32Array.from(xs), content: 1 });

function trained() {
  const m = emptyModel(12);
  const batch = [];
  for (let i = 0; i < 20; i++) {
    batch.push({ features: f(1, 100 + (i % 3), 7), label: 'spam' as const });
    batch.push({ features: f(1, 200 + (i % 3), 9), label: 'ham' as const });
  }
  trainBatch(m, batch);
  return m;
}

describe('model', () => {
  it('knows nothing when empty, and learns to separate after training', () => {
    expect(spamProbability(emptyModel(12), f(1, 2, 3))).toBe(0.5);
    const m = trained();
    expect(spamProbability(m, f(1, 100, 7))).toBeGreaterThan(0.95);
    expect(spamProbability(m, f(1, 200, 9))).toBeLessThan(0.05);
    expect(m.spamDocs).toBe(20);
    expect(m.hamDocs).toBe(20);
  });

  it('moves towards the label with each online update', () => {
    const m = emptyModel(12);
    const x = f(5, 6);
    const before = spamProbability(m, x);
    update(m, x, 'spam');
    expect(spamProbability(m, x)).toBeGreaterThan(before);
  });

  it('averages replicas trained in different orders, and trains one message once', () => {
    const batch = [];
    for (let i = 0; i < 20; i++) {
      batch.push({ features: f(1, 100 + (i % 3), 7), label: 'spam' as const });
      batch.push({ features: f(1, 200 + (i % 3), 9), label: 'ham' as const });
    }
    const one = (seed: number) => {
      const m = emptyModel(12);
      trainBatch(m, batch, 5, seed, { replicas: 1 });
      return m.weights;
    };
    const a = one(1729);
    const b = one(2729);
    const both = emptyModel(12);
    trainBatch(both, batch, 5, 1729, { replicas: 2 });
    expect([...a]).not.toEqual([...b]);
    both.weights.forEach((w, i) => expect(w).toBeCloseTo(((a[i] as number) + (b[i] as number)) / 2, 5));
    expect([both.spamDocs, both.hamDocs]).toEqual([20, 20]);
    const single = emptyModel(12);
    const plain = emptyModel(12);
    trainBatch(single, [batch[0]!], 1);
    trainBatch(plain, [batch[0]!], 1, 1729, { replicas: 1 });
    expect([...single.weights]).toEqual([...plain.weights]);
  });

  it('round-trips through the binary format, storing only non-zero weights', () => {
    const m = trained();
    const bytes = serializeModel(m);
    expect(new TextDecoder().decode(bytes.subarray(0, 8))).toBe('ATLSMODL');
    expect(new DataView(bytes.buffer).getUint32(8, true)).toBe(MODEL_VERSION);
    const back = loadModel(bytes);
    expect(back.bits).toBe(12);
    expect([...back.weights]).toEqual([...m.weights]);
    expect([back.spamDocs, back.hamDocs]).toEqual([20, 20]);
    expect(bytes.length).toBeLessThan(200);
  });

  it('refuses bad magic, an unknown version, truncation and trailing bytes with EMODEL', () => {
    const bytes = serializeModel(trained());
    const code = (b: Uint8Array) => {
      try {
        loadModel(b);
        return 'loaded';
      } catch (e) {
        return e instanceof FilterError ? `${e.code}: ${e.message}` : String(e);
      }
    };
    expect(code(new TextEncoder().encode('not a model at all, really not'))).toMatch(/^EMODEL: .*bad magic/);
    const v2 = bytes.slice();
    new DataView(v2.buffer).setUint32(8, MODEL_VERSION + 1, true);
    expect(code(v2)).toMatch(new RegExp(`^EMODEL: .*version ${MODEL_VERSION + 1} is not supported`));
    // Older files too: version-1 weights were scaled differently and version-2 models hold no weight
    // for the content rules; both would score wrongly, so the error says to train a new one.
    for (const old of [1, 2]) {
      const v = bytes.slice();
      new DataView(v.buffer).setUint32(8, old, true);
      expect(code(v)).toMatch(new RegExp(`^EMODEL: .*version ${old} is not supported.*learn --new`));
    }
    expect(code(bytes.subarray(0, bytes.length - 3))).toMatch(/^EMODEL: .*truncated/);
    const extra = new Uint8Array(bytes.length + 1);
    extra.set(bytes);
    expect(code(extra)).toMatch(/^EMODEL: .*trailing/);
    expect(code(new Uint8Array(0))).toMatch(/^EMODEL/);
  });
});
