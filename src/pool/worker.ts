// One classifier worker thread: takes the model once at start (shared tables or file bytes, from
// workerData), then classifies the messages it is handed, a batch per task, one at a time, posting
// each on the board as it starts; matches the body rules when asked; and hands the message buffers
// back with the answers. Runs compiled from dist/pool/worker.js.
import { getPriority, setPriority } from 'node:os';
import { threadId } from 'node:worker_threads';
import Tinypool, { kTransferable, kValue, type Transferable } from 'tinypool';
import { classifyMessage, loadModel, type Model } from '../core/classify.ts';
import { toFilterError } from '../core/errors.ts';
import { type BodyMatches, type BodyRules, compileBodyRules } from '../core/rules/load.ts';
import type { ClassifyResult } from '../core/scan.ts';
import { announceThread, type Board, endTask, startTask } from './board.ts';
import type { ModelPayload } from './shared-model.ts';

export interface WorkerData {
  model: ModelPayload;
  board: Board;
  /** Nice steps below the thread that started this one (pool option workerNice). */
  nice: number;
}

export interface WorkerItem {
  id: number;
  /** The message bytes, transferred (the pool sends a copy; the caller keeps its own). */
  raw: Uint8Array;
  /** Body rules to match too, from the body offset the quick look found. */
  body?: { rules: BodyRules; offset: number };
}

export interface WorkerTask {
  items: WorkerItem[];
}

/**
 * Errors travel back as data: structured clone drops an Error's `code`, and a thrown error must not
 * be confused with a crashed worker.
 */
export type ItemReply = { ok: true; result: ClassifyResult } | { ok: false; code: string; message: string };

/**
 * One reply per item, in order, and the items' buffers handed back to the pool, which copies later
 * messages into them instead of allocating (see ClassifierPool.bufferFor).
 */
export interface WorkerReply {
  replies: ItemReply[];
  buffers: ArrayBuffer[];
}

function modelFrom(payload: ModelPayload): Model | null {
  switch (payload.kind) {
    case 'none':
      return null;
    case 'shared':
      return payload.model as Model;
    case 'bytes':
      return loadModel(new Uint8Array(payload.bytes));
  }
}

const data = Tinypool.workerData as WorkerData;
const model = modelFrom(data.model);
const { board } = data;
const workerId = process.__tinypool_state__.workerId;
announceThread(board, workerId, threadId);
lowerPriority(data.nice);

/**
 * Runs this thread `steps` nice steps below the one that started it, so that a worker woken with a task
 * does not preempt the main thread's I/O (limits.workerNice says why). Only on Linux, where a thread has
 * its own nice value and priority 0 means the calling thread; elsewhere it would renice the whole process.
 * Lowering needs no privilege; if it fails anyway, the worker just runs at the main thread's priority.
 */
function lowerPriority(steps: number): void {
  if (process.platform !== 'linux' || !(steps > 0)) return;
  try {
    setPriority(0, Math.min(19, getPriority(0) + steps));
  } catch {
    // Same priority as the main thread: slower under load, never wrong.
  }
}

/** Compiled body rules by BodyRules.id; a rule reload adds one, so only the newest few are kept. */
const bodyMatchers = new Map<number, (raw: Uint8Array, offset: number) => BodyMatches>();
const KEPT_RULE_SETS = 4;

function matchBody(body: NonNullable<WorkerItem['body']>, raw: Uint8Array): BodyMatches {
  let m = bodyMatchers.get(body.rules.id);
  if (!m) {
    m = compileBodyRules(body.rules);
    bodyMatchers.set(body.rules.id, m);
    if (bodyMatchers.size > KEPT_RULE_SETS) bodyMatchers.delete(bodyMatchers.keys().next().value as number);
  }
  return m(raw, body.offset);
}

function classifyItem(item: WorkerItem): ItemReply {
  // The pool already answered ETIMEOUT for a message it gave up on while it waited here.
  if (!startTask(board, workerId, item.id)) return { ok: false, code: 'ETIMEOUT', message: 'skipped: the deadline passed before it started' };
  try {
    const result = classifyMessage(item.raw, model);
    if (item.body) result.body = matchBody(item.body, item.raw);
    return { ok: true, result };
  } catch (e) {
    const err = toFilterError(e);
    return { ok: false, code: err.code, message: err.message };
  } finally {
    endTask(board, workerId);
  }
}

/** The classification of a task's messages; the default export adds the buffers' way back. */
export function classifyItems(items: WorkerItem[]): ItemReply[] {
  return items.map(classifyItem);
}

export default function classifyBatch(task: WorkerTask): WorkerReply {
  const buffers = task.items.map((item) => item.raw.buffer as ArrayBuffer);
  const reply: WorkerReply = { replies: classifyItems(task.items), buffers };
  // Transferred, not copied: the main thread owns them again and this thread has nothing to free.
  const movable: Transferable = { [kTransferable]: buffers, [kValue]: reply };
  // tinypool posts movable[kValue] with movable[kTransferable] as the transfer list.
  return Tinypool.move(movable) as unknown as WorkerReply;
}
