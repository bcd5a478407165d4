// Loaded into each classifier worker before tinypool's own worker code (--import in the worker's
// execArgv). tinypool calls process.memoryUsage() after every task and keeps only heapUsed (for a
// recycling limit we do not set). The full call opens and reads /proc for the resident set size:
// ~10 µs per task on a quiet machine; under SMTP load it held 7% of a worker's profile samples, and
// strace timed its opens at ~150 µs. Here heapUsed comes from V8 directly and the other fields are
// read only when someone asks for them.
import v8 from 'node:v8';

const full = process.memoryUsage;

function lazyMemoryUsage(): NodeJS.MemoryUsage {
  let all: NodeJS.MemoryUsage | undefined;
  const read = (): NodeJS.MemoryUsage => (all ??= full.call(process));
  return {
    get rss() {
      return read().rss;
    },
    get heapTotal() {
      return read().heapTotal;
    },
    get heapUsed() {
      return all ? all.heapUsed : v8.getHeapStatistics().used_heap_size;
    },
    get external() {
      return read().external;
    },
    get arrayBuffers() {
      return read().arrayBuffers;
    },
  };
}

process.memoryUsage = Object.assign(lazyMemoryUsage, { rss: full.rss });
