import { describe, expect, it } from 'vitest';
import { createHeapGuard } from '../../src/ingress/backfill/memory.ts';

describe('createHeapGuard', () => {
  it('collects only once the heap has grown by the step since the last collection', () => {
    let used = 100;
    const guard = createHeapGuard(50, () => used);
    used = 149;
    expect(guard.check()).toBe(false);
    used = 150;
    expect(guard.check()).toBe(true);
    // the floor moves to what is left after the collection
    used = 120;
    expect(guard.check()).toBe(false);
  });

  it('really runs a full collection: the heap shrinks after garbage is dropped', () => {
    const guard = createHeapGuard(1);
    let garbage: string[] | null = Array.from({ length: 200_000 }, (_, i) => `garbage ${i} ${'x'.repeat(40)}`);
    const before = process.memoryUsage().heapUsed;
    garbage = null;
    expect(guard.check()).toBe(true);
    expect(garbage).toBeNull();
    expect(process.memoryUsage().heapUsed).toBeLessThan(before);
  });
});
