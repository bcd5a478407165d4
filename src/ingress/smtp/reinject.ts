// Re-injection: hands a filtered message to the next hop (Postfix's 10026 listener) over a small pool of
// kept-alive SMTP connections, keeping the envelope exactly as Postfix gave it to us.
//
// nodemailer's SMTPConnection speaks the protocol (pipelining, dot-stuffing, 8BITMIME, SMTPUTF8); the pool
// is ours rather than nodemailer's pooled transport because that transport routes through its Mailer,
// which re-parses and de-duplicates envelope addresses — an after-queue filter must pass them unchanged.
// `send` resolves only when the next hop answered 250 to the data for every recipient; anything else
// rejects with a FilterError('ENEXTHOP') so the door can answer 4xx and Postfix keeps the message.
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { FilterError } from '../../core/errors.ts';
import { limits } from '../../core/limits.ts';

export interface ReinjectOptions {
  host: string;
  port: number;
  /** Name we greet the next hop with. */
  name?: string;
  /** Connect/greeting/reply deadline, ms. */
  timeoutMs?: number;
  maxConnections?: number;
  messagesPerConnection?: number;
}

/** What the original client told Postfix, forwarded with XFORWARD when the next hop offers it. */
export interface Forwarded {
  addr?: string;
  name?: string;
  helo?: string;
  proto?: string;
  ident?: string;
  port?: number;
}

export interface ReinjectMessage {
  /** Envelope sender; '' is the null sender of bounces (MAIL FROM:<>). */
  from: string;
  to: string[];
  raw: Buffer;
  forwarded?: Forwarded;
}

export interface ReinjectResult {
  /** The next hop's final reply, e.g. "250 2.0.0 Ok: queued as 4Xyz". */
  response: string;
}

export interface Reinjector {
  send(msg: ReinjectMessage): Promise<ReinjectResult>;
  /** Waits for sends in progress, then closes every connection. New sends fail with ENEXTHOP. */
  close(): Promise<void>;
  readonly stats: { open: number; idle: number; waiting: number };
}

interface Pooled {
  conn: SMTPConnection;
  sent: number;
  broken: boolean;
  /** The next hop offered XFORWARD in its EHLO reply (Postfix: smtpd_authorized_xforward_hosts). */
  xforward: boolean;
}

const XFORWARD_METHOD = 'ATLAS-XFORWARD';

/** XFORWARD values are xtext (RFC 1891): '+', '=' and anything outside printable ASCII as +HH. */
function xtext(value: string): string {
  return value.replace(/[^\x21-\x2a\x2c-\x3c\x3e-\x7e]/g, (c) => '+' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0'));
}

function xforwardCommand(f: Forwarded): string {
  const attr = (k: string, v: string | number | undefined) => `${k}=${v === undefined || v === '' ? '[UNAVAILABLE]' : xtext(String(v))}`;
  return ['XFORWARD', attr('NAME', f.name), attr('ADDR', f.addr), attr('PORT', f.port), attr('PROTO', f.proto), attr('HELO', f.helo), attr('IDENT', f.ident)].join(' ');
}

function nextHopError(what: string, err: unknown, details: Record<string, unknown> = {}): FilterError {
  const e = err as { message?: string; responseCode?: number; response?: string; code?: string } | undefined;
  const reply = e?.response ? ` (${e.response})` : e?.message ? ` (${e.message})` : '';
  return new FilterError('ENEXTHOP', `next hop ${what}${reply}`.replace(/[\r\n]+/g, ' '), { responseCode: e?.responseCode, cause: e?.code, ...details }, { cause: err });
}

export function createReinjector(options: ReinjectOptions): Reinjector {
  const timeout = options.timeoutMs ?? limits.nextHopTimeoutMs;
  const max = options.maxConnections ?? limits.nextHopConnections;
  const perConnection = options.messagesPerConnection ?? limits.nextHopMessagesPerConnection;
  const idle: Pooled[] = [];
  const waiting: ((p: Pooled | Error) => void)[] = [];
  let open = 0;
  let busy = 0;
  let closing = false;
  let drained: (() => void) | null = null;

  const discard = (p: Pooled) => {
    open--;
    p.broken = true;
    try {
      p.conn.close();
    } catch {
      // already closed: nothing left to release
    }
  };

  const connect = (): Promise<Pooled> =>
    new Promise((resolve, reject) => {
      const conn = new SMTPConnection({
        host: options.host,
        port: options.port,
        name: options.name,
        ignoreTLS: true,
        connectionTimeout: timeout,
        greetingTimeout: timeout,
        socketTimeout: timeout,
        allowInternalNetworkInterfaces: true,
        // nodemailer has no XFORWARD support; its custom-auth hook is its one public way to send an
        // extra command on an open connection, so XFORWARD rides on it (see forward()).
        customAuth: {
          [XFORWARD_METHOD]: (ctx) => {
            const cmd = (ctx.auth.options as { command: string }).command;
            ctx.sendCommand(cmd, (err, r) => {
              if (err) ctx.reject(err);
              else if (r.status !== 250) ctx.reject(new Error(r.response));
              else ctx.resolve();
            });
          },
        },
      });
      const p: Pooled = { conn, sent: 0, broken: false, xforward: false };
      let settled = false;
      conn.on('error', (err: Error) => {
        p.broken = true;
        if (!settled) {
          settled = true;
          reject(nextHopError(`${options.host}:${options.port} unreachable`, err));
        }
      });
      conn.on('end', () => {
        p.broken = true;
        const i = idle.indexOf(p);
        if (i >= 0) {
          idle.splice(i, 1);
          open--;
        }
      });
      conn.connect((err) => {
        if (settled) return;
        settled = true;
        if (err) return reject(nextHopError(`${options.host}:${options.port} unreachable`, err));
        // Right after connect() the last reply is the EHLO reply; nodemailer keeps no list of unknown extensions.
        p.xforward = /^250[ -]XFORWARD\b/im.test(String(conn.lastServerResponse));
        resolve(p);
      });
    });

  const acquire = async (): Promise<Pooled> => {
    while (idle.length) {
      const p = idle.pop() as Pooled;
      if (!p.broken) return p;
      open--;
    }
    if (open < max) {
      open++;
      try {
        return await connect();
      } catch (e) {
        open--;
        throw e;
      }
    }
    return new Promise<Pooled>((resolve, reject) => {
      waiting.push((p) => (p instanceof Error ? reject(p) : resolve(p)));
    });
  };

  const release = (p: Pooled) => {
    const keep = !p.broken && !closing && p.sent < perConnection;
    if (keep) {
      const next = waiting.shift();
      if (next) next(p);
      else idle.push(p);
      return;
    }
    if (p.broken) discard(p);
    else {
      open--;
      p.conn.quit();
    }
    // The slot is free again: a sender waiting for a connection gets a fresh one.
    const next = closing ? undefined : waiting.shift();
    if (next) {
      open++;
      connect().then(next, (e: Error) => {
        open--;
        next(e);
      });
    }
  };

  const forward = (p: Pooled, f: Forwarded): Promise<void> =>
    new Promise((resolve, reject) => {
      p.conn.login({ method: XFORWARD_METHOD, user: '-', pass: '-', options: { command: xforwardCommand(f) } }, (err) =>
        err ? reject(nextHopError('refused XFORWARD', err)) : resolve(),
      );
    });

  const transmit = (p: Pooled, msg: ReinjectMessage): Promise<ReinjectResult> =>
    new Promise((resolve, reject) => {
      p.conn.send({ from: msg.from, to: msg.to, size: msg.raw.length, use8BitMime: true } as SMTPConnection.Envelope, msg.raw, (err, info) => {
        if (err) return reject(nextHopError('refused the message', err));
        if (!info) return reject(nextHopError('gave no reply', undefined));
        if (info.rejected.length > 0) {
          // Some recipients were refused and the rest accepted. SMTP cannot tell Postfix "250 for these,
          // 451 for those" after DATA, so the whole message is answered 451 and retried: the accepted
          // recipients may get it twice, which beats losing it for the refused ones.
          return reject(
            nextHopError(`refused ${info.rejected.length} of ${msg.to.length} recipients`, info.rejectedErrors?.[0], { rejected: info.rejected }),
          );
        }
        resolve({ response: info.response });
      });
    });

  return {
    get stats() {
      return { open, idle: idle.length, waiting: waiting.length };
    },
    async send(msg) {
      if (closing) throw new FilterError('ENEXTHOP', 'the re-injection client is shutting down');
      busy++;
      let p: Pooled | undefined;
      try {
        p = await acquire();
        if (p.xforward && msg.forwarded) await forward(p, msg.forwarded);
        const r = await transmit(p, msg);
        p.sent++;
        return r;
      } catch (e) {
        // The connection state after a failed transaction is unknown: never reuse it.
        if (p) p.broken = true;
        throw e;
      } finally {
        if (p) release(p);
        busy--;
        if (busy === 0 && drained) drained();
      }
    },
    async close() {
      closing = true;
      for (const w of waiting.splice(0)) w(new FilterError('ENEXTHOP', 'the re-injection client is shutting down'));
      if (busy > 0) await new Promise<void>((r) => (drained = r));
      for (const p of idle.splice(0)) {
        open--;
        p.conn.quit();
      }
    },
  };
}
