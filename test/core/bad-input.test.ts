// Hostile and broken input: each gets a verdict (or a clear error with a code), never a crash or a hang.
import { describe, expect, it } from 'vitest';
import { limits } from '../../src/core/limits.ts';
import { quickLook } from '../../src/core/look.ts';
import { scan } from '../../src/core/scan.ts';
import { bytes, testEnv } from '../helpers/env.ts';

const env = testEnv();
const verdictOf = (raw: Uint8Array) => scan({ raw }, env);

describe('bad input', () => {
  it('empty input is a clear error', async () => {
    await expect(verdictOf(new Uint8Array())).rejects.toMatchObject({ code: 'EMALFORMED', message: 'the message is empty' });
  });

  it('no header/body separator: headers only, still a verdict', async () => {
    const raw = bytes('From: a@b.example\r\nSubject: no body');
    expect(quickLook(raw).noSeparator).toBe(true);
    expect((await verdictOf(raw)).action).toBe('accept');
  });

  it('text with no headers at all', async () => {
    const v = await verdictOf(bytes('just some words\nand more words\n'));
    expect(v.symbols.map((s) => s.name)).toEqual(expect.arrayContaining(['MISSING_FROM', 'MISSING_DATE', 'MISSING_MID']));
  });

  it('a 1 MB header line is cut, not choked on', async () => {
    const raw = bytes(`Subject: ${'A'.repeat(1024 * 1024)}\r\nFrom: a@b.example\r\n\r\nbody\r\n`);
    const look = quickLook(raw);
    expect(look.subject.length).toBeLessThanOrEqual(limits.maxHeaderValueBytes);
    expect((await verdictOf(raw)).action).toBeDefined();
  });

  it('NUL bytes and binary junk', async () => {
    const junk = new Uint8Array(64 * 1024);
    for (let i = 0; i < junk.length; i++) junk[i] = (i * 7919) & 0xff;
    expect((await verdictOf(junk)).action).toBeDefined();
    const nul = bytes('From: a@b.example\r\nSubject: he\u0000llo\r\n\r\nbo\u0000dy\r\n');
    expect((await verdictOf(nul)).action).toBe('accept');
  });

  it('broken encodings in headers', async () => {
    const raw = bytes('From: =?utf-8?B?!!!not-base64?= <a@b.example>\r\nSubject: =?bogus-charset?Q?=ZZ=E9?=\r\n\r\n\xff\xfe\r\n');
    const v = await verdictOf(raw);
    expect(v.action).toBe('accept');
  });

  it('10,000 headers stay cheap: only the first ones are read', async () => {
    const lines = Array.from({ length: 10_000 }, (_, i) => `X-H${i}: v${i}`).join('\r\n');
    const raw = bytes(`${lines}\r\nFrom: a@b.example\r\n\r\nbody\r\n`);
    const look = quickLook(raw);
    expect(look.headerCount).toBe(limits.maxHeaderCount);
    expect((await verdictOf(raw)).action).toBeDefined();
  });

  it('deep MIME nesting does not recurse in the quick look', async () => {
    let body = 'leaf\r\n';
    for (let i = 0; i < 5000; i++) body = `--b${i}\r\nContent-Type: multipart/mixed; boundary="b${i + 1}"\r\n\r\n${body}--b${i}--\r\n`;
    const raw = bytes(`From: a@b.example\r\nContent-Type: multipart/mixed; boundary="b0"\r\n\r\n${body}`);
    expect((await verdictOf(raw)).action).toBeDefined();
  });

  it('a truncated message', async () => {
    const raw = bytes('From: a@b.example\r\nSubject: cut\r\nContent-Type: multipart/mixed; boundary="x"\r\n\r\n--x\r\nContent-Type: text/pla');
    expect((await verdictOf(raw)).action).toBe('accept');
  });

  it('a header block larger than the limit is read up to the limit', async () => {
    const big = 'X-Pad: ' + 'p'.repeat(1000) + '\r\n';
    const raw = bytes(big.repeat(Math.ceil(limits.maxHeaderBytes / big.length) + 10) + 'Subject: late\r\n\r\nbody');
    const look = quickLook(raw);
    expect(look.subject).toBe('');
    expect((await verdictOf(raw)).action).toBeDefined();
  });
});
