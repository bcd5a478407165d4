// The sweep's pure parts; the sweep itself runs against real Dovecot in test/integration/.
import { describe, expect, it } from 'vitest';
import { FilterError } from '../../src/core/errors.ts';
import { backoffMs, imapError, isRetryable } from '../../src/ingress/backfill/imap.ts';
import { chunksWithin, Gate, outcomeOf } from '../../src/ingress/backfill/sweep.ts';
import { parseImapUrl } from '../../src/ingress/backfill/url.ts';

const account = parseImapUrl('imap://test@127.0.0.1:15143');

describe('chunksWithin', () => {
  const sizes = new Map([
    [1, 400],
    [2, 400],
    [3, 400],
    [4, 5000],
    [5, 10],
  ]);

  it('keeps the bytes of each chunk within the budget', () => {
    expect(chunksWithin([1, 2, 3], sizes, 1000)).toEqual([[1, 2], [3]]);
  });

  it('sends a message larger than the budget alone rather than never', () => {
    expect(chunksWithin([3, 4, 5], sizes, 1000)).toEqual([[3], [4], [5]]);
  });

  it('returns nothing for nothing', () => {
    expect(chunksWithin([], sizes, 1000)).toEqual([]);
  });
});

describe('Gate (scans and bytes in flight across overlapping batches)', () => {
  const settled = async (p: Promise<void>) => {
    let done = false;
    void p.then(() => (done = true));
    await new Promise((r) => setImmediate(r));
    return done;
  };

  it('lets no more scans in than its bound until one ends', async () => {
    const g = new Gate(2, 1000);
    await g.takeScan();
    await g.takeScan();
    const third = g.takeScan();
    expect(await settled(third)).toBe(false);
    g.release(1, 0);
    expect(await settled(third)).toBe(true);
    expect(g.scans).toBe(2);
  });

  it('holds a chunk back while the chunks in flight leave no room for it, and lets a lone oversized chunk through', async () => {
    const g = new Gate(10, 1000);
    await g.takeBytes(700);
    const next = g.takeBytes(400);
    expect(await settled(next)).toBe(false);
    g.release(0, 700);
    expect(await settled(next)).toBe(true);
    g.release(0, 400);
    expect(await settled(g.takeBytes(5000))).toBe(true);
    expect(g.bytes).toBe(5000);
  });
});

describe('outcomeOf', () => {
  it.each([
    ['none', true, 'kept'],
    ['tag', true, 'tagged'],
    ['tag', false, 'tagged'],
    ['flag', true, 'flagged'],
    ['flag', false, 'kept'],
    ['move', true, 'moved'],
    ['move', false, 'kept'],
  ] as const)('%s on spam=%s is %s', (action, spam, outcome) => {
    expect(outcomeOf(spam, action)).toBe(outcome);
  });
});

describe('imapError', () => {
  it('maps a refused login to EAUTH, never retried', () => {
    const e = imapError(Object.assign(new Error('Authentication failed'), { authenticationFailed: true, serverResponseCode: 'AUTHENTICATIONFAILED' }), account);
    expect(e.code).toBe('EAUTH');
    expect(e.message).toMatch(/refused the login of "test"/);
    expect(isRetryable(e)).toBe(false);
  });

  it('maps a missing folder to ECONFIG naming the folder', () => {
    const e = imapError(Object.assign(new Error('Command failed'), { mailboxMissing: true }), account, 'Archive');
    expect(e.code).toBe('ECONFIG');
    expect(e.details).toMatchObject({ option: '--folders', folder: 'Archive' });
  });

  it('retries dropped connections and throttling, carrying the server hint', () => {
    expect(isRetryable(imapError(Object.assign(new Error('Connection not available'), { code: 'NoConnection' }), account))).toBe(true);
    expect(isRetryable(imapError(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), account))).toBe(true);
    const t = imapError(Object.assign(new Error('Too many requests'), { code: 'ETHROTTLE', throttleReset: 9000 }), account);
    expect(isRetryable(t)).toBe(true);
    expect(t.details.throttleMs).toBe(9000);
  });

  it('does not retry TLS that cannot work: an untrusted certificate, no STARTTLS offered', () => {
    const cert = imapError(Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }), account);
    expect(cert.code).toBe('ECONFIG');
    expect(cert.message).toMatch(/TLS with the IMAP server .* failed: self-signed certificate/);
    expect(isRetryable(cert)).toBe(false);
    const none = imapError(Object.assign(new Error('Server does not support STARTTLS'), { tlsFailed: true }), account);
    expect(isRetryable(none)).toBe(false);
    // a reset during the handshake is the network's doing: retried
    expect(isRetryable(imapError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET', tlsFailed: true }), account))).toBe(true);
  });

  it('does not retry a command the server refused for another reason', () => {
    const e = imapError(Object.assign(new Error('Command failed'), { command: 'UID MOVE', responseText: 'Quota exceeded' }), account, 'INBOX');
    expect(e.code).toBe('EPROTOCOL');
    expect(e.message).toContain('Quota exceeded');
    expect(isRetryable(e)).toBe(false);
  });

  it('passes a FilterError through untouched', () => {
    const own = new FilterError('ESTORE', 'disk full');
    expect(imapError(own, account)).toBe(own);
  });
});

describe('backoffMs', () => {
  it('doubles from the base up to the cap', () => {
    expect([1, 2, 3, 4, 10].map((a) => backoffMs(a, 500, 5000))).toEqual([500, 1000, 2000, 4000, 5000]);
  });

  it('waits as long as a throttling server asks, within the cap', () => {
    expect(backoffMs(1, 500, 30_000, 9000)).toBe(9000);
    expect(backoffMs(1, 500, 30_000, 90_000)).toBe(30_000);
  });
});
