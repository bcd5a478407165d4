// Re-injection: hands a filtered message to the next hop (Postfix's 10026 listener) over a small pool of
// kept-alive SMTP connections, keeping the envelope exactly as Postfix gave it to us.
//
// The client is our own (client.ts) rather than nodemailer's: re-injection needs a fraction of an SMTP
// client, and nodemailer's pass the data through a byte-at-a-time stream transform and re-parse the
// envelope, which was half of the door's own CPU per message (bench/README.md, smtp). Ours pipelines the
// envelope with DATA, dot-stuffs with native searches and writes the message without copying it.
// `send` resolves only when the next hop answered 250 to the data for every recipient; anything else
// rejects with a FilterError('ENEXTHOP') so the door can answer 4xx and Postfix keeps the message.
import { FilterError } from '../../core/errors.ts';
import { limits } from '../../core/limits.ts';
import { SmtpClientConnection, type SmtpClientError } from './client.ts';

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
  conn: SmtpClientConnection;
  sent: number;
}

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
    p.conn.destroy();
  };

  const connect = async (): Promise<Pooled> => {
    let conn: SmtpClientConnection;
    try {
      conn = await SmtpClientConnection.open({ host: options.host, port: options.port, name: options.name ?? 'localhost', timeoutMs: timeout });
    } catch (e) {
      throw nextHopError(`${options.host}:${options.port} unreachable`, e);
    }
    const p: Pooled = { conn, sent: 0 };
    // The next hop hung up or timed out while the connection sat idle: it leaves the pool at once.
    conn.onClose(() => {
      const i = idle.indexOf(p);
      if (i >= 0) {
        idle.splice(i, 1);
        open--;
      }
    });
    return p;
  };

  const acquire = async (): Promise<Pooled> => {
    while (idle.length) {
      const p = idle.pop() as Pooled;
      if (!p.conn.broken) return p;
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
    const keep = !p.conn.broken && !closing && p.sent < perConnection;
    if (keep) {
      const next = waiting.shift();
      if (next) next(p);
      else idle.push(p);
      return;
    }
    if (p.conn.broken) discard(p);
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

  const transmit = async (p: Pooled, msg: ReinjectMessage): Promise<ReinjectResult> => {
    // XFORWARD only where the next hop offers it (Postfix: smtpd_authorized_xforward_hosts).
    const xforward = msg.forwarded && p.conn.extensions.has('XFORWARD') ? xforwardCommand(msg.forwarded) : undefined;
    let info;
    try {
      info = await p.conn.send({ from: msg.from, to: msg.to }, msg.raw, xforward);
    } catch (e) {
      // "refused the data (554 …)" when the next hop answered; "failed (connection closed)" when it did not.
      throw nextHopError((e as SmtpClientError).response ? (e as Error).message : 'failed', e);
    }
    if (info.rejected.length > 0) {
      // Some recipients were refused and the rest accepted. SMTP cannot tell Postfix "250 for these,
      // 451 for those" after DATA, so the whole message is answered 451 and retried: the accepted
      // recipients may get it twice, which beats losing it for the refused ones.
      throw nextHopError(`refused ${info.rejected.length} of ${msg.to.length} recipients`, { response: info.rejectedReply?.text, responseCode: info.rejectedReply?.code }, { rejected: info.rejected });
    }
    return { response: info.response };
  };

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
        const r = await transmit(p, msg);
        p.sent++;
        return r;
      } catch (e) {
        // The connection state after a failed transaction is unknown: never reuse it.
        if (p) p.conn.destroy();
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
