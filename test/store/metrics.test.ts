// The atlas_log_* metrics on a real prom-client registry, fed by a real store.
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { registerStoreMetrics } from '../../src/store/metrics.ts';
import { openStore, type VerdictStore } from '../../src/store/store.ts';
import { tempDir, verdict } from './helpers.ts';

let store: VerdictStore | undefined;
afterEach(async () => {
  await store?.close();
});

describe('registerStoreMetrics', () => {
  it('exposes written, dropped, failed batches and writable, counting forward between scrapes', async () => {
    store = await openStore({ file: path.join(tempDir(), 'atlas.db'), batchSize: 10, flushMs: 10, queueLength: 5, log: () => {} });
    const registry = new Registry();
    registerStoreMetrics(registry, () => (store as VerdictStore).stats());
    registerStoreMetrics(registry, () => (store as VerdictStore).stats());
    for (let i = 0; i < 8; i++) store.record(verdict());
    await store.flush();
    const first = await registry.metrics();
    expect(first).toMatch(/^atlas_log_written_total 5$/m);
    expect(first).toMatch(/^atlas_log_dropped_total 3$/m);
    expect(first).toMatch(/^atlas_log_failed_batches_total 0$/m);
    expect(first).toMatch(/^atlas_log_writable 1$/m);
    store.record(verdict());
    await store.flush();
    expect(await registry.metrics()).toMatch(/^atlas_log_written_total 6$/m);
  });
});
