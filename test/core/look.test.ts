import { describe, expect, it } from 'vitest';
import { addressOf, decodeWords, quickLook } from '../../src/core/look.ts';
import { parseCidr } from '../../src/core/net.ts';
import { bytes, fixture } from '../helpers/env.ts';

describe('quickLook', () => {
  it('reads the envelope facts from the header block', () => {
    const look = quickLook(fixture('ham-plain.eml'));
    expect(look.fromAddress).toBe('alice@example.org');
    expect(look.sender).toBe('alice@example.org');
    expect(look.senderDomain).toBe('example.org');
    expect(look.subject).toBe("Minutes of Thursday's meeting");
    expect(look.messageId).toBe('<20261123091200.12345@mail.example.org>');
    expect(look.listId).toBe('<team.example.org>');
    expect(look.relayIp).toBe('198.51.100.7');
    expect(look.noSeparator).toBe(false);
    expect(look.contentKey).toMatch(/^[0-9a-f]{16}$/);
  });

  it('prefers the envelope the door saw over the headers', () => {
    const look = quickLook(fixture('ham-plain.eml'), { ip: '192.0.2.1', from: '<Bounce@Lists.Example.org>', rcpt: ['bob@example.net'] });
    expect(look.relayIp).toBe('192.0.2.1');
    expect(look.sender).toBe('bounce@lists.example.org');
    expect(look.senderDomain).toBe('lists.example.org');
    expect(look.recipients).toEqual(['bob@example.net']);
  });

  it('skips trusted relays in the Received chain', () => {
    const raw = bytes(
      'Received: from edge.example.net (edge.example.net [10.0.0.5]) by mx.example.net\r\n' +
        'Received: from evil.example (evil.example [203.0.113.66]) by edge.example.net\r\n' +
        'From: a@b.example\r\nSubject: x\r\n\r\nbody\r\n',
    );
    const trusted = [parseCidr('10.0.0.0/8')!];
    expect(quickLook(raw, {}, { trustedRelays: trusted }).relayIp).toBe('203.0.113.66');
    expect(quickLook(raw).relayIp).toBe('10.0.0.5');
  });

  it('gives the same content key to a resent campaign and a different one to other content', () => {
    const a = bytes('Message-ID: <1@x>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nFrom: s@x.example\r\nSubject: Deal\r\n\r\nBuy now\r\n');
    const b = bytes('Message-ID: <2@x>\nDate: Tue, 2 Jan 2024 00:00:00 +0000\nFrom: s@x.example\nSubject: Deal\n\nBuy now\r\n');
    const c = bytes('Message-ID: <3@x>\r\nFrom: s@x.example\r\nSubject: Deal\r\n\r\nBuy later\r\n');
    expect(quickLook(a).contentKey).toBe(quickLook(b).contentKey);
    expect(quickLook(a).contentKey).not.toBe(quickLook(c).contentKey);
  });

  it('decodes RFC 2047 subjects in several charsets', () => {
    expect(decodeWords('=?UTF-8?B?SGVsbG8g8J+Mjg==?=')).toBe('Hello 🌎');
    expect(decodeWords('=?iso-8859-1?Q?Caf=E9_cr=E8me?=')).toBe('Café crème');
    expect(decodeWords('=?utf-8?q?a?= =?utf-8?q?b?=')).toBe('ab');
    expect(decodeWords('=?x-unknown?B?aGk=?=')).toBe('hi');
  });

  it('extracts addresses from display forms', () => {
    expect(addressOf('"Doe, John" <John.Doe@Example.COM>')).toBe('john.doe@example.com');
    expect(addressOf('plain@example.com (comment)')).toBe('plain@example.com');
    expect(addressOf('<>')).toBe('');
    expect(addressOf('undisclosed-recipients:;')).toBe('');
  });

  it('skips an mbox From_ line', () => {
    const look = quickLook(bytes('From someone@example.com Mon Jan  1 00:00:00 2024\nFrom: a@b.example\nSubject: s\n\nx\n'));
    expect(look.fromAddress).toBe('a@b.example');
    expect(look.headers.has('from someone@example.com mon jan  1 00')).toBe(false);
  });
});

describe('HeaderIndex', () => {
  const raw = bytes(
    'Received: from a.example (a.example [192.0.2.1]) by mx\r\n' +
      'X-Tag: one\r\n' +
      'received: from b.example\r\n' +
      '  (b.example [192.0.2.2]) by mx\r\n' +
      'RECEIVED: from c.example [192.0.2.3]\r\n' +
      'Subject : spaced name\r\n' +
      'Dear friend: not a header\r\n' +
      '\r\n' +
      'body\r\n',
  );

  it('finds every field of a name in order, whatever its case, unfolded', () => {
    const h = quickLook(raw).headers;
    expect(h.count).toBe(5);
    expect(h.get('received')).toEqual(['from a.example (a.example [192.0.2.1]) by mx', 'from b.example (b.example [192.0.2.2]) by mx', 'from c.example [192.0.2.3]']);
    expect(h.first('received')).toBe('from a.example (a.example [192.0.2.1]) by mx');
    expect(h.get('subject')).toEqual(['spaced name']);
    expect(h.has('x-tag')).toBe(true);
    expect(h.has('x-ta')).toBe(false);
    expect(h.has('dear friend')).toBe(false);
    expect(h.get('missing')).toBeUndefined();
    expect(h.first('missing')).toBeUndefined();
    expect([...h.names()]).toEqual(['received', 'x-tag', 'subject']);
  });

  it('visits values only until asked to stop', () => {
    const h = quickLook(raw).headers;
    const seen: string[] = [];
    expect(h.some('received', (v) => (seen.push(v), v.includes('192.0.2.2')))).toBe(true);
    expect(seen).toHaveLength(2);
    expect(h.some('x-tag', () => false)).toBe(false);
    expect(h.some('missing', () => true)).toBe(false);
  });
});

describe('quickLook header end', () => {
  it('finds the blank line at every byte alignment, LF and CRLF, past newlines that share its word', () => {
    for (const nl of ['\n', '\r\n']) {
      for (let pad = 0; pad < 8; pad++) {
        // "\n\x0b" makes the bit trick flag a byte above a real newline falsely.
        const head = `X-Pad: ${'y'.repeat(pad)}${nl}X-Odd: a\x0b${nl}\x0bb${nl}S: 1${nl}`;
        const raw = bytes(`${head}${nl}body${nl}\n\nmore`);
        const look = quickLook(raw);
        expect(look.noSeparator).toBe(false);
        expect(look.bodyOffset).toBe(head.length + nl.length);
        expect(look.headers.first('s')).toBe('1');
      }
    }
  });
});
