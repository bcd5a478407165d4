// Per-verdict metrics counted in typed arrays and handed to prom-client only at scrape time.
// prom-client's own Counter and Histogram hash their label set on every inc/observe (about a
// microsecond each, six of them per verdict); here a label set is resolved once to a slot, and an
// observation is a bucket search and two additions. prom-client still renders and serves them.
import type { Metric, Registry } from 'prom-client';

type Sample = { metricName?: string; labels: Record<string, string | number>; value: number };

/** What prom-client's Registry reads from a metric: name, help, type, and get() with the samples. */
abstract class Collected {
  readonly aggregator = 'sum' as const;
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'histogram',
  ) {}

  protected abstract samples(): Sample[];

  async get() {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.samples() };
  }

  /** Adds the metric to a registry; prom-client's types list only its own classes, its registry takes any get(). */
  register(registry: Registry): this {
    registry.registerMetric(this as unknown as Metric);
    return this;
  }
}

/** A counter over one fixed label combination set, e.g. action × source. */
export class SlotCounter extends Collected {
  private readonly values: Float64Array;
  private readonly labels: Record<string, string>[] = [];

  constructor(name: string, help: string, combinations: Record<string, string>[]) {
    super(name, help, 'counter');
    this.labels = combinations;
    this.values = new Float64Array(combinations.length);
  }

  inc(slot: number, by = 1): void {
    this.values[slot] = (this.values[slot] as number) + by;
  }

  protected samples(): Sample[] {
    return this.labels.map((labels, i) => ({ labels, value: this.values[i] as number }));
  }
}

/** A histogram with one label whose values are known up front (stage, source). */
export class SlotHistogram extends Collected {
  private readonly counts: Float64Array[];
  private readonly sums: Float64Array;
  private readonly totals: Float64Array;

  constructor(
    name: string,
    help: string,
    private readonly label: string,
    private readonly values: readonly string[],
    private readonly bounds: readonly number[],
  ) {
    super(name, help, 'histogram');
    this.counts = values.map(() => new Float64Array(bounds.length));
    this.sums = new Float64Array(values.length);
    this.totals = new Float64Array(values.length);
  }

  observe(slot: number, x: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && x > (b[i] as number)) i++;
    const c = this.counts[slot] as Float64Array;
    if (i < b.length) c[i] = (c[i] as number) + 1;
    this.sums[slot] = (this.sums[slot] as number) + x;
    this.totals[slot] = (this.totals[slot] as number) + 1;
  }

  protected samples(): Sample[] {
    const out: Sample[] = [];
    this.values.forEach((v, s) => {
      let acc = 0;
      this.bounds.forEach((le, i) => {
        acc += (this.counts[s] as Float64Array)[i] as number;
        out.push({ metricName: `${this.name}_bucket`, labels: { le, [this.label]: v }, value: acc });
      });
      out.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf', [this.label]: v }, value: this.totals[s] as number });
      out.push({ metricName: `${this.name}_sum`, labels: { [this.label]: v }, value: this.sums[s] as number });
      out.push({ metricName: `${this.name}_count`, labels: { [this.label]: v }, value: this.totals[s] as number });
    });
    return out;
  }
}
