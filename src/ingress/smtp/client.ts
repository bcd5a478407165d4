// One SMTP client connection to the next hop, kept open for many transactions (the pool is reinject.ts).
// It speaks only what re-injection needs: EHLO (HELO when refused), XFORWARD, MAIL/RCPT/DATA with
// PIPELINING (RFC 2920) when offered — the envelope and DATA go out in one write, so a message costs two
// round trips — SIZE, 8BITMIME and SMTPUTF8 parameters, and QUIT. Every failure rejects with an
// SmtpClientError carrying the server's reply when there was one; the connection is then unusable and
// the caller drops it, because its protocol state is unknown.
import net from 'node:net';
import { dotStuff } from './dot-stuff.ts';

export interface SmtpReplyLine {
  code: number;
  /** The whole reply, continuation lines joined with a space (so it fits on one reply line of ours). */
  text: string;
  /** The lines after the code and its separator, for EHLO keyword parsing. */
  lines: string[];
}

export class SmtpClientError extends Error {
  readonly response?: string;
  readonly responseCode?: number;
  readonly code?: string;
  constructor(message: string, o: { response?: string; responseCode?: number; code?: string; cause?: unknown } = {}) {
    super(message, o.cause === undefined ? undefined : { cause: o.cause });
    this.response = o.response;
    this.responseCode = o.responseCode;
    this.code = o.code;
  }
}

export interface SmtpEnvelope {
  from: string;
  to: string[];
}

export interface TransactionResult {
  /** The reply to the data, e.g. "250 2.0.0 Ok: queued as 4Xyz". */
  response: string;
  /** Recipients the server refused (the data went to the others), with the first refusal. */
  rejected: string[];
  rejectedReply?: SmtpReplyLine;
}

// Addresses go into command lines: anything that could end or extend a command is refused outright.
const UNSAFE_ADDRESS = /[\x00-\x1f\x7f<>]/;
const NON_ASCII = /[^\x00-\x7f]/;
// Far above RFC 5321's 512-octet reply line: a peer that sends this much without a line end is not SMTP.
const MAX_REPLY_BYTES = 64 * 1024;

export class SmtpClientConnection {
  /** EHLO keywords the server offered, upper-case (e.g. PIPELINING, XFORWARD, SIZE). */
  readonly extensions = new Set<string>();
  /** Set once the connection failed or closed; no further transaction may use it. */
  broken = false;
  private readonly socket: net.Socket;
  private buffer = '';
  private partial: string[] = [];
  private readonly replies: SmtpReplyLine[] = [];
  private waiting: { count: number; resolve: (r: SmtpReplyLine[]) => void; reject: (e: Error) => void } | null = null;
  private failure: SmtpClientError | null = null;
  private closed = false;
  private readonly closeListeners: (() => void)[] = [];

  private constructor(host: string, port: number, timeoutMs: number) {
    this.socket = net.connect({ host, port });
    this.socket.setNoDelay(true);
    // Covers connecting, the greeting and every reply; an idle pooled connection that times out just closes.
    this.socket.setTimeout(timeoutMs, () => this.fail(new SmtpClientError(`no reply within ${timeoutMs} ms`, { code: 'ETIMEDOUT' })));
    this.socket.setEncoding('latin1');
    this.socket.on('data', (d: string) => this.onData(d));
    this.socket.on('error', (e: NodeJS.ErrnoException) => this.fail(new SmtpClientError(e.message, { code: e.code, cause: e })));
    this.socket.on('close', () => this.fail(new SmtpClientError('connection closed', { code: 'ECONNRESET' })));
  }

  /** Connects, reads the greeting and introduces us; rejects when any of it fails. */
  static async open(o: { host: string; port: number; name: string; timeoutMs: number }): Promise<SmtpClientConnection> {
    const c = new SmtpClientConnection(o.host, o.port, o.timeoutMs);
    try {
      const [greeting] = await c.read(1);
      if (greeting.code !== 220) throw c.refused('greeting', greeting);
      let [hello] = await c.command(`EHLO ${o.name}`);
      if (hello.code === 250) {
        for (const line of hello.lines.slice(1)) c.extensions.add(line.split(' ', 1)[0].toUpperCase());
      } else {
        [hello] = await c.command(`HELO ${o.name}`);
        if (hello.code !== 250) throw c.refused('HELO', hello);
      }
      return c;
    } catch (e) {
      c.destroy();
      throw e;
    }
  }

  onClose(listener: () => void): void {
    this.closeListeners.push(listener);
  }

  /**
   * One transaction: `xforward` (a whole XFORWARD command line, Postfix's extension) when given, the
   * envelope, then the data. Resolves on the server's 250 to the data, listing any refused recipients.
   */
  async send(envelope: SmtpEnvelope, raw: Buffer, xforward?: string): Promise<TransactionResult> {
    if (this.broken) throw this.failure ?? new SmtpClientError('connection closed');
    if (this.replies.length > 0) {
      // A reply nobody asked for (a 421 before the server hangs up): it must not be read as ours.
      throw this.abandon('the connection', this.replies[0]);
    }
    if (envelope.to.length === 0) throw new SmtpClientError('no recipients');
    for (const a of [envelope.from, ...envelope.to]) {
      if (UNSAFE_ADDRESS.test(a)) throw new SmtpClientError(`unsafe address ${JSON.stringify(a)}`);
    }
    const params: string[] = [];
    if (this.extensions.has('SIZE')) params.push(`SIZE=${raw.length}`);
    if (this.extensions.has('8BITMIME')) params.push('BODY=8BITMIME');
    if (this.extensions.has('SMTPUTF8') && [envelope.from, ...envelope.to].some((a) => NON_ASCII.test(a))) params.push('SMTPUTF8');
    const commands = [
      ...(xforward ? [xforward] : []),
      `MAIL FROM:<${envelope.from}>${params.length ? ' ' + params.join(' ') : ''}`,
      ...envelope.to.map((r) => `RCPT TO:<${r}>`),
      'DATA',
    ];
    let replies: SmtpReplyLine[];
    if (this.extensions.has('PIPELINING')) replies = await this.command(commands.join('\r\n'), commands.length);
    else {
      // Without PIPELINING each command waits for its reply, and the first refusal (other than a
      // recipient's) ends the transaction.
      replies = [];
      for (const cmd of commands) {
        const [r] = await this.command(cmd);
        replies.push(r);
        if (r.code >= 400 && !cmd.startsWith('RCPT ')) break;
      }
    }
    let at = 0;
    if (xforward) {
      const r = replies[at++];
      if (r.code !== 250) throw this.abandon('XFORWARD', r);
    }
    const mail = replies[at++];
    if (mail.code !== 250) throw this.abandon('MAIL FROM', mail);
    const rejected: string[] = [];
    let rejectedReply: SmtpReplyLine | undefined;
    for (const rcpt of envelope.to) {
      const r = replies[at++];
      if (r === undefined || r.code >= 300) {
        rejected.push(rcpt);
        rejectedReply ??= r;
      }
    }
    const data = replies[at];
    if (data === undefined || data.code !== 354) {
      // Every recipient refused is the likely story; that refusal says more than the DATA reply.
      throw this.abandon(rejected.length === envelope.to.length && rejectedReply ? 'RCPT TO' : 'DATA', rejectedReply ?? data ?? mail);
    }
    const pieces = dotStuff(raw);
    // A few pieces go out as one writev; many (a bare-LF message) are cheaper joined once.
    if (pieces.length > 8) this.socket.write(Buffer.concat(pieces));
    else {
      this.socket.cork();
      for (const piece of pieces) this.socket.write(piece);
      this.socket.uncork();
    }
    const [done] = await this.read(1);
    if (done.code !== 250) throw this.abandon('the data', done);
    return { response: done.text, rejected, rejectedReply };
  }

  /** Says goodbye without waiting for the answer; the socket closes when the server hangs up. */
  quit(): void {
    if (this.broken) return;
    this.broken = true;
    this.socket.end('QUIT\r\n');
  }

  destroy(): void {
    this.broken = true;
    this.socket.destroy();
  }

  /** Writes one line (or pipelined lines) and waits for that many replies. */
  private command(line: string, replies = 1): Promise<SmtpReplyLine[]> {
    const read = this.read(replies);
    this.socket.write(line + '\r\n', 'utf8');
    return read;
  }

  private read(count: number): Promise<SmtpReplyLine[]> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.replies.length >= count) return Promise.resolve(this.replies.splice(0, count));
    return new Promise((resolve, reject) => {
      this.waiting = { count, resolve, reject };
    });
  }

  private onData(d: string): void {
    this.buffer += d;
    for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, nl).replace(/\r$/, '');
      this.buffer = this.buffer.slice(nl + 1);
      const code = Number(line.slice(0, 3));
      const sep = line.charAt(3);
      if (!/^[2-5]\d\d$/.test(line.slice(0, 3)) || (sep !== ' ' && sep !== '-' && sep !== '')) {
        this.fail(new SmtpClientError(`not an SMTP reply: ${JSON.stringify(line.slice(0, 100))}`, { code: 'EPROTOCOL' }));
        return;
      }
      this.partial.push(line.slice(4));
      if (sep === '-') continue;
      const lines = this.partial;
      this.partial = [];
      this.replies.push({ code, text: `${code} ${lines.join(' ')}`.trimEnd(), lines });
    }
    if (this.buffer.length > MAX_REPLY_BYTES) this.fail(new SmtpClientError('reply line too long', { code: 'EPROTOCOL' }));
    const w = this.waiting;
    if (w && this.replies.length >= w.count) {
      this.waiting = null;
      w.resolve(this.replies.splice(0, w.count));
    }
  }

  private fail(e: SmtpClientError): void {
    this.broken = true;
    this.failure ??= e;
    const w = this.waiting;
    this.waiting = null;
    w?.reject(this.failure);
    if (!this.socket.destroyed) this.socket.destroy();
    if (this.closed) return;
    this.closed = true;
    for (const l of this.closeListeners.splice(0)) l();
  }

  private refused(what: string, r: SmtpReplyLine): SmtpClientError {
    return new SmtpClientError(`refused ${what}`, { response: r.text, responseCode: r.code });
  }

  /** A refusal mid-transaction: the connection is dropped, which also aborts a DATA the server opened. */
  private abandon(what: string, r: SmtpReplyLine): SmtpClientError {
    const e = this.refused(what, r);
    this.fail(e);
    return e;
  }
}
