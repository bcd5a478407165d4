// The re-injection client's protocol, against smtp-server (with and without PIPELINING) and against
// scripted peers on a real socket for the replies smtp-server never gives (HELO only, a stray 421).
import net from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterEach, expect, it } from 'vitest';
import { SmtpClientConnection } from '../../src/ingress/smtp/client.ts';

let cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

interface Got {
  from: string;
  to: string[];
  raw: Buffer;
  size?: unknown;
  body?: unknown;
}

async function sink(o: { pipelining: boolean }): Promise<{ port: number; got: Got[] }> {
  const got: Got[] = [];
  const server = new SMTPServer({
    logger: false,
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    disableReverseLookup: true,
    hidePIPELINING: !o.pipelining,
    size: 1024 * 1024,
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const args = (session.envelope.mailFrom || { args: {} }).args as Record<string, unknown>;
        got.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks),
          size: args.SIZE,
          body: args.BODY,
        });
        cb(null, `2.0.0 Ok: id ${got.length}`);
      });
    },
  } as ConstructorParameters<typeof SMTPServer>[0]);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanup.push(() => new Promise<void>((r) => server.close(() => r())));
  return { port: (server.server.address() as net.AddressInfo).port, got };
}

/** A peer that answers each line it reads with the next scripted reply (a function of the line). */
async function scripted(answer: (line: string) => string | null): Promise<{ port: number; lines: string[] }> {
  const lines: string[] = [];
  const server = net.createServer((sock) => {
    sock.write('220 scripted ready\r\n');
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      for (let nl = buf.indexOf('\r\n'); nl >= 0; nl = buf.indexOf('\r\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        lines.push(line);
        const reply = answer(line);
        if (reply !== null) sock.write(reply);
      }
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanup.push(() => new Promise<void>((r) => server.close(() => r())));
  return { port: (server.address() as net.AddressInfo).port, lines };
}

const raw = Buffer.from('Subject: t\r\n\r\n.dot line\r\nbody\r\n');

it.each([true, false])('sends the envelope and the body byte for byte (PIPELINING offered: %s), with SIZE and BODY', async (pipelining) => {
  const s = await sink({ pipelining });
  const c = await SmtpClientConnection.open({ host: '127.0.0.1', port: s.port, name: 'filter.test', timeoutMs: 5000 });
  cleanup.push(() => c.destroy());
  expect(c.extensions.has('PIPELINING')).toBe(pipelining);
  for (let i = 0; i < 3; i++) {
    const r = await c.send({ from: i === 0 ? '' : 'a@example.org', to: ['B@Example.NET', 'c@example.net'] }, raw);
    expect(r).toMatchObject({ response: `250 2.0.0 Ok: id ${i + 1}`, rejected: [] });
  }
  expect(s.got.map((g) => [g.from, g.to])).toEqual([
    ['', ['B@Example.NET', 'c@example.net']],
    ['a@example.org', ['B@Example.NET', 'c@example.net']],
    ['a@example.org', ['B@Example.NET', 'c@example.net']],
  ]);
  expect(s.got.every((g) => g.raw.equals(raw))).toBe(true);
  expect(s.got[0]).toMatchObject({ size: String(raw.length), body: '8BITMIME' });
});

it('falls back to HELO when EHLO is refused, and then sends no extension parameters', async () => {
  const p = await scripted((line) => {
    if (line.startsWith('EHLO')) return '502 5.5.1 no EHLO here\r\n';
    if (line === 'DATA') return '354 go\r\n';
    if (line === '.') return '250 queued\r\n';
    if (/^(HELO|MAIL|RCPT)/.test(line)) return '250 ok\r\n';
    return null;
  });
  const c = await SmtpClientConnection.open({ host: '127.0.0.1', port: p.port, name: 'filter.test', timeoutMs: 5000 });
  cleanup.push(() => c.destroy());
  const r = await c.send({ from: 'a@example.org', to: ['b@example.net'] }, raw);
  expect(r.response).toBe('250 queued');
  expect(p.lines.slice(0, 4)).toEqual(['EHLO filter.test', 'HELO filter.test', 'MAIL FROM:<a@example.org>', 'RCPT TO:<b@example.net>']);
});

it('reports refused recipients but still delivers to the others; refuses to go on when all are refused', async () => {
  const p = await scripted((line) => {
    if (line.startsWith('EHLO')) return '250-scripted\r\n250 PIPELINING\r\n';
    if (line.startsWith('RCPT TO:<gone')) return '550 5.1.1 no such user\r\n';
    if (line === 'DATA') return p.lines.some((l) => l.startsWith('RCPT TO:<ok')) ? '354 go\r\n' : '554 5.5.1 no valid recipients\r\n';
    if (line === '.') return '250 queued\r\n';
    if (/^(MAIL|RCPT)/.test(line)) return '250 ok\r\n';
    return null;
  });
  const c = await SmtpClientConnection.open({ host: '127.0.0.1', port: p.port, name: 'f', timeoutMs: 5000 });
  cleanup.push(() => c.destroy());
  const r = await c.send({ from: 'a@example.org', to: ['ok@example.net', 'gone@example.net'] }, raw);
  expect(r).toMatchObject({ response: '250 queued', rejected: ['gone@example.net'], rejectedReply: { code: 550 } });

  const p2 = await scripted((line) => {
    if (line.startsWith('EHLO')) return '250-scripted\r\n250 PIPELINING\r\n';
    if (line.startsWith('RCPT')) return '550 5.1.1 no such user\r\n';
    if (line === 'DATA') return '554 5.5.1 no valid recipients\r\n';
    if (line.startsWith('MAIL')) return '250 ok\r\n';
    return null;
  });
  const c2 = await SmtpClientConnection.open({ host: '127.0.0.1', port: p2.port, name: 'f', timeoutMs: 5000 });
  cleanup.push(() => c2.destroy());
  await expect(c2.send({ from: 'a@example.org', to: ['gone@example.net'] }, raw)).rejects.toMatchObject({ responseCode: 550, message: 'refused RCPT TO' });
  expect(c2.broken).toBe(true);
});

it('drops a connection on a reply nobody asked for, rather than read it as the answer to the next command', async () => {
  let sockets = 0;
  const p = await scripted((line) => {
    if (line.startsWith('EHLO')) {
      sockets++;
      // The 421 a server sends before it hangs up on an idle client, here without the hang-up.
      return '250-scripted\r\n250 PIPELINING\r\n421 4.4.2 idle too long\r\n';
    }
    return '250 ok\r\n';
  });
  const c = await SmtpClientConnection.open({ host: '127.0.0.1', port: p.port, name: 'f', timeoutMs: 5000 });
  cleanup.push(() => c.destroy());
  await expect(c.send({ from: 'a@example.org', to: ['b@example.net'] }, raw)).rejects.toMatchObject({ responseCode: 421 });
  expect(p.lines.filter((l) => l.startsWith('MAIL'))).toEqual([]);
  expect(sockets).toBe(1);
});

it('refuses addresses that would break the command line, before writing anything', async () => {
  const s = await sink({ pipelining: true });
  const c = await SmtpClientConnection.open({ host: '127.0.0.1', port: s.port, name: 'f', timeoutMs: 5000 });
  cleanup.push(() => c.destroy());
  await expect(c.send({ from: 'a@example.org>\r\nRCPT TO:<x@evil', to: ['b@example.net'] }, raw)).rejects.toThrow(/unsafe address/);
  await expect(c.send({ from: 'a@example.org', to: [] }, raw)).rejects.toThrow(/no recipients/);
  expect(s.got).toHaveLength(0);
});

it('fails a transaction whose reply does not come in time, and on a reply that is not SMTP', async () => {
  const p = await scripted((line) => (line.startsWith('EHLO') ? '250 scripted\r\n' : line.startsWith('MAIL') ? 'HTTP/1.1 400 Bad Request\r\n' : null));
  const c = await SmtpClientConnection.open({ host: '127.0.0.1', port: p.port, name: 'f', timeoutMs: 5000 });
  cleanup.push(() => c.destroy());
  await expect(c.send({ from: 'a@example.org', to: ['b@example.net'] }, raw)).rejects.toMatchObject({ code: 'EPROTOCOL' });

  const q = await scripted((line) => (line.startsWith('EHLO') ? '250 scripted\r\n' : null));
  const d = await SmtpClientConnection.open({ host: '127.0.0.1', port: q.port, name: 'f', timeoutMs: 200 });
  cleanup.push(() => d.destroy());
  await expect(d.send({ from: 'a@example.org', to: ['b@example.net'] }, raw)).rejects.toMatchObject({ code: 'ETIMEDOUT' });
});
