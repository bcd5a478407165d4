import { afterEach, describe, expect, it, vi } from 'vitest';
import { EXIT, exitCodeFor, UsageError } from '../../src/cli/args.ts';
import { FilterError } from '../../src/core/errors.ts';

describe('exitCodeFor', () => {
  const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  afterEach(() => stderr.mockClear());

  it('maps a refused login to 77 for every command that logs in (backfill, learn --imap)', () => {
    expect(exitCodeFor(new FilterError('EAUTH', 'the IMAP server refused the login'))).toBe(77);
    expect(EXIT.NOPERM).toBe(77);
    expect(String(stderr.mock.calls[0]?.[0])).toBe('atlas-email: EAUTH: the IMAP server refused the login\n');
  });

  it('keeps the other stable mappings', () => {
    expect(exitCodeFor(new UsageError('--x is unknown'))).toBe(64);
    expect(exitCodeFor(new FilterError('EMALFORMED', 'empty'))).toBe(65);
    expect(exitCodeFor(new FilterError('ESTORE', 'disk full'))).toBe(74);
    expect(exitCodeFor(new FilterError('ETIMEOUT', 'slow'))).toBe(75);
    expect(exitCodeFor(new FilterError('ECONFIG', 'bad'))).toBe(78);
    expect(exitCodeFor(new FilterError('EPROTOCOL', 'odd'))).toBe(70);
  });
});
