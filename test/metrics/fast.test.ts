// Typed-array counters and histograms rendered by a real prom-client registry.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { SlotCounter, SlotHistogram } from '../../src/metrics/fast.ts';

describe('SlotCounter and SlotHistogram', () => {
  it('render in the Prometheus text format with cumulative buckets, sum and count', async () => {
    const registry = new Registry();
    const c = new SlotCounter('t_verdicts_total', 'verdicts', [{ action: 'accept' }, { action: 'reject' }]).register(registry);
    const h = new SlotHistogram('t_seconds', 'latency', 'stage', ['look', 'early'], [0.001, 0.01]).register(registry);
    c.inc(0);
    c.inc(0);
    c.inc(1, 3);
    h.observe(0, 0.0005);
    h.observe(0, 0.005);
    h.observe(0, 0.5);
    h.observe(1, 0.001);
    const text = await registry.metrics();
    expect(text).toContain('# TYPE t_verdicts_total counter\nt_verdicts_total{action="accept"} 2\nt_verdicts_total{action="reject"} 3');
    expect(text).toContain(
      [
        '# TYPE t_seconds histogram',
        't_seconds_bucket{le="0.001",stage="look"} 1',
        't_seconds_bucket{le="0.01",stage="look"} 2',
        't_seconds_bucket{le="+Inf",stage="look"} 3',
        't_seconds_sum{stage="look"} 0.5055',
        't_seconds_count{stage="look"} 3',
        // A value on a bound falls in that bucket (le = less or equal).
        't_seconds_bucket{le="0.001",stage="early"} 1',
      ].join('\n'),
    );
  });

  it('refuses a second metric of the same name in one registry', () => {
    const registry = new Registry();
    new SlotCounter('t_dup_total', 'x', [{}]).register(registry);
    expect(() => new SlotCounter('t_dup_total', 'x', [{}]).register(registry)).toThrow(/already been registered/);
  });
});
