import { describe, expect, it } from 'vitest';
import { Series } from '../../src/metrics/series.ts';
import type { Verdict } from '../../src/core/verdict.ts';

const verdict = (elapsedMs: number): Verdict => ({
  action: 'accept',
  score: 0,
  required: 5,
  spam: false,
  symbols: [],
  source: 'classifier',
  elapsedMs,
  messageId: '',
});

describe('Series', () => {
  it('keeps a uniform sample of a busy window, not the latest timings', () => {
    // 40,000 timings, ten times what is kept: 36,000 slow ones, then a burst of 4,000 fast ones. A sample
    // of the whole window is about 10% fast, so its median is slow; one that favoured the latest would
    // be mostly fast (63% when every new timing replaces a kept one).
    const series = new Series();
    for (let i = 0; i < 36_000; i++) series.observe(verdict(1000));
    for (let i = 0; i < 4_000; i++) series.observe(verdict(1));
    const sample = series.tick();
    expect(sample.latency.total).toEqual({ p50: 1000, p95: 1000, p99: 1000 });
    expect(sample.actions.accept).toBe(40_000);
  });

  it('starts each window afresh', () => {
    const series = new Series();
    series.observe(verdict(7));
    expect(series.tick().latency.total?.p50).toBe(7);
    expect(series.tick().latency.total).toEqual({ p50: 0, p95: 0, p99: 0 });
  });
});
