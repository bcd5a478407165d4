// Puts a loaded model into shared memory so every worker reads the same tables instead of holding
// its own copy: typed arrays are copied once into SharedArrayBuffers, which structured clone passes
// to each worker by reference. The model is only read in workers; a reload builds new buffers.

/** What a worker receives: the model itself (shared tables) or its file bytes to load on its own. */
export type ModelPayload =
  | { kind: 'none' }
  | { kind: 'shared'; model: unknown }
  | { kind: 'bytes'; bytes: SharedArrayBuffer };

type TypedArray =
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

type TypedArrayConstructor = new (buffer: SharedArrayBuffer, byteOffset?: number, length?: number) => TypedArray;

function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * Copies `value` with every typed array moved into shared memory. Returns undefined when the value
 * holds something structured clone would not carry faithfully (class instances, functions): the
 * caller then ships the file bytes and lets each worker load its own copy.
 */
export function toShared(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return typeof value === 'function' || typeof value === 'symbol' ? undefined : value;
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    const src = value as TypedArray;
    const Ctor = src.constructor as TypedArrayConstructor;
    const out = new Ctor(new SharedArrayBuffer(src.byteLength), 0, src.length);
    (out as Uint8Array).set(src as Uint8Array);
    return out;
  }
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    for (const item of value) {
      const s = toShared(item);
      if (s === undefined && item !== undefined) return undefined;
      out.push(s);
    }
    return out;
  }
  if (!isPlainObject(value)) return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, item] of Object.entries(value)) {
    const s = toShared(item);
    if (s === undefined && item !== undefined) return undefined;
    out[k] = s;
  }
  return out;
}

/** The payload for a model: shared tables when possible, else the file bytes in shared memory. */
export function modelPayload(model: unknown, fileBytes: () => Uint8Array): ModelPayload {
  if (model === null) return { kind: 'none' };
  const shared = toShared(model);
  if (shared !== undefined) return { kind: 'shared', model: shared };
  const bytes = fileBytes();
  const sab = new SharedArrayBuffer(bytes.byteLength);
  new Uint8Array(sab).set(bytes);
  return { kind: 'bytes', bytes: sab };
}
