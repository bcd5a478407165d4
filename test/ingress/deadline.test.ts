import { describe, expect, it } from 'vitest';
import { FilterError } from '../../src/core/errors.ts';
import { withDeadline } from '../../src/ingress/deadline.ts';

describe('withDeadline', () => {
  it('passes a verdict that is ready in time through', async () => {
    await expect(withDeadline(Promise.resolve('ready'), 1000)).resolves.toBe('ready');
  });

  it('turns a verdict that never comes into ETIMEOUT, so every door answers try-later', async () => {
    const err = await withDeadline(new Promise(() => {}), 20).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FilterError);
    expect(err).toMatchObject({ code: 'ETIMEOUT', message: 'no verdict within 20 ms' });
  });

  it('keeps the error of a scan that fails before the deadline', async () => {
    const failed = new FilterError('EOVERLOAD', 'queue full');
    await expect(withDeadline(Promise.reject(failed), 1000)).rejects.toBe(failed);
  });
});
