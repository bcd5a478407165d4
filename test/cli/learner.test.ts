// Online learning against the real worker pool (dist/pool/worker.js; `npm test` builds first).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLearner } from '../../src/cli/learner.ts';
import { createCaches } from '../../src/core/cache.ts';
import { emptyModel, loadModel, score, serializeModel } from '../../src/core/classify.ts';
import { defaultConfig } from '../../src/core/config.ts';
import { ClassifierPool } from '../../src/pool/pool.ts';
import { fixture } from '../helpers/env.ts';

const spam = fixture('rules/SCAM_LOTTERY_WINNER.eml');
const ham = fixture('ham-plain.eml');
const pools: ClassifierPool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

function setup() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'atlas-learner-'));
  const modelFile = path.join(dir, 'm.model');
  writeFileSync(modelFile, serializeModel(emptyModel()));
  const pool = new ClassifierPool({ workers: 1, queueLength: 10, taskTimeoutMs: 10_000, modelBytes: new Uint8Array(readFileSync(modelFile)) });
  pools.push(pool);
  const caches = createCaches(defaultConfig().cache);
  return { modelFile, pool, caches, learner: createLearner({ modelFile, pool, caches }) };
}

describe('createLearner', () => {
  it('trains, saves the model file and reloads the pool with it', async () => {
    const { modelFile, pool, caches, learner } = setup();
    caches.verdict.set('some-key', { symbols: [] });
    const before = score(spam, loadModel(new Uint8Array(readFileSync(modelFile)))).probability;

    const r = await learner.learn(spam, 'spam');
    expect(r).toEqual({ modelVersion: 1, learnedSinceStart: 1 });
    expect(pool.stats().modelVersion).toBe(1);
    expect(caches.verdict.size).toBe(0);
    const after = score(spam, loadModel(new Uint8Array(readFileSync(modelFile)))).probability as number;
    expect(after).toBeGreaterThan(before ?? 0.5);

    // The pool classifies with the new model: the same answer as the saved file gives in-process.
    const saved = score(spam, loadModel(new Uint8Array(readFileSync(modelFile)))).symbols;
    const fromPool = await pool.classify({
      raw: spam,
      look: { sender: '', senderDomain: '', fromDomain: '', relayIp: '', subject: '', messageId: '' },
      deadline: performance.now() + 10_000,
    });
    expect(fromPool.symbols.filter((s) => s.name.startsWith('BAYES'))).toEqual(saved.filter((s) => s.name.startsWith('BAYES')));
  });

  it('coalesces a burst of learns into at most two reloads, each caller seeing a model with its message', async () => {
    const { pool, learner } = setup();
    const results = await Promise.all([
      learner.learn(spam, 'spam'),
      learner.learn(ham, 'ham'),
      learner.learn(spam, 'spam'),
      learner.learn(ham, 'ham'),
      learner.learn(spam, 'spam'),
    ]);
    expect(pool.stats().modelVersion).toBeLessThanOrEqual(2);
    expect(results[0]?.modelVersion).toBeGreaterThanOrEqual(1);
    for (const r of results.slice(1)) expect(r.modelVersion).toBe(pool.stats().modelVersion);
    for (const r of results) expect(r.learnedSinceStart).toBe(5);
  });
});
