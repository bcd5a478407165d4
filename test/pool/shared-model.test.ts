import { describe, expect, it } from 'vitest';
import { emptyModel, loadModel, serializeModel, trainMessage } from '../../src/core/classify.ts';
import { modelPayload, toShared } from '../../src/pool/shared-model.ts';

describe('toShared', () => {
  it('moves every typed array into shared memory and keeps the rest as is', () => {
    const src = { bits: 4, name: 'm', list: [1, new Float32Array([0.5, 2])], table: new Uint32Array([1, 2, 3]), none: null };
    const out = toShared(src) as typeof src;
    expect(out).toEqual(src);
    expect(out.table.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect((out.list[1] as Float32Array).buffer).toBeInstanceOf(SharedArrayBuffer);
    // A copy: the loaded model may be dropped or changed without touching what workers read.
    src.table[0] = 99;
    expect(out.table[0]).toBe(1);
  });

  it('copies only the viewed part of a typed array', () => {
    const backing = new Uint16Array([9, 1, 2, 9]);
    const out = toShared({ v: backing.subarray(1, 3) }) as { v: Uint16Array };
    expect([...out.v]).toEqual([1, 2]);
    expect(out.v.buffer.byteLength).toBe(4);
  });

  it('gives up on what structured clone would not carry faithfully', () => {
    class Weights {
      w = new Float64Array(2);
    }
    expect(toShared({ w: new Weights() })).toBeUndefined();
    expect(toShared({ score: () => 1 })).toBeUndefined();
    expect(toShared([new Map()])).toBeUndefined();
  });
});

describe('modelPayload', () => {
  it('shares a plain model, and ships file bytes for one it cannot share', () => {
    const m = emptyModel();
    trainMessage(m, new TextEncoder().encode('Subject: hello\r\n\r\nhello world'), 'ham');
    const bytes = serializeModel(m);
    const shared = modelPayload(loadModel(bytes), () => bytes);
    expect(shared.kind).toBe('shared');
    expect(modelPayload(null, () => bytes)).toEqual({ kind: 'none' });
    const fallback = modelPayload(new (class Opaque {})(), () => bytes);
    expect(fallback.kind).toBe('bytes');
    expect(fallback.kind === 'bytes' && new Uint8Array(fallback.bytes)).toEqual(bytes);
  });
});
