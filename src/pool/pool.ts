// The classifier as a tinypool worker pool: the main thread only copies bytes and waits, workers
// parse and score. Every message has a deadline, the queue is bounded, and a stuck or crashed worker
// is replaced: a failure always comes back as a FilterError (scan() turns it into tempfail), never
// as a silent accept or a hang.
//
// Throughput: each tinypool task costs two thread messages, two wake-ups and a memory reading in the
// worker (tinypool reads /proc after every task): ~55 µs of main-thread and ~70 µs of worker CPU on
// this VM whatever the task carries (bench/README.md, pool). So messages that
// arrive in one event-loop turn go in one task, a worker busy with one task gets a second only when it
// carries a batch, and message buffers travel back with the answers to be reused rather than
// allocated for every message. The workers also match the early rules' body patterns on a cache miss
// (ClassifyRequest.body), which takes the body scan off the main thread. tinypool's own abort works only with
// one task per worker, so deadlines are kept here, with the shared board (board.ts) telling whether
// a late message is running (terminate that thread) or not started (the worker skips it).
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Tinypool from 'tinypool';
import { loadModel } from '../core/classify.ts';
import { type ErrorCode, ErrorCodes, FilterError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import type { Classifier, ClassifyRequest, ClassifyResult } from '../core/scan.ts';
import { type Board, cancelTask, createBoard, MAX_TASK_ID, resetTask, runningThread } from './board.ts';
import { type ModelPayload, modelPayload } from './shared-model.ts';
import type { ItemReply, WorkerData, WorkerItem, WorkerReply, WorkerTask } from './worker.ts';

export interface ClassifierPoolOptions {
  /** Worker threads (config.pool.workers, ATLAS_WORKER_COUNT). */
  workers: number;
  /** Messages allowed to wait for a worker; one more is refused with EOVERLOAD. */
  queueLength: number;
  /** Longest a message may take, queue wait included; a request's own deadline may cut it shorter. */
  taskTimeoutMs: number;
  /** Nice steps below the main thread the workers run at (Linux only; default limits.workerNice, 0 = same). */
  workerNice?: number;
  /** The model file's bytes; null classifies with content rules only. */
  modelBytes: Uint8Array | null;
  /** The clock ClassifyRequest.deadline is read on (the pipeline uses performance.now). */
  now?: () => number;
  /**
   * The worker module. Only tests set it, to wrap the real worker with faults (hangs, crashes) that
   * no message can trigger in production.
   */
  workerFile?: string;
  /** Reports events that have no caller to reject (a worker failing while idle). Default: stderr. */
  log?: (msg: string) => void;
}

export interface PoolStats {
  workers: number;
  /** Messages waiting (in the queue, or second in line inside a worker). */
  queued: number;
  /** Messages being classified: at most one per worker. */
  running: number;
  completed: number;
  timeouts: number;
  crashes: number;
  overloads: number;
  /** Bumped by every reloadModel(). */
  modelVersion: number;
}

/** Tasks a worker holds at once: the one it runs and the next. */
const TASKS_PER_WORKER = 2;
/**
 * Most messages in one task. Measured with an echo worker on the 2-core machine, tinypool's CPU per
 * message falls from ~120 µs alone to ~40 µs in fours and ~25 µs in eights; eight ~300 µs parses
 * keep the latency a batch adds to a few ms, and batches only form when messages already wait.
 */
const MAX_BATCH = 8;

/** Message buffers larger than this are not kept for reuse: rare, and each would pin its memory. */
const MAX_RECYCLED_BYTES = 256 << 10;
/**
 * Most bytes of message buffers kept for reuse. The messages in flight at once (a few batches of 8)
 * need about 1 MB of typical mail; the rest is headroom. Whatever is kept adds to RSS for good.
 */
const SPARE_BUFFER_BYTES = 4 << 20;

/** The smallest power of two ≥ n, and at least 4 KiB (message buffers are reused by these sizes). */
function sizeClass(n: number): number {
  return n <= 4096 ? 4096 : 2 ** Math.ceil(Math.log2(n));
}

/** Messages it takes to send a worker a second task while it still runs one (see dispatch). */
const MIN_SECOND_BATCH = 4;

/** One set of workers sharing one model; a reload starts a new one and drains the old. */
interface Generation {
  pool: Tinypool;
  board: Board;
  /** Tasks sent to this generation and not yet answered. */
  tasks: Set<Promise<void>>;
}

/** One classify() call; it may be sent twice when the worker holding it was stopped for another. */
interface Job {
  raw: Uint8Array;
  body: ClassifyRequest['body'];
  budget: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** The attempt in flight: its message id and generation (undefined while in our queue). */
  taskId: number;
  gen: Generation | undefined;
  resent: boolean;
  settled: boolean;
  resolve: (r: ClassifyResult) => void;
  reject: (e: FilterError) => void;
}

/** Sent to tinypool as the "error" of a worker we terminate because its task ran out of time. */
class WorkerStopped extends Error {}

/** A compiled module beside this file; under vitest (src/*.ts) the built one in dist/. */
function builtFile(name: string): string {
  const here = fileURLToPath(import.meta.url);
  return here.endsWith('.ts') ? fileURLToPath(new URL(`../../dist/pool/${name}`, import.meta.url)) : fileURLToPath(new URL(`./${name}`, import.meta.url));
}

/** The compiled worker beside this file; under vitest (src/*.ts) the built one in dist/. */
export function defaultWorkerFile(): string {
  const file = builtFile('worker.js');
  if (!existsSync(file)) throw new FilterError('EWORKER', `the classifier worker ${file} is missing: run "npm run build" first`);
  return file;
}

/**
 * The workers' execArgv: load preload.ts first. Given execArgv, a worker no longer inherits the parent's
 * node flags, and Node refuses many of them in a worker (--expose-gc, --perf-basic-prof), so the preload
 * is added only when the process runs with none (`npm start`, the systemd unit); under flags (a profiler,
 * a test runner, `node -e`) the workers inherit them as before and go without it.
 */
function workerExecArgv(): string[] | undefined {
  const file = builtFile('preload.js');
  return process.execArgv.length === 0 && existsSync(file) ? ['--import', pathToFileURL(file).href] : undefined;
}

function positiveInt(name: string, n: number): void {
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`ClassifierPool option "${name}" must be a positive whole number, got ${n}`);
}

function payloadFor(bytes: Uint8Array | null): ModelPayload {
  return bytes ? modelPayload(loadModel(bytes), () => bytes) : { kind: 'none' };
}

export class ClassifierPool implements Classifier {
  /** Workers match the body rules beside the model (scan.ts sends them on a cache miss). */
  readonly matchesBody = true;
  readonly workers: number;
  private readonly queueLength: number;
  private readonly taskTimeoutMs: number;
  private readonly now: () => number;
  private readonly workerFile: string;
  private readonly workerNice: number;
  private readonly log: (msg: string) => void;
  private current: Generation;
  private readonly draining = new Set<Generation>();
  /** Messages not yet sent to a worker, oldest first. */
  private queue: Job[] = [];
  private readonly watched = new WeakSet<object>();
  /** Worker failures already counted: one crash fails every task its worker held. */
  private readonly seenFailures = new WeakSet<object>();
  private pending = 0;
  private lastTaskId = 0;
  private closed = false;
  private dispatchScheduled = false;
  /** Message buffers back from workers, by size class, for the next copies (bufferFor). */
  private readonly spare = new Map<number, ArrayBuffer[]>();
  private spareBytes = 0;
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
    this.workerNice = options.workerNice ?? limits.workerNice;
    if (!Number.isInteger(this.workerNice) || this.workerNice < 0 || this.workerNice > 19) {
      throw new RangeError(`ClassifierPool option "workerNice" must be a whole number from 0 to 19, got ${this.workerNice}`);
    }
    this.log = options.log ?? ((m) => process.stderr.write(m + '\n'));
    this.current = this.spawn(payloadFor(options.modelBytes));
  }

  private spawn(model: ModelPayload): Generation {
    const board = createBoard(this.workers);
    const workerData: WorkerData = { model, board, nice: this.workerNice };
    const pool = new Tinypool({
      filename: this.workerFile,
      // A fixed size: a terminated worker is replaced at once, and no start-up cost lands on a message.
      minThreads: this.workers,
      maxThreads: this.workers,
      concurrentTasksPerWorker: TASKS_PER_WORKER,
      // The bound is ours (pending count), so tinypool's own queue never refuses first.
      maxQueue: Infinity,
      workerData,
      resourceLimits: { maxYoungGenerationSizeMb: limits.workerYoungGenerationMb },
      execArgv: workerExecArgv(),
    });
    // Worker failures no task hears of (a worker dying idle, a reply from a worker already removed).
    // Without a listener they would throw on the emitter and end the process.
    pool.on('error', (err: Error) => {
      this.counts.crashes++;
      this.log(`classifier pool: ${err.message}`);
    });
    return { pool, board, tasks: new Set() };
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
    this.pending++;
    return new Promise<ClassifyResult>((resolve, reject) => {
      const job: Job = { raw: req.raw, body: req.body, budget, timer: undefined, taskId: 0, gen: undefined, resent: false, settled: false, resolve, reject };
      job.timer = setTimeout(() => this.expire(job), budget);
      this.queue.push(job);
      this.dispatchSoon();
    });
  }

  /**
   * Dispatches once the event loop has run the other ready events: messages that arrive in the same
   * turn (several connections' data read in one poll) then share one task, where a busy door would
   * otherwise send each alone because a worker is free at that instant (task cost: see the top).
   */
  private dispatchSoon(): void {
    if (this.dispatchScheduled) return;
    this.dispatchScheduled = true;
    setImmediate(() => {
      this.dispatchScheduled = false;
      this.dispatch();
    });
  }

  /** Fills the current generation's free task slots from the queue. */
  private dispatch(): void {
    const gen = this.current;
    const capacity = this.workers * TASKS_PER_WORKER;
    while (!this.closed && this.queue.length > 0 && gen.tasks.size < capacity) {
      // A worker's second task saves it a round trip only if it carries a batch: a lone message waits
      // for a worker to free up instead, and goes with whatever else arrived meanwhile.
      if (gen.tasks.size >= this.workers && this.queue.length < MIN_SECOND_BATCH) break;
      const size = Math.min(MAX_BATCH, Math.ceil(this.queue.length / (capacity - gen.tasks.size)));
      // A message that times out while queued is taken out of the queue, so all of these still wait.
      this.sendBatch(gen, this.queue.splice(0, size));
    }
  }

  private sendBatch(gen: Generation, jobs: Job[]): void {
    this.watchExits(gen);
    const items: WorkerItem[] = [];
    const transferList: ArrayBuffer[] = [];
    for (const job of jobs) {
      this.lastTaskId = this.lastTaskId >= MAX_TASK_ID ? 1 : this.lastTaskId + 1;
      const id = this.lastTaskId;
      resetTask(gen.board, id);
      job.taskId = id;
      job.gen = gen;
      // The caller (an SMTP session, a milter) still needs its bytes: transfer a copy, never its buffer.
      const raw = this.bufferFor(job.raw.byteLength);
      raw.set(job.raw);
      // Jobs of one batch share one BodyRules object, which structured clone then copies once.
      items.push(job.body ? { id, raw, body: job.body } : { id, raw });
      transferList.push(raw.buffer);
    }
    const task: WorkerTask = { items };
    const answered = (gen.pool.run(task, { transferList }) as Promise<WorkerReply>).then(
      (reply) => {
        this.recycle(reply?.buffers);
        const replies = Array.isArray(reply?.replies) ? reply.replies : undefined;
        jobs.forEach((job, k) => this.answered(job, items[k].id, replies?.[k]));
      },
      (err: unknown) => jobs.forEach((job, k) => this.failed(job, items[k].id, gen, err)),
    );
    const done = answered
      // Only a bug here could throw; it must not become an unhandled rejection that ends the process.
      .catch((err: unknown) => this.log(`classifier pool: ${err instanceof Error ? err.message : String(err)}`))
      .then(() => {
        gen.tasks.delete(done);
        this.dispatch();
      });
    gen.tasks.add(done);
  }

  /**
   * A buffer for a message copy of n bytes. Copies are transferred to a worker, which hands the buffers
   * back with its reply; they are kept by power-of-two size and reused, so a message costs a copy, not
   * an allocation that zero-fills and then a free: the allocator was ~20% of the main thread's CPU in the
   * pool (perf, bench/README pool section).
   */
  private bufferFor(n: number): Uint8Array<ArrayBuffer> {
    const size = sizeClass(n);
    if (size > MAX_RECYCLED_BYTES) return new Uint8Array(n);
    const buf = this.spare.get(size)?.pop();
    if (buf) {
      this.spareBytes -= size;
      return new Uint8Array(buf, 0, n);
    }
    return new Uint8Array(new ArrayBuffer(size), 0, n);
  }

  private recycle(buffers: ArrayBuffer[] | undefined): void {
    if (!Array.isArray(buffers)) return;
    for (const buf of buffers) {
      const size = buf.byteLength;
      // Only buffers this pool made (a size class) and only up to the budget; the rest are left to GC.
      if (size !== sizeClass(size) || size > MAX_RECYCLED_BYTES || this.spareBytes + size > SPARE_BUFFER_BYTES) continue;
      let list = this.spare.get(size);
      if (!list) this.spare.set(size, (list = []));
      list.push(buf);
      this.spareBytes += size;
    }
  }

  private settle(job: Job): boolean {
    if (job.settled) return false;
    job.settled = true;
    clearTimeout(job.timer);
    this.pending--;
    return true;
  }

  private answered(job: Job, id: number, reply: ItemReply | undefined): void {
    if (job.taskId !== id || !this.settle(job)) return;
    if (!reply) {
      job.reject(new FilterError('EINTERNAL', 'the classifier worker sent no answer for this message'));
    } else if (reply.ok) {
      this.counts.completed++;
      job.resolve(reply.result);
    } else {
      const code = (reply.code in ErrorCodes ? reply.code : 'EINTERNAL') as ErrorCode;
      job.reject(new FilterError(code, reply.message));
    }
  }

  private failed(job: Job, id: number, gen: Generation, err: unknown): void {
    if (job.taskId !== id || job.settled) return;
    const stopped = err instanceof WorkerStopped;
    if (!stopped && !this.closed && typeof err === 'object' && err !== null && !this.seenFailures.has(err)) {
      this.seenFailures.add(err);
      this.counts.crashes++;
    }
    // The task that was running when its worker died is the likely cause; the one waiting behind it
    // did nothing wrong and gets one more try on a fresh worker.
    const wasRunning = runningThread(gen.board, id) !== null;
    if (!this.closed && !job.resent && (stopped || !wasRunning)) {
      job.resent = true;
      job.gen = undefined;
      this.queue.unshift(job);
      return;
    }
    if (!this.settle(job)) return;
    if (this.closed) {
      job.reject(new FilterError('EWORKER', 'the classifier pool closed before the message was classified', {}, { cause: err }));
      return;
    }
    const message = err instanceof Error ? err.message : String(err);
    job.reject(new FilterError('EWORKER', `a classifier worker crashed (${message}); it was replaced`, {}, { cause: err }));
  }

  private expire(job: Job): void {
    if (!this.settle(job)) return;
    this.counts.timeouts++;
    const gen = job.gen;
    // Still ours: drop it. Sent but not started: its worker will skip it. Running: only terminating
    // the thread stops it.
    if (!gen) this.queue.splice(this.queue.indexOf(job), 1);
    const threadId = gen ? cancelTask(gen.board, job.taskId) : null;
    if (gen && threadId !== null) {
      const thread = gen.pool.threads.find((t) => t.threadId === threadId);
      // tinypool treats a worker "error" as fatal: it terminates the thread, fails the tasks it held
      // and starts a replacement.
      thread?.emit('error', new WorkerStopped(`a task ran past its deadline of ${Math.round(job.budget)} ms`));
    }
    job.reject(
      new FilterError('ETIMEOUT', `classification took longer than ${Math.round(job.budget)} ms; the worker was replaced`, {
        timeoutMs: Math.round(job.budget),
      }),
    );
  }

  /**
   * tinypool notices a worker that throws, not one that exits (process.exit in a dependency): its
   * tasks would wait for their deadline. An exit of a worker tinypool still counts as live is
   * reported to tinypool as an error, which fails its tasks at once and starts a replacement.
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

  /**
   * Swaps the model: messages not yet sent go to new workers that have it, those already sent finish
   * on the old workers, which are then stopped. Bad bytes throw EMODEL and leave the current model.
   */
  async reloadModel(modelBytes: Uint8Array | null): Promise<void> {
    if (this.closed) throw new FilterError('EWORKER', 'the classifier pool is closed');
    const next = this.spawn(payloadFor(modelBytes));
    const old = this.current;
    this.current = next;
    this.modelVersion++;
    this.dispatch();
    this.draining.add(old);
    try {
      await Promise.all(old.tasks);
      await old.pool.destroy();
    } finally {
      this.draining.delete(old);
    }
  }

  stats(): PoolStats {
    const running = Math.min(this.pending, this.workers);
    return {
      workers: this.current.pool.threads.length,
      queued: this.pending - running,
      running,
      ...this.counts,
      modelVersion: this.modelVersion,
    };
  }

  /** Stops every worker; messages still waiting or running reject with EWORKER, later calls too. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const job of this.queue.splice(0)) {
      if (this.settle(job)) job.reject(new FilterError('EWORKER', 'the classifier pool closed before the message was classified'));
    }
    await Promise.all([this.current.pool.destroy(), ...[...this.draining].map((g) => g.pool.destroy())]);
  }
}
