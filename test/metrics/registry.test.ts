// The Prometheus registry fed by real scans through a real pipeline.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createPipeline } from '../../src/cli/pipeline.ts';
import { classifyMessage } from '../../src/core/classify.ts';
import { defaultConfig } from '../../src/core/config.ts';
import { processMetrics } from '../../src/metrics/registry.ts';
import { fixture, root } from '../helpers/env.ts';

/** The value of one sample line, e.g. `atlas_verdicts_total{action="accept",source="cache"}`. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  if (!line) throw new Error(`no sample ${series} in:\n${text}`);
  return Number(line.slice(series.length + 1));
}

describe('processMetrics', () => {
  it('is one registry per process', () => {
    expect(processMetrics()).toBe(processMetrics());
  });

  it('counts verdicts by action and source, early exits, stage latencies and cache levels', async () => {
    const config = defaultConfig();
    config.rulesDir = path.join(root, 'rules');
    // In-process classification, as on the edge: what it returns is cached, so repeats are cache hits.
    const pipeline = createPipeline(config, { classifier: { classify: async (req) => classifyMessage(req.raw, null) }, log: () => {} });
    const metrics = processMetrics();
    metrics.bind({ caches: pipeline.env.caches, poolQueueDepth: () => 7, logQueueDepth: () => 3 });
    pipeline.onVerdict((v) => metrics.observe(v));
    const before = await metrics.render();
    const count = (text: string, s: string) => (text.includes(s + ' ') ? sample(text, s) : 0);
    const accepted = 'atlas_verdicts_total{action="accept",source="classifier"}';
    const cached = 'atlas_verdicts_total{action="accept",source="cache"}';
    const rejectedEarly = 'atlas_verdicts_total{action="reject",source="early"}';

    const ham = fixture('ham-plain.eml');
    await pipeline.scan({ raw: ham });
    await pipeline.scan({ raw: ham });
    await pipeline.scan({ raw: ham });
    await pipeline.scan({ raw: fixture('rules/SCAM_SEXTORTION.eml') });
    const after = await metrics.render();

    expect(count(after, accepted) - count(before, accepted)).toBe(1);
    expect(count(after, cached) - count(before, cached)).toBe(2);
    expect(count(after, rejectedEarly) - count(before, rejectedEarly)).toBe(1);
    expect(count(after, 'atlas_early_exits_total') - count(before, 'atlas_early_exits_total')).toBe(1);
    // Every scan passes the quick look.
    const looks = 'atlas_scan_stage_seconds_count{stage="look"}';
    expect(count(after, looks) - count(before, looks)).toBe(4);
    expect(sample(after, 'atlas_scan_stage_seconds_bucket{le="+Inf",stage="look"}')).toBe(sample(after, looks));
    expect(sample(after, 'atlas_cache_requests_total{level="verdict",result="hit"}')).toBe(pipeline.env.caches.verdict.hits);
    expect(sample(after, 'atlas_cache_requests_total{level="verdict",result="miss"}')).toBe(pipeline.env.caches.verdict.misses);
    expect(sample(after, 'atlas_cache_entries{level="verdict"}')).toBe(pipeline.env.caches.verdict.size);
    expect(sample(after, 'atlas_pool_queue_depth')).toBe(7);
    expect(sample(after, 'atlas_log_queue_depth')).toBe(3);
    expect(sample(after, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(metrics.contentType).toMatch(/^text\/plain/);
  });

  it('counts tempfails by their error code', async () => {
    const metrics = processMetrics();
    const series = 'atlas_scan_failures_total{code="EOVERLOAD"}';
    const before = await metrics.render();
    const base = before.includes(series) ? sample(before, series) : 0;
    metrics.observe({
      action: 'tempfail',
      score: 0,
      required: 5,
      spam: false,
      symbols: [],
      source: 'classifier',
      elapsedMs: 0.2,
      messageId: '<x@y>',
      errorCode: 'EOVERLOAD',
    });
    expect(sample(await metrics.render(), series)).toBe(base + 1);
  });
});
