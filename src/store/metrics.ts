// The verdict log's counters in /metrics, read from store.stats() at scrape time, so record() stays
// a queue push. Registered on the process registry the HTTP door exposes.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { StoreStats } from './store.ts';

const sources = new WeakMap<Registry, () => StoreStats>();

/** Adds the atlas_log_* metrics to `registry` (once), reading `stats` (the latest call wins). */
export function registerStoreMetrics(registry: Registry, stats: () => StoreStats): void {
  const first = !sources.has(registry);
  sources.set(registry, stats);
  if (!first) return;
  const read = () => (sources.get(registry) as () => StoreStats)();
  // Counters only move forward: each scrape adds what the store counted since the last one.
  const counter = (name: string, help: string, field: 'written' | 'dropped' | 'failedBatches') => {
    let seen = 0;
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const now = read()[field];
        if (now > seen) this.inc(now - seen);
        seen = Math.max(seen, now);
      },
    });
  };
  counter('atlas_log_written_total', 'Verdicts written to the verdict log.', 'written');
  counter('atlas_log_dropped_total', 'Verdicts not logged because the log queue was full (or the log was closed).', 'dropped');
  counter('atlas_log_failed_batches_total', 'Batch writes that failed (read-only, full, locked or corrupt file) and were retried.', 'failedBatches');
  new Gauge({
    name: 'atlas_log_writable',
    help: '1 while the verdict log accepts writes, 0 from a failed write until the next one succeeds.',
    registers: [registry],
    collect() {
      this.set(read().writable ? 1 : 0);
    },
  });
}
