// The SMTP door: Postfix's after-queue content filter (content_filter = atlas:[127.0.0.1]:10025).
// Postfix hands over a queued message; we scan it, tag it, and re-inject it to the next hop (Postfix's
// 10026 listener). The promise: 250 only after the next hop said 250 (or the quarantine has it on
// disk); 550 on reject; 451 on anything else, so Postfix keeps the message and retries.
import type { Socket } from 'node:net';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { Config } from '../core/config.ts';
import { FilterError, toFilterError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import type { Envelope } from '../core/look.ts';
import { type Cidr, inAnyCidr, parseCidr } from '../core/net.ts';
import type { ScanInput } from '../core/scan.ts';
import type { Verdict } from '../core/verdict.ts';
import { withDeadline } from './deadline.ts';
import { tagMessage } from './headers.ts';
import { createQuarantineStore, type QuarantineStore } from './smtp/quarantine.ts';
import { createReinjector, type Forwarded, type Reinjector } from './smtp/reinject.ts';
import { replyError, replyForError, replyForReject, replyForTempfail, type SmtpReply } from './smtp/replies.ts';

export interface SmtpDoorOptions {
  host: string;
  port: number;
  nextHop: { host: string; port: number };
  /** The shared pipeline's scan; null passes mail through untouched (the bench's overhead baseline). */
  scan: ((input: ScanInput) => Promise<Verdict>) | null;
  config: Pick<Config, 'maxMessageBytes' | 'trustedRelays' | 'smtp'>;
  log?: (msg: string) => void;
  /** Injected for tests; built from nextHop otherwise. */
  reinjector?: Reinjector;
  quarantine?: QuarantineStore;
  /** Door-level scan deadline, ms. */
  scanTimeoutMs?: number;
  /** How long close() lets in-flight transactions finish, ms. */
  drainTimeoutMs?: number;
}

export interface SmtpDoor {
  name: 'smtp';
  address: string;
  port: number;
  /** Transactions between DATA and our reply right now. */
  readonly inFlight: number;
  close(): Promise<void>;
}

interface Transaction {
  raw: Buffer;
  envelope: Envelope;
  from: string;
  to: string[];
  forwarded?: Forwarded;
}

/** Who the mail really came from: what XFORWARD said (only trusted peers may send it), else the peer itself. */
function clientOf(session: SMTPServerSession): { ip: string; helo: string; forwarded?: Forwarded } {
  const xf = session.xForward;
  const peer = (xf?.get('ADDR:DEFAULT') as string | undefined) ?? session.remoteAddress;
  const helo = session.hostNameAppearsAs || '';
  if (!xf || xf.size === 0) return { ip: peer, helo };
  const get = (k: string) => {
    const v = xf.get(k);
    return v === undefined || v === null || v === '' ? undefined : String(v);
  };
  const forwarded: Forwarded = {
    addr: get('ADDR'),
    name: get('NAME'),
    helo: get('HELO'),
    proto: get('PROTO'),
    ident: get('IDENT'),
    port: get('PORT') ? Number(get('PORT')) : undefined,
  };
  return { ip: forwarded.addr ?? peer, helo: forwarded.helo ?? helo, forwarded };
}

export async function startSmtpDoor(options: SmtpDoorOptions): Promise<SmtpDoor> {
  const { config } = options;
  const log = options.log ?? (() => {});
  const trusted = config.trustedRelays.map((t) => parseCidr(t)).filter((c): c is Cidr => c !== null);
  const reinjector = options.reinjector ?? createReinjector({ host: options.nextHop.host, port: options.nextHop.port, name: 'atlas-email' });
  const quarantine = options.quarantine ?? createQuarantineStore(config.smtp.quarantineDir);
  const scanTimeoutMs = options.scanTimeoutMs ?? limits.scanTimeoutMs;
  const maxBytes = config.maxMessageBytes;
  let inFlight = 0;
  let idle: (() => void) | null = null;

  /** Runs one transaction to its reply. Never throws: every path ends in an SmtpReply or a success text. */
  const handle = async (tx: Transaction): Promise<{ ok: string } | { fail: SmtpReply }> => {
    try {
      if (!options.scan) {
        const r = await reinjector.send({ from: tx.from, to: tx.to, raw: tx.raw, forwarded: tx.forwarded });
        return { ok: `2.0.0 Ok: passed unscanned; next hop said: ${r.response}` };
      }
      const verdict = await withDeadline(options.scan({ raw: tx.raw, envelope: tx.envelope }), scanTimeoutMs);
      switch (verdict.action) {
        case 'reject':
          return { fail: replyForReject(verdict.reason ?? `score ${verdict.score}`) };
        case 'tempfail':
          log(`smtp: tempfail ${verdict.messageId || '(no Message-ID)'}: ${verdict.errorCode ?? ''} ${verdict.reason ?? ''}`);
          return { fail: replyForTempfail(verdict.errorCode, verdict.reason) };
        case 'quarantine': {
          const id = await quarantine.put(tagMessage(tx.raw, verdict, { rewriteSubject: config.smtp.rewriteSubject }), tx.envelope, verdict);
          return { ok: `2.0.0 Ok: quarantined as ${id}` };
        }
        case 'accept':
        case 'tag': {
          const tagged = tagMessage(tx.raw, verdict, { rewriteSubject: config.smtp.rewriteSubject });
          const r = await reinjector.send({ from: tx.from, to: tx.to, raw: tagged, forwarded: tx.forwarded });
          return { ok: `2.0.0 Ok: ${verdict.spam ? 'spam' : 'ham'} score=${verdict.score}; next hop said: ${r.response}` };
        }
      }
    } catch (e) {
      const err = toFilterError(e);
      log(`smtp: ${err.code} for a message from <${tx.from}>: ${err.message}`);
      return { fail: replyForError(err) };
    }
  };

  const onData = (stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null, message?: string) => void) => {
    inFlight++;
    let answered = false;
    const done = (err: Error | null, message?: string) => {
      // A client that vanishes mid-message errors the stream; whatever comes after must not answer twice.
      if (answered) return;
      answered = true;
      inFlight--;
      if (inFlight === 0 && idle) idle();
      callback(err, message);
    };
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      // Past the limit we keep reading (the client must reach the final dot) but stop buffering.
      if (size <= maxBytes) chunks.push(chunk);
      else chunks.length = 0;
    });
    stream.once('error', (e: Error) => done(replyError(replyForError(toFilterError(e)))));
    stream.once('end', () => {
      if (stream.sizeExceeded || size > maxBytes) {
        const err = new FilterError('ETOOLARGE', `the message is over the limit of ${maxBytes} bytes`, { limit: maxBytes });
        return done(replyError(replyForError(err)));
      }
      const client = clientOf(session);
      const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
      const to = session.envelope.rcptTo.map((r) => r.address);
      const tx: Transaction = {
        raw: Buffer.concat(chunks, size),
        from,
        to,
        forwarded: client.forwarded,
        envelope: { ip: client.ip, helo: client.helo, from, rcpt: to, queueId: client.forwarded?.ident },
      };
      void handle(tx).then((r) => ('ok' in r ? done(null, r.ok) : done(replyError(r.fail))));
    });
  };

  const DISABLED = ['AUTH', 'STARTTLS'];
  const server = new SMTPServer({
    name: 'atlas-email',
    banner: 'atlas-email content filter',
    logger: false,
    // A loopback hop between two Postfix listeners: no TLS, no AUTH, no reverse DNS on the hot path.
    disabledCommands: DISABLED,
    authOptional: true,
    disableReverseLookup: true,
    useXForward: true,
    // XFORWARD only from our trusted relays (Postfix on loopback): anyone else could forge the client IP
    // to dodge IP rules. smtp-server lists exact addresses only, so CIDRs are checked per connection here.
    onConnect(session, cb) {
      if (!inAnyCidr(trusted, session.remoteAddress.replace(/^::ffff:/, ''))) session.disabledCommands = [...DISABLED, 'XFORWARD'];
      cb();
    },
    // smtp-server's default MAIL and RCPT handlers answer on a later event-loop turn (setImmediate),
    // so a pipelined MAIL, RCPT, DATA got three turns and three socket writes. Answering at once lets
    // its parser run the whole batch in one turn, and the cork below sends the three replies in one
    // write (strace: 6.6 → 4.4 write/writev calls per message in bench/smtp). We accept every sender
    // and recipient: Postfix checked them before queueing.
    onMailFrom: (_address, _session, cb) => cb(),
    onRcptTo: (_address, _session, cb) => cb(),
    size: maxBytes,
    maxClients: config.smtp.maxClients,
    socketTimeout: config.smtp.socketTimeoutMs,
    closeTimeout: options.drainTimeoutMs ?? limits.smtpDrainTimeoutMs,
    onData,
  });
  server.on('error', (e: Error) => log(`smtp: server error: ${e.message}`));
  // Replies written while one chunk of commands is parsed leave together: prepended, so it runs
  // before the socket's pipe to smtp-server's parser; uncorked once that turn's work is done.
  server.server.on('connection', (socket: Socket) => {
    socket.prependListener('data', () => {
      if (socket.writableCorked) return;
      socket.cork();
      process.nextTick(() => socket.uncork());
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  const addr = server.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : options.port;

  let closing: Promise<void> | null = null;
  return {
    name: 'smtp',
    address: `${options.host}:${port}`,
    port,
    get inFlight() {
      return inFlight;
    },
    close() {
      closing ??= (async () => {
        // Stop accepting; commands on open connections now get 421 (Postfix retries those messages).
        const closed = new Promise<void>((r) => server.close(() => r()));
        // Transactions already past DATA get their real answer, and with it the next hop's 250; after
        // drainTimeoutMs smtp-server cuts what is left, which is safe: an unanswered message stays queued.
        if (inFlight > 0) await Promise.race([new Promise<void>((r) => (idle = r)), closed]);
        for (const c of [...server.connections]) c.close();
        await closed;
        await reinjector.close();
      })();
      return closing;
    },
  };
}
