// One classifier worker thread: takes the model once at start (shared tables or file bytes, from
// workerData), then classifies each message it is handed. Runs compiled from dist/pool/worker.js.
import Tinypool from 'tinypool';
import { classifyMessage, loadModel, type Model } from '../core/classify.ts';
import { toFilterError } from '../core/errors.ts';
import type { ClassifyResult } from '../core/scan.ts';
import type { ModelPayload } from './shared-model.ts';

export interface WorkerData {
  model: ModelPayload;
}

export interface WorkerTask {
  /** The message bytes, transferred (the pool sends a copy; the caller keeps its own). */
  raw: Uint8Array;
}

/**
 * Errors travel back as data: structured clone drops an Error's `code`, and a thrown error must not
 * be confused with a crashed worker.
 */
export type WorkerReply = { ok: true; result: ClassifyResult } | { ok: false; code: string; message: string };

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

const model = modelFrom((Tinypool.workerData as WorkerData).model);

export default function classifyTask(task: WorkerTask): WorkerReply {
  try {
    return { ok: true, result: classifyMessage(task.raw, model) };
  } catch (e) {
    const err = toFilterError(e);
    return { ok: false, code: err.code, message: err.message };
  }
}
