import { describe, expect, it } from 'vitest';
import { defaultConfig, parseHostPort, resolveConfig } from '../../src/core/config.ts';

describe('config', () => {
  it('has the documented defaults', () => {
    const c = resolveConfig(undefined, {}, 4);
    expect(c.thresholds).toEqual({ required: 5, reject: 15, quarantine: null });
    expect(c.pool.workers).toBe(4);
    expect(c.log.batchSize).toBe(500);
    expect(c.cache.verdict).toEqual({ max: 50_000, ttlMs: 7_200_000 });
    expect(c.cache.auth.max).toBe(5_000);
  });

  it('layers file then environment', () => {
    const c = resolveConfig({ thresholds: { required: 6 }, scores: { BAYES_SPAM: 4 } }, {
      ATLAS_WORKER_COUNT: '3',
      ATLAS_BULK_BATCH_SIZE: '250',
      ATLAS_CACHE_ENABLED: 'false',
      ATLAS_MEMORY_LIMIT_MB: '256',
      ATLAS_CACHE_SIZE_MULTIPLIER: '2',
      ATLAS_API_TOKEN: 'secret',
    });
    expect(c.thresholds.required).toBe(6);
    expect(c.thresholds.reject).toBe(15);
    expect(c.scores.BAYES_SPAM).toBe(4);
    expect(c.pool.workers).toBe(3);
    expect(c.log.batchSize).toBe(250);
    expect(c.cache.enabled).toBe(false);
    expect(c.memoryLimitMb).toBe(256);
    expect(c.cache.sizeMultiplier).toBe(2);
    expect(c.http.token).toBe('secret');
  });

  it('names the option in every error', () => {
    expect(() => resolveConfig({ thresholds: { requried: 5 } })).toThrow('config option "thresholds.requried" is not a known option');
    expect(() => resolveConfig({ pool: { workers: 'two' } })).toThrow('config option "pool.workers" must be a number, got string');
    expect(() => resolveConfig({ pool: { workers: 0 } })).toThrow('config option "pool.workers" must be a positive whole number, got 0');
    expect(() => resolveConfig({ pool: { workerNice: 20 } })).toThrow('config option "pool.workerNice" must be a whole number from 0 to 19');
    expect(resolveConfig({ pool: { workerNice: 0 } }).pool.workerNice).toBe(0);
    expect(() => resolveConfig({ thresholds: { reject: 3 } })).toThrow('config option "thresholds.reject" must be greater than thresholds.required (5)');
    expect(() => resolveConfig({ scores: { X: 'a' } })).toThrow('config option "scores.X" must be a number');
    expect(() => resolveConfig({ trustedRelays: [1] })).toThrow('config option "trustedRelays" must be a list of strings');
    expect(() => resolveConfig([])).toThrow('config option "(root)" must be a mapping');
    expect(() => resolveConfig({}, { ATLAS_WORKER_COUNT: 'many' })).toThrow('environment variable ATLAS_WORKER_COUNT must be a number, got "many"');
    expect(() => resolveConfig({}, { ATLAS_CACHE_ENABLED: 'maybe' })).toThrow('environment variable ATLAS_CACHE_ENABLED must be true or false');
  });

  it('parses HOST:PORT flags', () => {
    expect(parseHostPort('127.0.0.1:10025', '--smtp')).toEqual({ host: '127.0.0.1', port: 10025 });
    expect(parseHostPort('[::1]:8025', '--http')).toEqual({ host: '::1', port: 8025 });
    expect(() => parseHostPort('localhost', '--http')).toThrow('--http must be HOST:PORT, got "localhost"');
    expect(() => parseHostPort('a:99999', '--http')).toThrow('--http port must be 0-65535');
  });

  it('returns fresh defaults each time', () => {
    const a = defaultConfig();
    a.thresholds.required = 9;
    expect(defaultConfig().thresholds.required).toBe(5);
  });
});
