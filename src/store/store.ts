// The verdict log as the rest of the filter sees it. record() only appends to an in-memory queue; the
// queue goes to the writer thread in batches (at batchSize rows or after flushMs), one transaction
// each, one transaction in flight at a time so rows land in order. Group commit: batches that queue up
// while a transaction is being written go together in the next one (up to groupRows), so under load
// transactions grow and the index pages every commit rewrites are shared by more rows. When the file
// cannot be written the batch is kept and retried with backoff while new verdicts queue up to
// queueLength; past that they are counted as dropped. Mail keeps flowing either way: nothing here can throw into a door.
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { FilterError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import type { Verdict } from '../core/verdict.ts';
import type { VerdictFilters, VerdictPage } from './query.ts';
import { type Row, toRow } from './row.ts';
import type { WireError, WriterCommand, WriterData, WriterReply, WriterRequest } from './writer-worker.ts';

export interface StoreOptions {
  file: string;
  /** Rows per transaction (config.log.batchSize, ATLAS_BULK_BATCH_SIZE). */
  batchSize: number;
  /** Longest a verdict waits in the queue before its batch is written, ms. */
  flushMs: number;
  /** Verdicts held in memory (queued or being retried) before new ones are dropped. */
  queueLength: number;
  log: (msg: string) => void;
  migrationsDir?: string;
  /** Delete verdicts older than this many days, hourly (config.log.retainDays). */
  retainDays?: number | null;
  busyTimeoutMs?: number;
  /** How long close() keeps retrying an unwritable log before giving up (default limits.storeCloseTimeoutMs). */
  closeTimeoutMs?: number;
  /** Most rows one group-committed transaction takes (default the larger of batchSize and limits.storeGroupCommitRows). */
  groupRows?: number;
}

export interface StoreStats {
  /** Verdicts in memory: waiting for their batch, or in a batch being written or retried. */
  queued: number;
  written: number;
  /** Transactions committed; fewer than batches when group commit joined batches that queued up. */
  transactions: number;
  dropped: number;
  failedBatches: number;
  lastError: string | null;
  /** False from a failed write until the next write succeeds. */
  writable: boolean;
}

export interface VerdictStore {
  readonly file: string;
  /** Queues a verdict for the log. Never blocks, never throws. */
  record(verdict: Verdict): void;
  /** Reads one page of history (in the writer thread, so the event loop does not wait on disk). */
  query(filters: VerdictFilters): Promise<VerdictPage>;
  /** Resolves once every verdict recorded before the call is written; rejects with ESTORE if a write fails. */
  flush(): Promise<void>;
  /** Writes everything still queued (retrying up to limits.storeCloseTimeoutMs), then stops the thread. */
  close(): Promise<void>;
  stats(): StoreStats;
}

/** Compiled code runs the worker directly; under vitest (src/*.ts) the compiled copy in dist/ does. */
function workerFile(): string {
  const here = import.meta.url;
  const url = here.endsWith('.ts') ? new URL('../../dist/store/writer-worker.js', here) : new URL('./writer-worker.js', here);
  const file = fileURLToPath(url);
  if (!existsSync(file)) throw new FilterError('EINTERNAL', `the verdict log writer ${file} is missing; run "npm run build"`, { file });
  return file;
}

function fromWire(e: WireError): FilterError {
  return new FilterError(e.code as FilterError['code'], e.message, e.details);
}

/** Rate-limits a repeated log line: the first at once, then a summary at most every intervalMs. */
function rateLimited(log: (m: string) => void, intervalMs: number) {
  let last = -Infinity;
  let suppressed = 0;
  return (msg: string, now: number) => {
    if (now - last < intervalMs) {
      suppressed++;
      return;
    }
    log(suppressed ? `${msg} (${suppressed} similar messages suppressed)` : msg);
    suppressed = 0;
    last = now;
  };
}

const LOG_EVERY_MS = 10_000;

export async function openStore(options: StoreOptions): Promise<VerdictStore> {
  const { file, batchSize, flushMs, queueLength, log } = options;
  const groupRows = options.groupRows ?? Math.max(batchSize, limits.storeGroupCommitRows);
  for (const [name, n] of [['batchSize', batchSize], ['flushMs', flushMs], ['queueLength', queueLength], ['groupRows', groupRows]] as const) {
    if (!Number.isInteger(n) || n <= 0) throw new RangeError(`openStore: ${name} must be a positive whole number, got ${n}`);
  }
  // Scheduling runs on the monotonic clock; verdict times are wall-clock.
  const now = () => performance.now();
  const data: WriterData = {
    file,
    migrationsDir: options.migrationsDir,
    busyTimeoutMs: options.busyTimeoutMs,
    retainDays: options.retainDays ?? null,
  };
  const worker = new Worker(workerFile(), { workerData: data });
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));

  let workerError: FilterError | null = null;
  let stopped = false;

  // Requests to the writer thread, answered in order.
  let nextId = 1;
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: FilterError) => void }>();
  const request = <T>(req: WriterCommand): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (stopped) {
        reject(workerError ?? new FilterError('ESTORE', `verdict log ${file} is closed`, { file }));
        return;
      }
      const id = nextId++;
      waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      worker.postMessage({ ...req, id } satisfies WriterRequest);
    });

  let ready: (r: { applied: string[]; error: FilterError | null }) => void = () => {};
  const started = new Promise<{ applied: string[]; error: FilterError | null }>((r) => (ready = r));
  worker.on('message', (msg: WriterReply) => {
    if ('ready' in msg) return ready({ applied: msg.applied, error: msg.error && fromWire(msg.error) });
    const w = waiting.get(msg.id);
    if (!w) return;
    waiting.delete(msg.id);
    if (msg.ok) w.resolve(msg.value);
    else w.reject(fromWire(msg.error));
  });
  worker.on('error', (e) => {
    workerError = new FilterError('ESTORE', `verdict log ${file}: the writer thread failed: ${e.message}`, { file }, { cause: e });
    stats.writable = false;
    stats.lastError = workerError.message;
    log(`ESTORE: ${workerError.message}`);
    ready({ applied: [], error: workerError });
  });
  worker.on('exit', () => {
    stopped = true;
    const err = workerError ?? new FilterError('ESTORE', `verdict log ${file}: the writer thread has stopped`, { file });
    for (const w of waiting.values()) w.reject(err);
    waiting.clear();
    // Nothing will be written any more: whoever waits for a flush hears it now.
    settleFlushers(err);
  });

  // The queue: full batches in order, the last one filling up. `held` is the group of batches being
  // written (one transaction) or waiting to be retried; it stays first in line until it is written.
  const batches: { rows: Row[]; since: number }[] = [];
  let queuedRows = 0;
  let held: Row[][] | null = null;
  // After SQLite refused a group as such (badBatch), its batches go one per transaction again, so only
  // the batch that holds the bad row is given up.
  let alone = 0;
  let writing = false;
  let timer: NodeJS.Timeout | null = null;
  let retryDelay = 0;
  let retryAt = 0;
  let closed = false;
  // Sequence numbers: verdict n is done once `done >= n` (written, or given up on).
  let accepted = 0;
  let done = 0;
  const flushers: { upTo: number; resolve: () => void; reject: (e: FilterError) => void }[] = [];
  const workerGone = () => workerError !== null || stopped;
  const stats: StoreStats = { queued: 0, written: 0, transactions: 0, dropped: 0, failedBatches: 0, lastError: null, writable: true };
  const logDrop = rateLimited(log, LOG_EVERY_MS);
  const logFailure = rateLimited(log, LOG_EVERY_MS);

  const settleFlushers = (error: FilterError | null) => {
    for (let i = flushers.length - 1; i >= 0; i--) {
      const f = flushers[i] as (typeof flushers)[number];
      if (done >= f.upTo) f.resolve();
      else if (error) f.reject(error);
      else continue;
      flushers.splice(i, 1);
    }
  };

  const schedule = (delay: number) => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      pump();
    }, Math.max(0, delay));
    // A pending flush timer must not keep a finished one-shot command alive; serve has its doors.
    timer.unref();
  };

  /** Sends the next batch when one is due: full, old enough, flushed, or being retried. */
  const pump = () => {
    if (writing || workerGone()) return;
    const t = now();
    if (!held) {
      const first = batches[0];
      if (!first) return;
      const due = first.rows.length >= batchSize || flushers.length > 0 || closed || t - first.since >= flushMs;
      if (!due) return schedule(first.since + flushMs - t);
      held = [first.rows];
      batches.shift();
      let rows = first.rows.length;
      if (alone > 0) alone--;
      else {
        // Whatever else already waits joins this transaction: when it starts is still decided above.
        for (let next = batches[0]; next && rows + next.rows.length <= groupRows; next = batches[0]) {
          held.push(next.rows);
          rows += next.rows.length;
          batches.shift();
        }
      }
    } else if (t < retryAt && flushers.length === 0) {
      return schedule(retryAt - t);
    }
    const group = held;
    const batch = group.length === 1 ? (group[0] as Row[]) : group.flat();
    writing = true;
    request<number>({ op: 'write', rows: batch }).then(
      () => {
        writing = false;
        held = null;
        queuedRows -= batch.length;
        done += batch.length;
        stats.written += batch.length;
        stats.transactions++;
        if (!stats.writable) log(`verdict log ${file} is writable again; the held verdicts are being written`);
        stats.writable = true;
        retryDelay = 0;
        settleFlushers(null);
        pump();
      },
      (e: FilterError) => {
        writing = false;
        stats.failedBatches++;
        stats.lastError = e.message;
        if (e.details.badBatch && group.length > 1) {
          // Nothing of the group was written (one transaction): put its batches back, to go one by one.
          held = null;
          batches.unshift(...group.map((rows) => ({ rows, since: -Infinity })));
          alone = group.length;
          logFailure(`ESTORE: a group of ${batch.length} verdicts was refused; writing its batches one by one: ${e.message}`, now());
        } else if (e.details.badBatch) {
          held = null;
          queuedRows -= batch.length;
          done += batch.length;
          stats.dropped += batch.length;
          logFailure(`ESTORE: dropped a batch of ${batch.length} verdicts that cannot be written: ${e.message}`, now());
        } else {
          stats.writable = false;
          retryDelay = Math.min(retryDelay ? retryDelay * 2 : flushMs, limits.storeRetryMaxMs);
          retryAt = now() + retryDelay;
          logFailure(`ESTORE: ${e.message}; ${queuedRows} verdicts held, retrying`, now());
        }
        settleFlushers(e);
        pump();
      },
    );
  };

  const record = (verdict: Verdict) => {
    try {
      if (closed || queuedRows >= queueLength) {
        stats.dropped++;
        logDrop(
          closed
            ? `verdict log ${file} is closed; a verdict was not logged`
            : `verdict log queue full (${queueLength}): verdicts are being dropped (${stats.dropped} so far)`,
          now(),
        );
        return;
      }
      let last = batches[batches.length - 1];
      if (!last || last.rows.length >= batchSize) batches.push((last = { rows: [], since: now() }));
      last.rows.push(toRow(verdict, Date.now()));
      queuedRows++;
      accepted++;
      if (last.rows.length >= batchSize || !timer) pump();
    } catch (e) {
      stats.dropped++;
      logDrop(`verdict log: a verdict could not be queued: ${(e as Error).message}`, now());
    }
  };

  const flush = (): Promise<void> => {
    if (done >= accepted) return Promise.resolve();
    if (stopped) return Promise.reject(workerError ?? new FilterError('ESTORE', `verdict log ${file} is closed`, { file }));
    const p = new Promise<void>((resolve, reject) => flushers.push({ upTo: accepted, resolve, reject }));
    pump();
    return p;
  };

  const close = async (): Promise<void> => {
    if (closed) return exited;
    closed = true;
    const deadline = now() + (options.closeTimeoutMs ?? limits.storeCloseTimeoutMs);
    for (;;) {
      try {
        await flush();
        break;
      } catch (e) {
        if (workerGone() || now() >= deadline) {
          log(`ESTORE: closing the verdict log with ${queuedRows} verdicts unwritten: ${(e as Error).message}`);
          break;
        }
        await new Promise((r) => setTimeout(r, Math.min(retryDelay || flushMs, Math.max(0, deadline - now()))));
      }
    }
    if (timer) clearTimeout(timer);
    if (!workerGone()) await request({ op: 'close' }).catch(() => {});
    await exited;
  };

  const first = await started;
  if (first.error) {
    stats.writable = false;
    stats.lastError = first.error.message;
    log(`ESTORE: ${first.error.message}; verdicts are held in memory and written when the log can be opened`);
  } else if (first.applied.length) {
    log(`verdict log ${file}: applied migrations ${first.applied.join(', ')}`);
  }

  return {
    file,
    record,
    query: (filters) => request<VerdictPage>({ op: 'query', filters }),
    flush,
    close,
    stats: () => ({ ...stats, queued: queuedRows }),
  };
}
