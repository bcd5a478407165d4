// The API token check shared by everything the token guards (learning over HTTP, the operator pages).
// Runtime-neutral, so the edge app can use it too.

/** Compares without an early exit, so response time does not reveal how much of the token matched. */
export function sameToken(given: string, expected: string): boolean {
  const a = new TextEncoder().encode(given);
  const b = new TextEncoder().encode(expected);
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}
