// The classifier as a tinypool worker pool: the main thread only copies bytes and waits, workers
// parse and score. Every task has a deadline, the queue is bounded, and a stuck or crashed worker
// is replaced: a failure always comes back as a FilterError (scan() turns it into tempfail), never
// as a silent accept or a hang.
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import Tinypool from 'tinypool';
import { loadModel } from '../core/classify.ts';
import { type ErrorCode, ErrorCodes, FilterError } from '../core/errors.ts';
import type { Classifier, ClassifyRequest, ClassifyResult } from '../core/scan.ts';
import { type ModelPayload, modelPayload } from './shared-model.ts';
import type { WorkerData, WorkerReply, WorkerTask } from './worker.ts';

export interface ClassifierPoolOptions {
  /** Worker threads (config.pool.workers, ATLAS_WORKER_COUNT). */
  workers: number;
  /** Tasks allowed to wait for a worker; one more is refused with EOVERLOAD. */
  queueLength: number;
  /** Longest a task may take, queue wait included; a request's own deadline may cut it shorter. */
  taskTimeoutMs: number;
  /** The model file's bytes; null classifies with content rules only. */
  modelBytes: Uint8Array | null;
  /** The clock ClassifyRequest.deadline is read on (the pipeline uses performance.now). */
  now?: () => number;
  /**
   * The worker module. Only tests set it, to wrap the real worker with faults (hangs, crashes) that
   * no message can trigger in production.
   */
  workerFile?: string;
  /** Reports events that have no caller to reject (a worker failing while idle). */
  log?: (msg: string) => void;
}

export interface PoolStats {
  workers: number;
  queued: number;
  running: number;
  completed: number;
  timeouts: number;
  crashes: number;
  overloads: number;
  /** Bumped by every reloadModel(). */
  modelVersion: number;
}

/** One set of workers sharing one model; a reload starts a new one and drains the old. */
interface Generation {
  pool: Tinypool;
  /** Tasks sent to this generation and not yet answered. */
  inflight: Set<Promise<unknown>>;
}

/** The compiled worker beside this file; under vitest (src/*.ts) the built one in dist/. */
export function defaultWorkerFile(): string {
  const here = fileURLToPath(import.meta.url);
  const file = here.endsWith('.ts') ? fileURLToPath(new URL('../../dist/pool/worker.js', import.meta.url)) : fileURLToPath(new URL('./worker.js', import.meta.url));
  if (!existsSync(file)) throw new FilterError('EWORKER', `the classifier worker ${file} is missing: run "npm run build" first`);
  return file;
}

function positiveInt(name: string, n: number): void {
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`ClassifierPool option "${name}" must be a positive whole number, got ${n}`);
}

function payloadFor(bytes: Uint8Array | null): ModelPayload {
  return bytes ? modelPayload(loadModel(bytes), () => bytes) : { kind: 'none' };
}

export class ClassifierPool implements Classifier {
  readonly workers: number;
  private readonly queueLength: number;
  private readonly taskTimeoutMs: number;
  private readonly now: () => number;
  private readonly workerFile: string;
  private readonly log: (msg: string) => void;
  private current: Generation;
  private readonly draining = new Set<Generation>();
  private readonly watched = new WeakSet<object>();
  private pending = 0;
  private closed = false;
  private counts = { completed: 0, timeouts: 0, crashes: 0, overloads: 0 };
  private modelVersion = 0;

  /** Loads the model in this thread first, so a bad file fails here with EMODEL, not in a worker. */
  constructor(options: ClassifierPoolOptions) {
    positiveInt('workers', options.workers);
    positiveInt('queueLength', options.queueLength);
    positiveInt('taskTimeoutMs', options.taskTimeoutMs);
    this.workers = options.workers;
    this.queueLength = options.queueLength;
    this.taskTimeoutMs = options.taskTimeoutMs;
    this.now = options.now ?? (() => performance.now());
    this.workerFile = options.workerFile ?? defaultWorkerFile();
    this.log = options.log ?? ((m) => process.stderr.write(m + '\n'));
    this.current = this.spawn(payloadFor(options.modelBytes));
  }

  private spawn(model: ModelPayload): Generation {
    const workerData: WorkerData = { model };
    const pool = new Tinypool({
      filename: this.workerFile,
      // A fixed size: a terminated worker is replaced at once, and no start-up cost lands on a message.
      minThreads: this.workers,
      maxThreads: this.workers,
      concurrentTasksPerWorker: 1,
      // The bound is ours (pending count below), so tinypool's own queue never refuses first.
      maxQueue: Infinity,
      workerData,
    });
    // Without a listener, a worker dying with no task would throw on the emitter and end the process.
    pool.on('error', (err: Error) => {
      this.counts.crashes++;
      this.log(`classifier worker failed while idle: ${err.message}`);
    });
    return { pool, inflight: new Set() };
  }

  classify(req: ClassifyRequest): Promise<ClassifyResult> {
    if (this.closed) return Promise.reject(new FilterError('EWORKER', 'the classifier pool is closed'));
    if (this.pending >= this.workers + this.queueLength) {
      this.counts.overloads++;
      return Promise.reject(
        new FilterError('EOVERLOAD', `the classifier is overloaded: ${this.queueLength} messages already wait for a worker`, {
          limit: this.queueLength,
        }),
      );
    }
    const budget = Math.min(this.taskTimeoutMs, req.deadline - this.now());
    if (!(budget > 0)) {
      this.counts.timeouts++;
      return Promise.reject(new FilterError('ETIMEOUT', 'the scan deadline passed before classification could start'));
    }
    // The caller (an SMTP session, a milter) still needs its bytes: transfer a copy, never its buffer.
    const raw = new Uint8Array(req.raw.byteLength);
    raw.set(req.raw);
    const task: WorkerTask = { raw };
    const abort = new AbortController();
    // Aborting a running task makes tinypool terminate that worker and start a fresh one.
    const timer = setTimeout(() => abort.abort(), budget);
    const gen = this.current;
    this.watchExits(gen);
    this.pending++;
    const run = gen.pool.run(task, { transferList: [raw.buffer], signal: abort.signal }) as Promise<WorkerReply>;
    const finish = () => {
      clearTimeout(timer);
      this.pending--;
      gen.inflight.delete(result);
    };
    const result: Promise<ClassifyResult> = run.then(
      (reply) => {
        finish();
        if (reply.ok) {
          this.counts.completed++;
          return reply.result;
        }
        const code = (reply.code in ErrorCodes ? reply.code : 'EINTERNAL') as ErrorCode;
        throw new FilterError(code, reply.message);
      },
      (err: unknown) => {
        finish();
        throw this.failure(err, abort.signal.aborted, budget);
      },
    );
    gen.inflight.add(result);
    return result;
  }

  /**
   * tinypool notices a worker that throws, not one that exits (process.exit in a dependency): its
   * task would wait for the deadline. An exit of a worker tinypool still counts as live is reported
   * to tinypool as an error, which fails the task at once and starts a replacement.
   */
  private watchExits(gen: Generation): void {
    for (const thread of gen.pool.threads) {
      if (this.watched.has(thread)) continue;
      this.watched.add(thread);
      thread.on('exit', (code: number) => {
        if (gen.pool.threads.includes(thread)) thread.emit('error', new Error(`the worker exited with code ${code}`));
      });
    }
  }

  private failure(err: unknown, timedOut: boolean, budget: number): FilterError {
    if (timedOut) {
      this.counts.timeouts++;
      return new FilterError('ETIMEOUT', `classification took longer than ${Math.round(budget)} ms; the worker was replaced`, {
        timeoutMs: Math.round(budget),
      });
    }
    const message = err instanceof Error ? err.message : String(err);
    if (this.closed) return new FilterError('EWORKER', 'the classifier pool closed before the message was classified', {}, { cause: err });
    this.counts.crashes++;
    return new FilterError('EWORKER', `a classifier worker crashed (${message}); it was replaced`, {}, { cause: err });
  }

  /**
   * Swaps the model: new workers start with it, tasks already sent finish on the old workers, which
   * are then stopped. Bad bytes throw EMODEL and leave the current model in place.
   */
  async reloadModel(modelBytes: Uint8Array | null): Promise<void> {
    if (this.closed) throw new FilterError('EWORKER', 'the classifier pool is closed');
    const next = this.spawn(payloadFor(modelBytes));
    const old = this.current;
    this.current = next;
    this.modelVersion++;
    await this.retire(old);
  }

  private async retire(gen: Generation): Promise<void> {
    this.draining.add(gen);
    try {
      await Promise.allSettled(gen.inflight);
      await gen.pool.destroy();
    } finally {
      this.draining.delete(gen);
    }
  }

  stats(): PoolStats {
    const queued = this.current.pool.queueSize;
    return {
      workers: this.current.pool.threads.length,
      queued,
      running: Math.max(0, this.pending - queued),
      ...this.counts,
      modelVersion: this.modelVersion,
    };
  }

  /** Stops every worker; tasks still waiting or running reject with EWORKER, later calls too. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([this.current.pool.destroy(), ...[...this.draining].map((g) => g.pool.destroy())]);
  }
}
