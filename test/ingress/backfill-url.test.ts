import { describe, expect, it } from 'vitest';
import { FilterError } from '../../src/core/errors.ts';
import { parseImapUrl } from '../../src/ingress/backfill/url.ts';

describe('parseImapUrl', () => {
  it('reads user, host and port, plain IMAP by default', () => {
    expect(parseImapUrl('imap://alice@mail.example.org:1143')).toEqual({
      user: 'alice',
      password: undefined,
      host: 'mail.example.org',
      port: 1143,
      security: 'plain',
      key: 'alice@mail.example.org:1143',
    });
  });

  it('defaults the port by security: 143 plain or STARTTLS, 993 TLS', () => {
    expect(parseImapUrl('imap://a@h').port).toBe(143);
    expect(parseImapUrl('imap://a@h', { starttls: true })).toMatchObject({ port: 143, security: 'starttls' });
    expect(parseImapUrl('imap://a@h', { tls: true })).toMatchObject({ port: 993, security: 'tls' });
    expect(parseImapUrl('imaps://a@h')).toMatchObject({ port: 993, security: 'tls' });
  });

  it('decodes a percent-encoded user (addresses as login names) and strips IPv6 brackets', () => {
    const a = parseImapUrl('imap://bob%40example.org@[::1]:1143');
    expect(a.user).toBe('bob@example.org');
    expect(a.host).toBe('::1');
    expect(a.key).toBe('bob@example.org@::1:1143');
  });

  it('keeps a password from the URL out of the account key', () => {
    const a = parseImapUrl('imap://carol:s%3Acret@h:1');
    expect(a.password).toBe('s:cret');
    expect(a.key).toBe('carol@h:1');
  });

  it.each([
    ['not a url', /not an IMAP URL/],
    ['http://a@h', /scheme must be imap/],
    ['imap://h:143', /names no user/],
    ['imap://a@h/INBOX', /name folders with --folders/],
  ])('refuses %s with ECONFIG naming the problem', (text, message) => {
    let err: unknown;
    try {
      parseImapUrl(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FilterError);
    expect((err as FilterError).code).toBe('ECONFIG');
    expect((err as Error).message).toMatch(message);
  });

  it('refuses --tls with --starttls, and --starttls on imaps://', () => {
    expect(() => parseImapUrl('imap://a@h', { tls: true, starttls: true })).toThrow(/exclude each other/);
    expect(() => parseImapUrl('imaps://a@h', { starttls: true })).toThrow(/does not apply/);
  });
});
