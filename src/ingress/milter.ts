// The milter door: Postfix (smtpd_milters) or Sendmail hands us each message during the SMTP
// conversation; we answer at end-of-body with accept + header edits, a 554 reject, a tempfail or a
// quarantine. Thin: packets in, one scan() at end-of-body, one reply out. Failures and timeouts answer
// as Postfix's milter_default_action would (tempfail unless configured to accept).
import { createServer, type Server, type Socket } from 'node:net';
import { toFilterError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import type { Envelope } from '../core/look.ts';
import type { ScanInput } from '../core/scan.ts';
import type { Verdict } from '../core/verdict.ts';
import { withDeadline } from './deadline.ts';
import { authservIdOf, isForgedAuthResults, spamHeaders } from './headers.ts';
import {
  Action,
  addHeader,
  Cmd,
  cstrings,
  deleteHeader,
  MILTER_VERSION,
  NO_REPLY_BIT,
  optNegReply,
  type Packet,
  packet,
  PacketReader,
  parseConnect,
  parseMacros,
  parseOptNeg,
  Reply,
  replyText,
  WANTED_ACTIONS,
  WANTED_PROTOCOL,
} from './milter/protocol.ts';

export interface MilterOptions {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  scan: (input: ScanInput) => Promise<Verdict>;
  maxMessageBytes: number;
  /** What to answer when scanning fails or times out (Postfix's milter_default_action). */
  defaultAction: 'tempfail' | 'accept';
  /** Longest wait for a verdict at end-of-body. */
  scanTimeoutMs?: number;
  /** Silence on a connection longer than this closes it (Postfix's own milter timeouts are shorter). */
  idleTimeoutMs?: number;
  maxClients?: number;
  log?: (msg: string) => void;
}

export interface MilterDoor {
  name: string;
  address: string;
  port: number;
  /** Messages answered, by reply. */
  stats(): Record<string, number>;
  close(): Promise<void>;
}

interface Message {
  from: string;
  rcpt: string[];
  queueId?: string;
  headers: [string, string][];
  body: Buffer[];
  bodyBytes: number;
  tooLarge: boolean;
}

function newMessage(): Message {
  return { from: '', rcpt: [], headers: [], body: [], bodyBytes: 0, tooLarge: false };
}

/** Angle brackets off an envelope address, as MAIL/RCPT args carry them. */
function bare(arg: string | undefined): string {
  return (arg ?? '').replace(/^<|>$/g, '');
}

export function buildRaw(m: Message): Uint8Array {
  // Postfix sends folded header values with bare LF between the lines; on the wire they are CRLF.
  const head = m.headers.map(([n, v]) => `${n}: ${v.replace(/\r?\n/g, '\r\n')}\r\n`).join('');
  return new Uint8Array(Buffer.concat([Buffer.from(head + '\r\n', 'latin1'), ...m.body]));
}

class Session {
  private actions = 0;
  private noReply = 0;
  private negotiated = false;
  private envelope: Envelope = {};
  private macros: Record<string, string> = {};
  private msg: Message = newMessage();

  constructor(
    private readonly opts: Required<Pick<MilterOptions, 'scan' | 'maxMessageBytes' | 'defaultAction' | 'scanTimeoutMs'>> & { log: (m: string) => void },
    private readonly counters: Record<string, number>,
  ) {}

  /** Handles one packet; returns the bytes to send back (possibly none) and whether to close. */
  async handle(p: Packet): Promise<{ out: Buffer[]; close?: boolean }> {
    if (!this.negotiated && p.cmd !== Cmd.OPTNEG) {
      return { out: [], close: true };
    }
    const cont = (): { out: Buffer[] } => ((this.noReply & (NO_REPLY_BIT[p.cmd] ?? 0)) !== 0 ? { out: [] } : { out: [packet(Reply.CONTINUE)] });
    switch (p.cmd) {
      case Cmd.OPTNEG: {
        const offer = parseOptNeg(p.data);
        this.negotiated = true;
        this.actions = offer.actions & WANTED_ACTIONS;
        // No-reply bits only count when the MTA offered them; otherwise every event gets a "continue".
        const protocol = offer.protocol & WANTED_PROTOCOL;
        this.noReply = protocol;
        return { out: [optNegReply({ version: Math.min(offer.version, MILTER_VERSION), actions: this.actions, protocol })] };
      }
      case Cmd.MACRO: {
        const { macros } = parseMacros(p.data);
        Object.assign(this.macros, macros);
        if (macros.i) this.msg.queueId = macros.i;
        return { out: [] };
      }
      case Cmd.CONNECT: {
        const c = parseConnect(p.data);
        this.envelope = { ip: c.address || undefined };
        return cont();
      }
      case Cmd.HELO:
        this.envelope.helo = cstrings(p.data)[0];
        return cont();
      case Cmd.MAIL:
        this.msg = newMessage();
        this.msg.queueId = this.macros.i;
        this.msg.from = bare(cstrings(p.data)[0]);
        return cont();
      case Cmd.RCPT:
        this.msg.rcpt.push(bare(cstrings(p.data)[0]));
        return cont();
      case Cmd.HEADER: {
        const [name = '', value = ''] = cstrings(p.data);
        if (this.msg.headers.length < limits.maxHeaderCount * 10) this.msg.headers.push([name, value]);
        return cont();
      }
      case Cmd.BODY:
        this.msg.bodyBytes += p.data.length;
        // Past the limit we stop keeping bytes but keep counting, and answer at end-of-body.
        if (this.msg.bodyBytes > this.opts.maxMessageBytes) this.msg.tooLarge = true;
        else this.msg.body.push(Buffer.from(p.data));
        return cont();
      case Cmd.EOB: {
        if (p.data.length) this.msg.body.push(Buffer.from(p.data));
        const out = await this.endOfMessage();
        this.msg = newMessage();
        return { out };
      }
      case Cmd.ABORT:
        // Reset the message, keep the connection facts; no reply is expected.
        this.msg = newMessage();
        return { out: [] };
      case Cmd.QUIT_NC:
        this.msg = newMessage();
        this.envelope = {};
        this.macros = {};
        return { out: [] };
      case Cmd.QUIT:
        return { out: [], close: true };
      case Cmd.DATA:
      case Cmd.EOH:
      case Cmd.UNKNOWN:
        return cont();
      default:
        // Unknown commands: answer "continue", as libmilter does, so a newer MTA is not stalled.
        return { out: [packet(Reply.CONTINUE)] };
    }
  }

  private failReply(reason: string): Buffer[] {
    this.counters.failed = (this.counters.failed ?? 0) + 1;
    if (this.opts.defaultAction === 'accept') return [packet(Reply.ACCEPT)];
    return [replyText('451', `4.7.1 Try again later: ${reason}`)];
  }

  private async endOfMessage(): Promise<Buffer[]> {
    const m = this.msg;
    if (m.tooLarge) {
      this.counters.tooLarge = (this.counters.tooLarge ?? 0) + 1;
      this.opts.log(`milter: ${m.queueId ?? '-'} body over ${this.opts.maxMessageBytes} bytes, passed unscanned`);
      return [packet(Reply.ACCEPT)];
    }
    let verdict: Verdict;
    try {
      const scanned = this.opts.scan({
        raw: buildRaw(m),
        envelope: { ...this.envelope, from: m.from, rcpt: m.rcpt, queueId: m.queueId },
      });
      verdict = await withDeadline(scanned, this.opts.scanTimeoutMs);
    } catch (e) {
      const err = toFilterError(e);
      this.opts.log(`milter: ${m.queueId ?? '-'} ${err.code}: ${err.message}`);
      return this.failReply(err.message);
    }
    this.counters[verdict.action] = (this.counters[verdict.action] ?? 0) + 1;
    switch (verdict.action) {
      case 'reject':
        return [replyText('554', `5.7.1 Message rejected as spam (score ${verdict.score.toFixed(1)})`)];
      case 'tempfail':
        return this.failReply(verdict.reason ?? 'the filter could not judge the message');
      case 'quarantine':
        return [...this.headerEdits(verdict), ...this.quarantine(verdict), packet(Reply.ACCEPT)];
      default:
        return [...this.headerEdits(verdict), packet(Reply.ACCEPT)];
    }
  }

  private quarantine(v: Verdict): Buffer[] {
    if (!(this.actions & Action.QUARANTINE)) return [];
    return [packet(Reply.QUARANTINE, Buffer.from(`atlas-email: spam score ${v.score.toFixed(1)}\0`, 'latin1'))];
  }

  /** Deletes forged incoming X-Spam-* (and our own Authentication-Results), then adds ours, as the SMTP door does. */
  private headerEdits(v: Verdict): Buffer[] {
    const out: Buffer[] = [];
    if (this.actions & Action.CHGHDRS) {
      const seen = new Map<string, number>();
      const deletes: Buffer[] = [];
      const ourId = authservIdOf(v);
      for (const [name, value] of this.msg.headers) {
        const key = name.toLowerCase();
        const n = (seen.get(key) ?? 0) + 1;
        seen.set(key, n);
        if (key.startsWith('x-spam-') || isForgedAuthResults(key, value, ourId)) deletes.push(deleteHeader(name, n));
      }
      // Delete from the last occurrence backwards, so earlier indexes stay valid.
      out.push(...deletes.reverse());
    }
    if (this.actions & Action.ADDHDRS) {
      for (const [name, value] of spamHeaders(v, '\n')) out.push(addHeader(name, value));
    }
    return out;
  }
}

export function startMilterServer(options: MilterOptions): Promise<MilterDoor> {
  const log = options.log ?? (() => {});
  const opts = {
    scan: options.scan,
    maxMessageBytes: options.maxMessageBytes,
    defaultAction: options.defaultAction,
    scanTimeoutMs: options.scanTimeoutMs ?? limits.scanTimeoutMs,
    log,
  };
  const idle = options.idleTimeoutMs ?? limits.socketTimeoutMs;
  const counters: Record<string, number> = {};
  const sockets = new Set<Socket>();
  const busy = new Set<Socket>();
  let closing = false;

  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.setTimeout(idle, () => socket.destroy());
    const reader = new PacketReader();
    const session = new Session(opts, counters);
    // Packets are handled one at a time, in order: end-of-body awaits the scan before the next packet.
    let chain = Promise.resolve();
    socket.on('data', (chunk: Buffer) => {
      let packets: Packet[];
      try {
        packets = reader.push(chunk);
      } catch (e) {
        counters.protocolErrors = (counters.protocolErrors ?? 0) + 1;
        log(`milter: closing ${socket.remoteAddress}:${socket.remotePort}: ${(e as Error).message}`);
        socket.destroy();
        return;
      }
      for (const p of packets) {
        chain = chain.then(async () => {
          if (socket.destroyed) return;
          busy.add(socket);
          try {
            const r = await session.handle(p);
            for (const b of r.out) socket.write(b);
            if (r.close) socket.end();
          } catch (e) {
            counters.protocolErrors = (counters.protocolErrors ?? 0) + 1;
            log(`milter: closing after a bad ${JSON.stringify(p.cmd)} packet: ${(e as Error).message}`);
            socket.destroy();
          } finally {
            busy.delete(socket);
            if (closing && !busy.has(socket)) socket.end();
          }
        });
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      sockets.delete(socket);
      busy.delete(socket);
    });
  });
  if (options.maxClients) server.maxConnections = options.maxClients;

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : options.port;
      resolve({
        name: 'milter',
        address: `${options.host}:${port}`,
        port,
        stats: () => ({ ...counters }),
        close: () =>
          new Promise<void>((done) => {
            closing = true;
            server.close(() => done());
            // Idle connections end now; one waiting for a verdict ends after its reply.
            for (const s of sockets) if (!busy.has(s)) s.end();
          }),
      });
    });
  });
}
