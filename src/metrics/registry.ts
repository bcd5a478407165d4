// The process's Prometheus registry: verdicts, per-stage scan latency, cache levels, early exits, queue
// depths and process memory. Registered once per process (prom-client refuses a second metric of the
// same name); doors and tests share it. Counting happens on the verdict listener and must stay cheap:
// the per-verdict series are typed-array slots (fast.ts), a few additions per verdict.
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { CACHE_LEVELS, type Caches } from '../core/cache.ts';
import { ACTIONS, type Action, type Source, SOURCES, type Stage, STAGES, type Verdict } from '../core/verdict.ts';
import { SlotCounter, SlotHistogram } from './fast.ts';

/** Where gauges read their values at scrape time; each is optional until its owner has started. */
export interface MetricSources {
  caches?: Caches;
  /** Classification tasks waiting for a worker. */
  poolQueueDepth?: () => number;
  /** Verdicts waiting for the log writer. */
  logQueueDepth?: () => number;
}

export interface Metrics {
  readonly registry: Registry;
  readonly contentType: string;
  /** The verdict listener (pipeline.onVerdict). */
  observe(v: Verdict): void;
  /** Points the scrape-time gauges at the current pipeline, pool and log. */
  bind(sources: MetricSources): void;
  render(): Promise<string>;
}

/** Seconds; from a cached verdict (tens of µs) to the classifier deadline (seconds). */
const LATENCY_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

function createMetrics(): Metrics {
  const registry = new Registry();
  let sources: MetricSources = {};
  collectDefaultMetrics({ register: registry });

  const verdicts = new SlotCounter(
    'atlas_verdicts_total',
    'Verdicts by action and by the stage that decided (early rule, cache, classifier).',
    ACTIONS.flatMap((action) => SOURCES.map((source) => ({ action, source }))),
  ).register(registry);
  const earlyExits = new SlotCounter('atlas_early_exits_total', 'Scans ended by an early rule before cache and classifier.', [{}]).register(registry);
  const failures = new Counter({
    name: 'atlas_scan_failures_total',
    help: 'Tempfail verdicts caused by a failure, by error code (EOVERLOAD, ETIMEOUT, EWORKER...).',
    labelNames: ['code'] as const,
    registers: [registry],
  });
  const stageSeconds = new SlotHistogram(
    'atlas_scan_stage_seconds',
    'Time spent in each scan stage (look, early, cache, classify, decide).',
    'stage',
    STAGES,
    LATENCY_BUCKETS,
  ).register(registry);
  const scanSeconds = new SlotHistogram('atlas_scan_seconds', 'Whole scan time by the stage that decided.', 'source', SOURCES, LATENCY_BUCKETS).register(
    registry,
  );
  new Counter({
    name: 'atlas_cache_requests_total',
    help: 'Cache lookups by level and result (hit, miss).',
    labelNames: ['level', 'result'] as const,
    registers: [registry],
    collect() {
      // The caches count for themselves; a scrape copies their totals instead of counting twice.
      this.reset();
      const caches = sources.caches;
      if (!caches) return;
      for (const level of CACHE_LEVELS) {
        this.inc({ level, result: 'hit' }, caches[level].hits);
        this.inc({ level, result: 'miss' }, caches[level].misses);
      }
    },
  });
  new Gauge({
    name: 'atlas_cache_entries',
    help: 'Entries held per cache level.',
    labelNames: ['level'] as const,
    registers: [registry],
    collect() {
      const caches = sources.caches;
      if (!caches) return;
      for (const level of CACHE_LEVELS) this.set({ level }, caches[level].size);
    },
  });
  new Gauge({
    name: 'atlas_pool_queue_depth',
    help: 'Classification tasks waiting for a worker.',
    registers: [registry],
    collect() {
      this.set(sources.poolQueueDepth?.() ?? 0);
    },
  });
  new Gauge({
    name: 'atlas_log_queue_depth',
    help: 'Verdicts waiting to be written to the verdict log.',
    registers: [registry],
    collect() {
      this.set(sources.logQueueDepth?.() ?? 0);
    },
  });

  const actionSlot = Object.fromEntries(ACTIONS.map((a, i) => [a, i * SOURCES.length])) as Record<Action, number>;
  const sourceSlot = Object.fromEntries(SOURCES.map((src, i) => [src, i])) as Record<Source, number>;

  return {
    registry,
    contentType: registry.contentType,
    observe(v) {
      const src = sourceSlot[v.source];
      verdicts.inc(actionSlot[v.action] + src);
      scanSeconds.observe(src, v.elapsedMs / 1000);
      if (v.source === 'early') earlyExits.inc(0);
      if (v.errorCode) failures.inc({ code: v.errorCode });
      const st = v.stages;
      if (st) {
        for (let i = 0; i < STAGES.length; i++) {
          const ms = st[STAGES[i] as Stage];
          if (ms !== undefined) stageSeconds.observe(i, ms / 1000);
        }
      }
    },
    bind(next) {
      sources = { ...sources, ...next };
    },
    render: () => registry.metrics(),
  };
}

let shared: Metrics | undefined;

/** The process's metrics, created on first use. */
export function processMetrics(): Metrics {
  shared ??= createMetrics();
  return shared;
}
