// Entry of the writer thread: one LogWriter, driven by messages from store.ts. Requests are answered
// in the order they arrive, which is what keeps batches in order.
import { parentPort, workerData } from 'node:worker_threads';
import { toFilterError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import type { VerdictFilters } from './query.ts';
import type { Row } from './row.ts';
import { LogWriter, type WriterOptions } from './writer.ts';

export interface WriterData extends WriterOptions {
  /** Delete verdicts older than this many days, hourly; null keeps them. */
  retainDays: number | null;
}

export type WriterCommand =
  | { op: 'write'; rows: Row[] }
  | { op: 'query'; filters: VerdictFilters }
  | { op: 'close' };
export type WriterRequest = WriterCommand & { id: number };

export interface WireError {
  code: string;
  message: string;
  details: Record<string, unknown>;
}

export type WriterReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: WireError }
  | { id: 0; ready: true; applied: string[]; error: WireError | null };

const port = parentPort;
if (!port) throw new Error('writer-worker.ts runs as a worker thread (see store.ts)');
const data = workerData as WriterData;
const writer = new LogWriter(data);

function wire(e: unknown): WireError {
  const err = toFilterError(e, 'ESTORE');
  return { code: err.code, message: err.message, details: err.details };
}

function reply(msg: WriterReply): void {
  port?.postMessage(msg);
}

const yieldToMessages = () => new Promise<void>((resolve) => setImmediate(resolve));

async function handle(req: WriterRequest): Promise<unknown> {
  switch (req.op) {
    case 'write':
      writer.write(req.rows);
      return req.rows.length;
    case 'query':
      return writer.query(req.filters);
    case 'close':
      clearInterval(retention);
      writer.close();
      port?.close();
      return null;
  }
}

let retaining = false;
async function retainNow(): Promise<void> {
  if (data.retainDays === null || retaining) return;
  retaining = true;
  try {
    await writer.retain(Date.now() - data.retainDays * 86_400_000, yieldToMessages);
  } catch {
    // The next write reports the same storage failure through the normal path; retention just waits
    // for the next hour.
  } finally {
    retaining = false;
  }
}
const retention = setInterval(() => void retainNow(), limits.retentionIntervalMs);
retention.unref();

port.on('message', (req: WriterRequest) => {
  handle(req).then(
    (value) => req.op !== 'close' && reply({ id: req.id, ok: true, value }),
    (e) => reply({ id: req.id, ok: false, error: wire(e) }),
  );
});

try {
  writer.open();
  reply({ id: 0, ready: true, applied: writer.applied, error: null });
  void retainNow();
} catch (e) {
  reply({ id: 0, ready: true, applied: [], error: wire(e) });
}
