import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/core/config.ts';
import { FilterError } from '../../src/core/errors.ts';
import { type ClassifyRequest, scan } from '../../src/core/scan.ts';
import { bytes, fixture, testEnv } from '../helpers/env.ts';

/** A classifier that scores a fixed symbol and counts its calls (the real pool has its own tests). */
function countingClassifier(score: number) {
  const calls: ClassifyRequest[] = [];
  return {
    calls,
    classify: async (req: ClassifyRequest) => {
      calls.push(req);
      return { symbols: [{ name: 'BAYES_TEST', score }] };
    },
  };
}

describe('scan', () => {
  it('accepts ham with a full verdict', async () => {
    const v = await scan({ raw: fixture('ham-plain.eml') }, testEnv());
    expect(v).toMatchObject({ action: 'accept', score: 0, required: 5, spam: false, symbols: [], source: 'classifier' });
    expect(v.messageId).toBe('<20261123091200.12345@mail.example.org>');
    expect(v.elapsedMs).toBeGreaterThanOrEqual(0);
    expect(Object.keys(v.stages ?? {}).sort()).toEqual(['cache', 'classify', 'decide', 'early', 'look']);
  });

  it('ends early on a rule with an action, without calling the classifier', async () => {
    const c = countingClassifier(0);
    const v = await scan({ raw: fixture('rules/SCAM_SEXTORTION.eml') }, testEnv({ classifier: c }));
    expect(v.source).toBe('early');
    expect(v.action).toBe('reject');
    expect(v.spam).toBe(true);
    expect(v.symbols.map((s) => s.name)).toContain('SCAM_SEXTORTION');
    expect(v.reason).toMatch(/^SCAM_SEXTORTION: /);
    expect(c.calls).toHaveLength(0);
  });

  it('adds early symbols without an action to the classifier score', async () => {
    const v = await scan({ raw: fixture('rules/PHISH_PAYPAL_SPOOF.eml') }, testEnv({ classifier: countingClassifier(-1) }));
    expect(v.source).toBe('classifier');
    expect(v.symbols.map((s) => s.name)).toEqual(['PHISH_PAYPAL_SPOOF', 'BAYES_TEST']);
    expect(v.score).toBe(7);
    expect(v.action).toBe('tag');
  });

  it('serves a repeated message from the verdict cache', async () => {
    const c = countingClassifier(6);
    const env = testEnv({ classifier: c });
    const first = await scan({ raw: fixture('ham-plain.eml') }, env);
    const again = await scan({ raw: fixture('ham-plain.eml') }, env);
    expect(first.source).toBe('classifier');
    expect(again.source).toBe('cache');
    expect(again.score).toBe(first.score);
    expect(c.calls).toHaveLength(1);
    expect(env.caches.verdict.hits).toBe(1);
    expect(env.caches.verdict.misses).toBe(1);
    await scan({ raw: fixture('ham-plain.eml'), noCache: true }, env);
    expect(c.calls).toHaveLength(2);
  });

  it('does not cache when the cache is disabled', async () => {
    const c = countingClassifier(1);
    const env = testEnv({ classifier: c, config: resolveConfig({ cache: { enabled: false } }) });
    await scan({ raw: fixture('ham-plain.eml') }, env);
    const v = await scan({ raw: fixture('ham-plain.eml') }, env);
    expect(v.source).toBe('classifier');
    expect(c.calls).toHaveLength(2);
  });

  it('maps scores to actions by the configured thresholds', async () => {
    const config = resolveConfig({ thresholds: { required: 5, reject: 15, quarantine: 10 } });
    const at = async (score: number) => (await scan({ raw: fixture('ham-plain.eml'), noCache: true }, testEnv({ config, classifier: countingClassifier(score) }))).action;
    expect(await at(4.9)).toBe('accept');
    expect(await at(5)).toBe('tag');
    expect(await at(10)).toBe('quarantine');
    expect(await at(15)).toBe('reject');
    expect(await at(-3)).toBe('accept');
  });

  it('answers tempfail, never accept, when classification fails', async () => {
    const failing = {
      classify: async () => {
        throw new FilterError('ETIMEOUT', 'classification took longer than 5000 ms');
      },
    };
    const env = testEnv({ classifier: failing });
    const v = await scan({ raw: fixture('ham-plain.eml') }, env);
    expect(v).toMatchObject({ action: 'tempfail', spam: false, errorCode: 'ETIMEOUT', reason: 'classification took longer than 5000 ms' });
    // A failure is not cached: the next try classifies again.
    expect(env.caches.verdict.size).toBe(0);
    const crash = await scan({ raw: fixture('ham-plain.eml') }, testEnv({ classifier: { classify: async () => Promise.reject(new TypeError('boom')) } }));
    expect(crash).toMatchObject({ action: 'tempfail', errorCode: 'EINTERNAL' });
  });

  it('passes the look and a deadline to the classifier', async () => {
    const c = countingClassifier(0);
    const env = testEnv({ classifier: c });
    await scan({ raw: fixture('ham-plain.eml'), envelope: { ip: '192.0.2.9' } }, env);
    expect(c.calls[0]!.look.relayIp).toBe('192.0.2.9');
    expect(c.calls[0]!.deadline).toBeGreaterThan(performance.now());
  });

  it('reports every verdict to the sink', async () => {
    const seen: string[] = [];
    const env = { ...testEnv(), onVerdict: (v: { action: string }) => seen.push(v.action) };
    await scan({ raw: fixture('ham-plain.eml') }, env);
    await scan({ raw: fixture('rules/SCAM_SEXTORTION.eml') }, env);
    expect(seen).toEqual(['accept', 'reject']);
  });

  it('refuses empty and oversized input with codes', async () => {
    await expect(scan({ raw: new Uint8Array(0) }, testEnv())).rejects.toMatchObject({ code: 'EMALFORMED' });
    const config = resolveConfig({ maxMessageBytes: 100 });
    await expect(scan({ raw: bytes('Subject: x\r\n\r\n' + 'a'.repeat(200)) }, testEnv({ config }))).rejects.toMatchObject({ code: 'ETOOLARGE' });
  });
});

describe('score overrides', () => {
  it('config scores fix the points of classifier symbols, cached or not', async () => {
    const config = resolveConfig({ scores: { BAYES_TEST: 9 } });
    const env = testEnv({ config, classifier: { classify: async () => ({ symbols: [{ name: 'BAYES_TEST', score: 1 }, { name: 'OTHER', score: 0.5 }] }) } });
    for (const expected of ['classifier', 'cache']) {
      const v = await scan({ raw: fixture('ham-plain.eml') }, env);
      expect(v.source).toBe(expected);
      expect(v.symbols).toEqual([
        { name: 'BAYES_TEST', score: 9 },
        { name: 'OTHER', score: 0.5 },
      ]);
      expect(v.score).toBe(9.5);
      expect(v.action).toBe('tag');
    }
  });
});

describe('auth beside a failing classifier', () => {
  it('a late auth failure after a classifier failure is not an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const env = {
        ...testEnv({ classifier: { classify: async () => Promise.reject(new FilterError('EOVERLOAD', 'queue full')) } }),
        auth: { check: () => new Promise<never>((_, reject) => setTimeout(() => reject(new Error('dns blew up')), 20)) },
      };
      const v = await scan({ raw: fixture('ham-plain.eml') }, env);
      expect(v).toMatchObject({ action: 'tempfail', errorCode: 'EOVERLOAD' });
      await new Promise((r) => setTimeout(r, 60));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
