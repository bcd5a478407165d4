// Recent history for the /performance page: the process keeps the last few minutes as fixed windows
// (2 s by default) — messages per door, verdict mix, latency percentiles per stage, cache hit rates,
// queue depths, memory. Prometheus keeps the long history; this is what a person watching the page
// needs without running one. Observing a verdict is a few counter bumps and one array push per stage.
import { CACHE_LEVELS, type CacheLevel, type Caches } from '../core/cache.ts';
import { ACTIONS, type Action, type Source, SOURCES, STAGES, type Verdict } from '../core/verdict.ts';

export interface SeriesSources {
  caches?: Caches;
  poolQueueDepth?: () => number;
  logQueueDepth?: () => number;
  memory?: () => { rss: number; heapUsed: number };
}

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
}

export interface Sample {
  /** Window end, ms since the epoch. */
  t: number;
  /** Messages answered per door in the window. */
  doors: Record<string, number>;
  actions: Record<Action, number>;
  sources: Record<Source, number>;
  /** Milliseconds, per stage and for the whole scan. */
  latency: Record<string, Percentiles>;
  cache: Record<CacheLevel, { hits: number; misses: number }>;
  poolQueue: number;
  logQueue: number;
  rssMb: number;
  heapMb: number;
}

export interface SeriesSnapshot {
  intervalMs: number;
  doors: string[];
  samples: Sample[];
  totals: { messages: number; actions: Record<Action, number>; sources: Record<Source, number>; since: number };
}

/** At most this many timings are kept per stage and window: enough for a stable p99 on a 2 s window. */
const RESERVOIR = 4000;

function zeros<K extends string>(keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
}

/**
 * Sorts in place. A typed array sorts numerically in native code: the tick sorts up to 4,000 timings
 * for each stage, and an Array with a comparator took ~1.5 ms per stage, a stall of the event loop of
 * ~9 ms every window under load (now ~1.5 ms per tick).
 */
function percentiles(values: Float64Array): Percentiles {
  if (values.length === 0) return { p50: 0, p95: 0, p99: 0 };
  values.sort();
  const at = (q: number) => values[Math.min(values.length - 1, Math.floor(q * values.length))] as number;
  const r = (n: number) => Math.round(n * 1000) / 1000;
  return { p50: r(at(0.5)), p95: r(at(0.95)), p99: r(at(0.99)) };
}

export class Series {
  readonly intervalMs: number;
  private readonly keep: number;
  private readonly now: () => number;
  private sources: SeriesSources = {};
  private samples: Sample[] = [];
  private doors = new Map<string, number>();
  private actions = zeros(ACTIONS);
  private sourcesCount = zeros(SOURCES);
  /** Per stage: a uniform sample of this window's timings (the first `n` of `kept`), and how many timings the window saw. */
  private timings = new Map<string, { kept: Float64Array; n: number; seen: number }>();
  private lastCache = new Map<CacheLevel, { hits: number; misses: number }>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly totals: SeriesSnapshot['totals'];

  constructor(o: { intervalMs?: number; keep?: number; now?: () => number } = {}) {
    this.intervalMs = o.intervalMs ?? 2000;
    this.keep = o.keep ?? 300;
    this.now = o.now ?? Date.now;
    this.totals = { messages: 0, actions: zeros(ACTIONS), sources: zeros(SOURCES), since: this.now() };
    for (const s of [...STAGES, 'total']) this.timings.set(s, { kept: new Float64Array(RESERVOIR), n: 0, seen: 0 });
  }

  bind(sources: SeriesSources): void {
    this.sources = { ...this.sources, ...sources };
  }

  /** One message answered by a door (http, smtp, milter, spamd, backfill). */
  countDoor(door: string): void {
    this.doors.set(door, (this.doors.get(door) ?? 0) + 1);
  }

  observe(v: Verdict): void {
    this.actions[v.action]++;
    this.sourcesCount[v.source]++;
    this.totals.messages++;
    this.totals.actions[v.action]++;
    this.totals.sources[v.source]++;
    // Reservoir sampling: past RESERVOIR, the n-th timing replaces a kept one with chance RESERVOIR/n, so
    // every timing of the window is equally likely to be kept (always replacing would favour the latest).
    const push = (stage: string, ms: number) => {
      const t = this.timings.get(stage);
      if (!t) return;
      t.seen++;
      if (t.n < RESERVOIR) t.kept[t.n++] = ms;
      else {
        const slot = Math.floor(Math.random() * t.seen);
        if (slot < RESERVOIR) t.kept[slot] = ms;
      }
    };
    push('total', v.elapsedMs);
    for (const [stage, ms] of Object.entries(v.stages ?? {})) if (ms !== undefined) push(stage, ms);
  }

  /** Closes the current window into a sample. */
  tick(): Sample {
    const latency: Record<string, Percentiles> = {};
    for (const [stage, t] of this.timings) {
      latency[stage] = percentiles(t.kept.subarray(0, t.n));
      t.n = 0;
      t.seen = 0;
    }
    const cache = {} as Sample['cache'];
    for (const level of CACHE_LEVELS) {
      const c = this.sources.caches?.[level];
      const prev = this.lastCache.get(level) ?? { hits: 0, misses: 0 };
      const cur = { hits: c?.hits ?? 0, misses: c?.misses ?? 0 };
      cache[level] = { hits: Math.max(0, cur.hits - prev.hits), misses: Math.max(0, cur.misses - prev.misses) };
      this.lastCache.set(level, cur);
    }
    const mem = this.sources.memory?.() ?? { rss: 0, heapUsed: 0 };
    const sample: Sample = {
      t: this.now(),
      doors: Object.fromEntries(this.doors),
      actions: this.actions,
      sources: this.sourcesCount,
      latency,
      cache,
      poolQueue: this.sources.poolQueueDepth?.() ?? 0,
      logQueue: this.sources.logQueueDepth?.() ?? 0,
      rssMb: Math.round((mem.rss / 1048576) * 10) / 10,
      heapMb: Math.round((mem.heapUsed / 1048576) * 10) / 10,
    };
    for (const d of this.doors.keys()) this.doors.set(d, 0);
    this.actions = zeros(ACTIONS);
    this.sourcesCount = zeros(SOURCES);
    this.samples.push(sample);
    if (this.samples.length > this.keep) this.samples.shift();
    return sample;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    (this.timer as { unref?: () => void }).unref?.();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  snapshot(): SeriesSnapshot {
    return {
      intervalMs: this.intervalMs,
      doors: [...this.doors.keys()],
      samples: this.samples,
      totals: { ...this.totals, actions: { ...this.totals.actions }, sources: { ...this.totals.sources } },
    };
  }
}
