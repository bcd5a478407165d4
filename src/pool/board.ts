// A small shared-memory board between the pool and its workers. Each worker posts which task it is
// running; the pool posts which tasks it has given up on. Two tasks wait in a worker at once (no
// round trip between them), so when a deadline passes the pool must learn from here whether that
// task is running, on which thread (terminate it), or not started (the worker skips it).
//
// Layout (Int32): [threadId, taskId] per tinypool worker id (1..workers), then a cancel bitmap.
// The handshake is sequentially consistent: a worker posts its task before reading the cancel bit,
// the pool sets the bit before reading the running task, so at least one side sees the other.

/** Cancel bits, indexed by task id modulo this; far above any queue length, so ids never collide. */
const CANCEL_BITS = 1 << 20;
/** Task ids run from 1 to this, then wrap; 0 means "idle". */
export const MAX_TASK_ID = 0x3fffffff;

export type Board = Int32Array;

export function createBoard(workers: number): Board {
  return new Int32Array(new SharedArrayBuffer(4 * (2 * (workers + 1) + CANCEL_BITS / 32)));
}

function workerSlots(board: Board): number {
  return board.length - CANCEL_BITS / 32;
}

function cancelIndex(board: Board, taskId: number): [number, number] {
  const bit = taskId % CANCEL_BITS;
  return [workerSlots(board) + (bit >>> 5), 1 << (bit & 31)];
}

/** Worker: says which thread holds this worker id. */
export function announceThread(board: Board, workerId: number, threadId: number): void {
  Atomics.store(board, 2 * workerId, threadId);
}

/** Worker: posts the task it starts; false when the pool has already given up on it. */
export function startTask(board: Board, workerId: number, taskId: number): boolean {
  Atomics.store(board, 2 * workerId + 1, taskId);
  const [i, mask] = cancelIndex(board, taskId);
  if ((Atomics.load(board, i) & mask) === 0) return true;
  Atomics.store(board, 2 * workerId + 1, 0);
  return false;
}

export function endTask(board: Board, workerId: number): void {
  Atomics.store(board, 2 * workerId + 1, 0);
}

/** Pool: a fresh task id starts with its cancel bit clear. */
export function resetTask(board: Board, taskId: number): void {
  const [i, mask] = cancelIndex(board, taskId);
  Atomics.and(board, i, ~mask);
}

/**
 * Pool: gives up on a task. Returns the thread running it (to terminate), or null when it has not
 * started, in which case its worker will skip it.
 */
export function cancelTask(board: Board, taskId: number): number | null {
  const [i, mask] = cancelIndex(board, taskId);
  Atomics.or(board, i, mask);
  return runningThread(board, taskId);
}

/** The thread whose worker is running (or died running) this task, if any. */
export function runningThread(board: Board, taskId: number): number | null {
  const slots = workerSlots(board) / 2;
  for (let w = 1; w < slots; w++) if (Atomics.load(board, 2 * w + 1) === taskId) return Atomics.load(board, 2 * w);
  return null;
}
