import { describe, expect, it } from 'vitest';
import { sameToken } from '../../src/ingress/token.ts';

describe('sameToken', () => {
  it('accepts only the exact token', () => {
    expect(sameToken('s3cret', 's3cret')).toBe(true);
    expect(sameToken('s3creT', 's3cret')).toBe(false);
    expect(sameToken('s3cret-and-more', 's3cret')).toBe(false);
    expect(sameToken('s3c', 's3cret')).toBe(false);
    expect(sameToken('', 's3cret')).toBe(false);
  });

  it('compares bytes, so a token with non-ASCII characters works', () => {
    expect(sameToken('clé-ü', 'clé-ü')).toBe(true);
    expect(sameToken('cle-u', 'clé-ü')).toBe(false);
  });
});
