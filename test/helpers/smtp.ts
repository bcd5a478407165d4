// A raw SMTP client (so tests see the exact reply line, and can send XFORWARD) and a recording sink built
// on smtp-server that plays the next hop, with knobs to refuse, delay or drop.
import net from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface Reply {
  code: number;
  text: string;
}

export interface SendOptions {
  from: string;
  to: string[];
  data: Buffer | string;
  /** Sent after EHLO, e.g. "XFORWARD ADDR=203.0.113.9 HELO=mx.example". */
  xforward?: string;
  timeoutMs?: number;
}

/** One SMTP transaction; resolves with the reply that ended it (the DATA answer, or the first refusal). */
export function smtpSend(port: number, o: SendOptions): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`SMTP transaction on port ${port} timed out`));
    }, o.timeoutMs ?? 20_000);
    let buf = '';
    const steps: { send?: string | Buffer; expect: number }[] = [
      { expect: 220 },
      { send: 'EHLO client.test\r\n', expect: 250 },
      ...(o.xforward ? [{ send: o.xforward + '\r\n', expect: 250 }] : []),
      { send: `MAIL FROM:<${o.from}>\r\n`, expect: 250 },
      ...o.to.map((r) => ({ send: `RCPT TO:<${r}>\r\n`, expect: 250 })),
      { send: 'DATA\r\n', expect: 354 },
      { send: dotStuff(o.data), expect: 250 },
    ];
    let step = 0;
    const finish = (r: Reply) => {
      clearTimeout(timer);
      sock.end('QUIT\r\n');
      resolve(r);
    };
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      for (;;) {
        const m = /^(\d{3})([ -])(.*)\r?\n/m.exec(buf);
        if (!m) return;
        buf = buf.slice(m.index + m[0].length);
        if (m[2] === '-') continue;
        const reply = { code: Number(m[1]), text: m[3].trimEnd() };
        const cur = steps[step];
        if (!cur) return;
        if (reply.code !== cur.expect || step === steps.length - 1) return finish(reply);
        step++;
        const next = steps[step];
        if (next.send !== undefined) sock.write(next.send);
      }
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

function dotStuff(data: Buffer | string): Buffer {
  let s = Buffer.isBuffer(data) ? data.toString('latin1') : Buffer.from(data, 'utf8').toString('latin1');
  s = s.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
  if (!s.endsWith('\r\n')) s += '\r\n';
  return Buffer.from(s + '.\r\n', 'latin1');
}

export interface SinkMessage {
  from: string;
  to: string[];
  raw: Buffer;
  xForward: Record<string, string>;
}

export interface SinkOptions {
  /** Reply for RCPT of this address: a code ≥ 400 refuses it. */
  rcptCode?: (address: string) => number | undefined;
  /** Reply code for the data (default 250). */
  dataCode?: () => number;
  /** Delay before answering the data, ms. */
  delayMs?: number;
}

export interface Sink {
  port: number;
  messages: SinkMessage[];
  close(): Promise<void>;
}

export async function startSink(options: SinkOptions = {}): Promise<Sink> {
  const messages: SinkMessage[] = [];
  const server = new SMTPServer({
    logger: false,
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    disableReverseLookup: true,
    useXForward: true,
    onRcptTo(addr, _session, cb) {
      const code = options.rcptCode?.(addr.address);
      if (code && code >= 400) return cb(Object.assign(new Error(`${code === 550 ? '5.1.1' : '4.2.0'} refused by sink`), { responseCode: code }));
      cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const answer = () => {
          const code = options.dataCode?.() ?? 250;
          if (code >= 400) return cb(Object.assign(new Error('refused by sink'), { responseCode: code }));
          messages.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            raw: Buffer.concat(chunks),
            xForward: Object.fromEntries([...(session.xForward ?? new Map())].map(([k, v]) => [k, String(v)])),
          });
          cb(null, `2.0.0 Ok: sink id ${messages.length}`);
        };
        if (options.delayMs) setTimeout(answer, options.delayMs);
        else answer();
      });
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const addr = server.server.address() as net.AddressInfo;
  return {
    port: addr.port,
    messages,
    close: () =>
      new Promise<void>((r) => {
        for (const c of [...server.connections]) c.close();
        server.close(() => r());
      }),
  };
}
