// The command line of `backfill` and of `learn --imap`: flags named in the issue, clear usage errors
// before any connection is made (the sweep itself runs against Dovecot in test/integration/).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { UsageError } from '../../src/cli/args.ts';
import { backfillCommand, backfillHelp, listFlag } from '../../src/cli/backfill.ts';
import { imapSources } from '../../src/ingress/backfill/learn.ts';

let out = '';
beforeEach(() => {
  out = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    out += String(s);
    return true;
  });
});
afterEach(() => {
  vi.restoreAllMocks();
  delete process.env.ATLAS_IMAP_PASSWORD;
});

describe('atlas-email backfill', () => {
  it('prints its help with every flag of the issue', async () => {
    expect(await backfillCommand(['--help'])).toBe(0);
    for (const flag of ['--password-env', '--tls', '--starttls', '--folders', '--since', '--action', '--junk', '--concurrency', '--dry-run', '--db', '--rules', '--model', '--config']) {
      expect(out).toContain(flag);
    }
    expect(out).toBe(backfillHelp + '\n');
  });

  it.each([
    [[], /exactly one IMAP URL/],
    [['imap://a@h', 'imap://b@h'], /exactly one IMAP URL/],
    [['http://a@h'], /scheme must be imap/],
    [['imap://a@h', '--action', 'delete'], /--action must be one of none, tag, flag, move, got "delete"/],
    [['imap://a@h', '--since', '2026-13-01'], /--since must be a date as YYYY-MM-DD/],
    [['imap://a@h', '--since', 'yesterday'], /--since must be a date/],
    [['imap://a@h', '--folders', ' , '], /--folders names no folder/],
    [['imap://a@h', '--concurrency', 'many'], /--concurrency must be a whole number/],
    [['imap://a@h', '--tls', '--starttls'], /exclude each other/],
    [['imap://a@h', '--password-env', 'NOT_SET_ANYWHERE'], /no password: set the environment variable NOT_SET_ANYWHERE/],
    [['imap://a@h', '--bogus'], /bogus/],
  ])('refuses %j before connecting', async (argv, message) => {
    process.env.ATLAS_IMAP_PASSWORD = 'x';
    await expect(backfillCommand(argv as string[])).rejects.toThrow(UsageError);
    await expect(backfillCommand(argv as string[])).rejects.toThrow(message);
  });

  it('splits --folders on commas and trims', () => {
    expect(listFlag('INBOX, Archive ,Lists/ietf', [], '--folders')).toEqual(['INBOX', 'Archive', 'Lists/ietf']);
    expect(listFlag(undefined, ['INBOX'], '--folders')).toEqual(['INBOX']);
  });
});

describe('learn --imap sources', () => {
  it('are none without --imap, and the folder flags need it', () => {
    expect(imapSources({})).toEqual([]);
    expect(() => imapSources({ 'spam-folder': ['Junk'] })).toThrow(/need --imap URL/);
  });

  it('need a folder and a password', () => {
    expect(() => imapSources({ imap: 'imap://a@h' }, { ATLAS_IMAP_PASSWORD: 'x' })).toThrow(/at least one --spam-folder or --ham-folder/);
    expect(() => imapSources({ imap: 'imap://a@h', 'ham-folder': ['INBOX'] }, {})).toThrow(/no IMAP password/);
    expect(() => imapSources({ imap: 'imap://a@h', 'ham-folder': ['INBOX'], limit: '0' }, { ATLAS_IMAP_PASSWORD: 'x' })).toThrow(/--limit must be a whole number above 0/);
  });

  it('label each folder, spam first, named by account and folder', () => {
    const s = imapSources({ imap: 'imap://a@h:1143', 'spam-folder': ['Junk'], 'ham-folder': ['INBOX', 'Archive'] }, { ATLAS_IMAP_PASSWORD: 'x' });
    expect(s.map((x) => [x.label, x.describe])).toEqual([
      ['spam', 'a@h:1143/Junk'],
      ['ham', 'a@h:1143/INBOX'],
      ['ham', 'a@h:1143/Archive'],
    ]);
  });
});
