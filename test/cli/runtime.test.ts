// createRuntime starts the worker pool only when asked and a model file exists.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createRuntime } from '../../src/cli/runtime.ts';
import { classifyMessage, emptyModel, loadModel, serializeModel, trainMessage } from '../../src/core/classify.ts';
import { type Config, defaultConfig } from '../../src/core/config.ts';
import { root } from '../helpers/env.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'atlas-runtime-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const spam = new Uint8Array(readFileSync(path.join(root, 'test/pool/fixtures/spam.eml')));
const ham = new Uint8Array(readFileSync(path.join(root, 'test/pool/fixtures/ham.eml')));

function configWithModel(file: string): Config {
  const config = defaultConfig();
  config.auth.enabled = false;
  config.pool.workers = 1;
  config.modelFile = file;
  return config;
}

describe('createRuntime', () => {
  it('classifies through the worker pool when a model file exists, and close() stops it', async () => {
    const m = emptyModel();
    trainMessage(m, spam, 'spam');
    trainMessage(m, ham, 'ham');
    const file = path.join(dir, 'trained.model');
    writeFileSync(file, serializeModel(m));
    const runtime = await createRuntime(configWithModel(file), { classify: true });
    expect(runtime.classifier).toBe(runtime.pool);
    const result = await runtime.classifier?.classify({ raw: spam, look: {} as never, deadline: performance.now() + 10_000 });
    expect(result).toEqual(classifyMessage(spam, loadModel(readFileSync(file))));
    expect(runtime.pool?.stats()).toMatchObject({ workers: 1, completed: 1 });
    await runtime.close();
    await expect(runtime.classifier?.classify({ raw: spam, look: {} as never, deadline: performance.now() + 10_000 })).rejects.toMatchObject({
      code: 'EWORKER',
    });
  });

  it('runs rules only without a model file, or when not asked to classify', async () => {
    const missing = await createRuntime(configWithModel(path.join(dir, 'absent.model')), { classify: true });
    expect(missing.classifier).toBeUndefined();
    expect(missing.pool).toBeUndefined();
    await missing.close();
    const off = await createRuntime(configWithModel(path.join(dir, 'trained.model')), { classify: false });
    expect(off.classifier).toBeUndefined();
    await off.close();
  });

  it('refuses a corrupt model file with EMODEL at start', async () => {
    const file = path.join(dir, 'corrupt.model');
    writeFileSync(file, 'ATLSBAYS but nothing after');
    await expect(createRuntime(configWithModel(file), { classify: true })).rejects.toMatchObject({ code: 'EMODEL' });
  });
});
