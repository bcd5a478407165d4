// A milter client that speaks as Postfix 3.7 does (the sequence in ../shared/recipes' packet trace):
// real sockets against the real door, for the unit tests. The Postfix integration test uses Postfix itself.
import { connect, type Socket } from 'node:net';
import { cstr, packet, PacketReader, type Packet } from '../../src/ingress/milter/protocol.ts';

export const POSTFIX_ACTIONS = 0x1ff;
export const POSTFIX_PROTOCOL = 0x1fffff;

export class MilterClient {
  private reader = new PacketReader();
  private queue: Packet[] = [];
  private waiters: ((p: Packet | null) => void)[] = [];
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk) => {
      for (const p of this.reader.push(chunk)) {
        const w = this.waiters.shift();
        if (w) w(p);
        else this.queue.push(p);
      }
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w(null);
    });
    socket.on('error', () => {});
  }

  static open(port: number): Promise<MilterClient> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => resolve(new MilterClient(s)));
      s.once('error', reject);
    });
  }

  send(cmd: string, data: Buffer = Buffer.alloc(0)): void {
    this.socket.write(packet(cmd, data));
  }

  /** The next reply packet, or null when the server closed the connection. */
  next(timeoutMs = 10_000): Promise<Packet | null> {
    const p = this.queue.shift();
    if (p) return Promise.resolve(p);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no milter reply in time')), timeoutMs);
      this.waiters.push((x) => {
        clearTimeout(t);
        resolve(x);
      });
    });
  }

  /** Skips "continue" replies; resolves with the next other reply, or null once the server closed. */
  async nextNotContinue(): Promise<Packet | null> {
    for (;;) {
      const p = await this.next();
      if (!p || p.cmd !== 'c') return p;
    }
  }

  /** Replies up to and including the final one of end-of-body (a, r, t, y, d). */
  async untilFinal(): Promise<Packet[]> {
    const out: Packet[] = [];
    for (;;) {
      const p = await this.next();
      if (!p) throw new Error('milter closed the connection before its final reply');
      out.push(p);
      if ('artyd'.includes(p.cmd)) return out;
    }
  }

  optneg(version = 6, actions = POSTFIX_ACTIONS, protocol = POSTFIX_PROTOCOL): void {
    const d = Buffer.alloc(12);
    d.writeUInt32BE(version, 0);
    d.writeUInt32BE(actions, 4);
    d.writeUInt32BE(protocol, 8);
    this.send('O', d);
  }

  macro(forCmd: string, macros: Record<string, string>): void {
    this.send('D', Buffer.concat([Buffer.from(forCmd), ...Object.entries(macros).map(([k, v]) => cstr(k, v))]));
  }

  connectInfo(ip: string, port = 40000): void {
    const p = Buffer.alloc(2);
    p.writeUInt16BE(port, 0);
    this.send('C', Buffer.concat([cstr(`[${ip}]`), Buffer.from('4'), p, cstr(ip)]));
  }

  /** One message as Postfix sends it: envelope, headers one by one, body, end-of-body. */
  message(m: { from: string; rcpt: string[]; headers: [string, string][]; body: string; queueId?: string }): void {
    this.macro('M', { '{mail_addr}': m.from });
    this.send('M', cstr(`<${m.from}>`, 'size=100'));
    for (const r of m.rcpt) {
      this.macro('R', { '{rcpt_addr}': r, ...(m.queueId ? { i: m.queueId } : {}) });
      this.send('R', cstr(`<${r}>`));
    }
    this.send('T');
    for (const [n, v] of m.headers) this.send('L', cstr(n, v));
    this.send('N');
    const body = Buffer.from(m.body.replace(/\r?\n/g, '\r\n'), 'latin1');
    for (let i = 0; i < body.length; i += 65535) this.send('B', body.subarray(i, i + 65535));
    this.send('E');
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Splits a fixture .eml into the header pairs and body a milter sees. */
export function splitMessage(text: string): { headers: [string, string][]; body: string } {
  const t = text.replace(/\r\n/g, '\n');
  const cut = t.indexOf('\n\n');
  const head = t.slice(0, cut < 0 ? t.length : cut);
  const body = cut < 0 ? '' : t.slice(cut + 2);
  const headers: [string, string][] = [];
  for (const line of head.split('\n')) {
    if (/^[ \t]/.test(line) && headers.length) headers[headers.length - 1]![1] += '\n' + line;
    else {
      const i = line.indexOf(':');
      if (i > 0) headers.push([line.slice(0, i), line.slice(i + 1).replace(/^ /, '')]);
    }
  }
  return { headers, body };
}
