// The door-level scan deadline, the same for every door: a verdict that is not ready in time becomes
// ETIMEOUT, which each door answers as its try-later reply, so a stuck stage never holds a client.
import { FilterError } from '../core/errors.ts';

export function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new FilterError('ETIMEOUT', `no verdict within ${ms} ms`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
