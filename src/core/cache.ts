// The cache levels of the original system (verdict, domain, geo, auth), each an LRU with a TTL and
// its own hit/miss counters, so /metrics can show which level earns its memory.
import { LRUCache } from 'lru-cache';
import type { Config } from './config.ts';

export const CACHE_LEVELS = ['verdict', 'domain', 'geo', 'auth'] as const;
export type CacheLevel = (typeof CACHE_LEVELS)[number];

export class LevelCache<V extends {}> {
  readonly name: string;
  hits = 0;
  misses = 0;
  private readonly lru: LRUCache<string, V> | null;

  constructor(name: string, max: number, ttlMs: number, enabled = true) {
    this.name = name;
    // ttlAutopurge off: expired entries are dropped lazily on read, which keeps the hot path free of timers.
    this.lru = enabled ? new LRUCache<string, V>({ max, ttl: ttlMs, ttlAutopurge: false, updateAgeOnGet: false }) : null;
  }

  get(key: string): V | undefined {
    const v = this.lru?.get(key);
    if (v === undefined) this.misses++;
    else this.hits++;
    return v;
  }

  set(key: string, value: V): void {
    this.lru?.set(key, value);
  }

  get size(): number {
    return this.lru?.size ?? 0;
  }

  clear(): void {
    this.lru?.clear();
  }
}

export type Caches = { [L in CacheLevel]: LevelCache<{}> };

export function createCaches(cfg: Config['cache']): Caches {
  const make = (level: CacheLevel) =>
    new LevelCache<{}>(level, Math.max(1, Math.round(cfg[level].max * cfg.sizeMultiplier)), cfg[level].ttlMs, cfg.enabled);
  return { verdict: make('verdict'), domain: make('domain'), geo: make('geo'), auth: make('auth') };
}
