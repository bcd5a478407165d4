import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { limits } from '../../src/core/limits.ts';
import { base64Bytes, decodeWords, headerText, parseMessage, qpBytes } from '../../src/core/parse.ts';

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../fixtures/${name}`, import.meta.url)));
const bytes = (s: string) => new TextEncoder().encode(s);

describe('parseMessage', () => {
  it('walks nested multiparts, decodes QP and base64 in their charsets, and lists attachments', () => {
    const m = parseMessage(fixture('classify-mime.eml'));
    expect(m.subject).toBe('Grüße aus München');
    expect(headerText(m.headers.find((h) => h.name === 'from')!.value)).toBe('Jürgen Müller <juergen@example.de>');
    const plain = m.parts.find((p) => !p.html)!;
    expect(plain.text).toContain('Schöne Grüße, das Treffen ist am Montag. Ein sehr langer Satz der umbrochen wurde.');
    expect(m.parts.find((p) => p.html)!.text).toBe('<p>Schöne Grüße, das Treffen ist am <i>Montag</i>.</p>');
    expect(m.attachments).toEqual([{ type: 'application/pdf', name: 'agenda.pdf' }]);
    // The forwarded message's text is read; its headers do not replace the outer ones.
    expect(m.parts.some((p) => p.text.includes('zanzibarinner'))).toBe(true);
    expect(m.headers.find((h) => h.name === 'subject')!.value).toContain('ISO-8859-1');
    expect(m.partCount).toBe(7);
    expect(m.defects).toEqual([]);
  });

  it('skips an mbox From line and reads raw 8-bit UTF-8 headers', () => {
    const m = parseMessage(bytes('From someone Mon Mar  2 10:00:00 2026\nSubject: cartão grátis\n\nbody\n'));
    expect(m.subject).toBe('cartão grátis');
    expect(m.headers.map((h) => h.name)).toEqual(['subject']);
    expect(m.parts).toEqual([{ html: false, text: 'body\n' }]);
  });

  it('reads unlabelled 8-bit text as UTF-8 when valid, else as windows-1252', () => {
    const latin = new Uint8Array([...bytes('Subject: x\r\n\r\ncaf'), 0xe9]);
    expect(parseMessage(latin).parts[0]!.text).toBe('café');
    expect(parseMessage(bytes('Content-Type: text/plain; charset=us-ascii\r\n\r\ncafé')).parts[0]!.text).toBe('café');
  });

  it('decodes RFC 2047 words, joining adjacent ones and leaving broken ones alone', () => {
    expect(decodeWords('=?utf-8?q?caf=C3=A9?= =?utf-8?b?IGNsdWI=?=')).toBe('café club');
    expect(decodeWords('=?x-nonsense?q?abc?=')).toBe('=?x-nonsense?q?abc?=');
  });

  it('is lenient with broken base64 and quoted-printable', () => {
    expect(new TextDecoder().decode(base64Bytes('aGVs\r\n!!bG8=\r\n'))).toBe('hello');
    expect(new TextDecoder().decode(qpBytes('a=3Db=ZZc=\r\nd'))).toBe('a=b=ZZcd');
  });
});

describe('parseMessage on hostile input (never throws, stays bounded)', () => {
  it('stops descending past the MIME depth limit', () => {
    let msg = '';
    const depth = 200;
    for (let i = 0; i < depth; i++) msg += `Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\n--b${i}\r\n`;
    msg += 'Content-Type: text/plain\r\n\r\ndeep\r\n';
    const m = parseMessage(bytes(msg));
    expect(m.defects).toContain('depth');
    expect(m.partCount).toBeLessThanOrEqual(limits.maxMimeDepth + 1);
  });

  it('caps the part count', () => {
    let msg = 'Content-Type: multipart/mixed; boundary=x\r\n\r\n';
    for (let i = 0; i < limits.maxMimeParts + 100; i++) msg += `--x\r\nContent-Type: text/plain\r\n\r\npart ${i}\r\n`;
    const m = parseMessage(bytes(msg + '--x--\r\n'));
    expect(m.partCount).toBe(limits.maxMimeParts);
    expect(m.defects).toContain('parts');
  });

  it('keeps the header count bounded with 10,000 headers', () => {
    const m = parseMessage(bytes('X-A: 1\r\n'.repeat(10_000) + 'Subject: late\r\n\r\nbody'));
    expect(m.headers.length).toBe(limits.maxHeaderCount);
  });

  it('survives NUL bytes, unknown charsets, truncation and missing boundaries', () => {
    const nul = parseMessage(bytes('Subject: a\0b\r\nContent-Type: text/plain; charset=x-unknown-42\r\n\r\nhel\0lo'));
    expect(nul.parts[0]!.text).toBe('hel lo');
    expect(nul.defects).toContain('charset');
    const cut = parseMessage(bytes('Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\nPGI+aGk8L2'));
    expect(cut.parts[0]!.text).toBe('<b>hi</');
    expect(cut.defects).toContain('unterminated');
    expect(parseMessage(bytes('Content-Type: multipart/mixed\r\n\r\nno boundary')).defects).toContain('boundary');
    expect(parseMessage(new Uint8Array(0)).parts).toEqual([{ html: false, text: '' }]);
  });

  it('bounds decoded text by limits.maxTextBytes', () => {
    const big = 'Content-Type: text/plain\r\n\r\n' + 'word '.repeat(limits.maxTextBytes / 2);
    const m = parseMessage(bytes(big));
    expect(m.parts[0]!.text.length).toBeLessThanOrEqual(limits.maxTextBytes);
  });
});
