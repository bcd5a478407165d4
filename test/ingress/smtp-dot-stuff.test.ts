// DATA encoding: checked byte for byte against nodemailer's DataStream (the encoder the re-injection
// client used before), over hand-picked edge cases and many random messages built from the bytes that
// matter (CR, LF, dot, other).
import { Readable } from 'node:stream';
import DataStream from 'nodemailer/lib/smtp-connection/data-stream';
import { expect, it } from 'vitest';
import { dotStuff } from '../../src/ingress/smtp/dot-stuff.ts';

async function reference(raw: Buffer): Promise<Buffer> {
  const out: Buffer[] = [];
  const stream = Readable.from([raw]).pipe(new DataStream());
  for await (const chunk of stream) out.push(chunk as Buffer);
  return Buffer.concat(out);
}

const ours = (raw: Buffer) => Buffer.concat(dotStuff(raw));

it.each([
  ['plain CRLF text', 'Subject: x\r\n\r\nhello\r\n'],
  ['a dot line, and a dot first', '.first\r\nmid\r\n.\r\n..two\r\nend'],
  ['bare LF everywhere', 'a\nb\n.c\n\n'],
  ['bare CR, before a dot and at the end', 'a\rb\r.c\r\nd\r'],
  ['CR LF split by a dot', 'x\r.\n.y'],
  ['empty', ''],
  ['only a dot', '.'],
])('encodes %s as nodemailer does', async (_name, text) => {
  const raw = Buffer.from(text, 'latin1');
  expect(ours(raw).toString('latin1')).toBe((await reference(raw)).toString('latin1'));
});

it('encodes 2,000 random messages as nodemailer does', async () => {
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const alphabet = [13, 10, 46, 97, 0xe9];
  for (let n = 0; n < 2000; n++) {
    const raw = Buffer.from(Array.from({ length: Math.floor(rand() * 40) }, () => alphabet[Math.floor(rand() * alphabet.length)]));
    expect(ours(raw).equals(await reference(raw)), JSON.stringify(raw.toString('latin1'))).toBe(true);
  }
});

it('does not copy a clean CRLF message: the first piece is the message itself', () => {
  const raw = Buffer.from('Subject: x\r\n\r\nbody\r\n');
  const pieces = dotStuff(raw);
  expect(pieces).toHaveLength(2);
  expect(pieces[0]).toBe(raw);
  expect(pieces[1].toString()).toBe('.\r\n');
});
