// The SPAMC/1.5 door: a drop-in for SpamAssassin's spamd, so `spamc` and the MTA integrations built on it
// work by changing a port. One request per connection, as spamd: read the head, read exactly
// Content-length bytes (inflating them when compressed), scan, answer, close. Every way a client can
// misbehave (garbage, lying lengths, a stalled upload, an oversized body) ends in a status line or a close,
// within a deadline.
import { createServer, type Server, type Socket } from 'node:net';
import { hostname as osHostname } from 'node:os';
import { inflate } from 'node:zlib';
import { FilterError, toFilterError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import type { ScanInput } from '../core/scan.ts';
import type { Verdict } from '../core/verdict.ts';
import { withDeadline } from './deadline.ts';
import { tagMessage } from './headers.ts';
import {
  checkReply,
  exitForError,
  failure,
  messageReply,
  parseHeaders,
  parseRequestLine,
  PONG,
  printable,
  protocolError,
  type RequestHead,
  SpamdReject,
  tellReply,
  timedOut,
  unavailable,
} from './spamd/protocol.ts';

/** What TELL uses to change the model. Each call resolves true when the model changed. */
export interface SpamdLearner {
  learn(raw: Uint8Array, label: 'spam' | 'ham'): Promise<boolean>;
  forget?(raw: Uint8Array): Promise<boolean>;
}

export interface SpamdOptions {
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  scan: (input: ScanInput) => Promise<Verdict>;
  maxMessageBytes: number;
  /** TELL is refused unless true (spamd's --allow-tell). */
  allowTell: boolean;
  /** Absent while no model can learn in this process: TELL then answers EX_UNAVAILABLE. */
  learner?: SpamdLearner;
  /** Silence on the socket longer than this ends the request (EX_TIMEOUT). */
  idleTimeoutMs?: number;
  /** The whole request (head and body) must arrive within this. */
  requestTimeoutMs?: number;
  /** Longest wait for a verdict before answering EX_TEMPFAIL. */
  scanTimeoutMs?: number;
  maxClients?: number;
  /** Named in REPORT text, as spamd names its host. */
  hostname?: string;
  rewriteSubject?: string | null;
  log?: (msg: string) => void;
}

export interface SpamdDoor {
  name: string;
  address: string;
  port: number;
  close(): Promise<void>;
}

/** The request head is tiny (spamc sends about 80 bytes); anything longer without a blank line is not spamc. */
const MAX_HEAD_BYTES = 64 * 1024;
/** Bytes allowed before the first line ends: a request line is under 40 bytes. */
const MAX_LINE_BYTES = 1024;

export async function startSpamdServer(options: SpamdOptions): Promise<SpamdDoor> {
  const opts = {
    idleTimeoutMs: limits.socketTimeoutMs,
    requestTimeoutMs: limits.spamdRequestTimeoutMs,
    scanTimeoutMs: limits.scanTimeoutMs,
    maxClients: limits.spamdMaxClients,
    hostname: osHostname(),
    rewriteSubject: null,
    log: () => {},
    ...options,
  };
  const conns = new Set<Connection>();
  const server: Server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    const conn = new Connection(socket, opts);
    conns.add(conn);
    socket.once('close', () => conns.delete(conn));
    if (conns.size > opts.maxClients) conn.refuse(failure('EX_TEMPFAIL', `too many connections (${opts.maxClients}); try again later`));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (e) => opts.log(`spamd: listener error: ${e.message}`));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  return {
    name: 'spamd',
    address: `${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        // Requests under way finish (each is bounded by its own deadlines); a connection that has not sent
        // a byte yet holds no mail and is closed now, so a shutdown does not wait out its idle timeout.
        for (const c of conns) if (c.isUnused()) c.destroy();
        const cut = setTimeout(() => {
          for (const c of conns) c.destroy();
        }, opts.requestTimeoutMs + opts.scanTimeoutMs);
        cut.unref();
        server.close(() => {
          clearTimeout(cut);
          resolve();
        });
      }),
  };
}

type Opts = Required<Omit<SpamdOptions, 'learner'>> & Pick<SpamdOptions, 'learner'>;

/** One client connection: one request, one answer. */
class Connection {
  private state: 'head' | 'body' | 'working' | 'done' = 'head';
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Where the search for the end of the head resumes, so a byte-by-byte client costs O(n). */
  private searchFrom = 0;
  private head?: RequestHead;
  private bodyChunks: Buffer[] = [];
  private bodyBytes = 0;
  private readonly requestTimer: NodeJS.Timeout;

  constructor(
    private readonly socket: Socket,
    private readonly opts: Opts,
  ) {
    socket.on('data', (c: Buffer) => this.onData(c));
    socket.on('end', () => this.onEnd());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.stopTimers());
    socket.setTimeout(opts.idleTimeoutMs, () => this.onIdle());
    this.requestTimer = setTimeout(() => this.onRequestTimeout(), opts.requestTimeoutMs);
  }

  isUnused(): boolean {
    return this.state === 'head' && this.buffered === 0;
  }

  destroy(): void {
    this.socket.destroy();
  }

  refuse(reason: SpamdReject): void {
    this.answer(Buffer.from(reason.line, 'latin1'));
  }

  private stopTimers(): void {
    clearTimeout(this.requestTimer);
  }

  private onIdle(): void {
    if (this.state === 'head' || this.state === 'body') {
      this.refuse(timedOut(`(${this.opts.idleTimeoutMs / 1000} second socket timeout reading input from client)`));
    } else if (this.state === 'done') {
      // A client that never reads our answer or never closes its side.
      this.socket.destroy();
    }
  }

  private onRequestTimeout(): void {
    if (this.state === 'head' || this.state === 'body') {
      this.refuse(timedOut(`(${this.opts.requestTimeoutMs / 1000} second limit for reading the request)`));
    }
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'working' || this.state === 'done') return; // one request per connection: the rest is drained
    try {
      if (this.state === 'head') {
        this.chunks.push(chunk);
        this.buffered += chunk.length;
        this.readHead();
      } else {
        this.addBody(chunk);
      }
    } catch (e) {
      this.fail(e);
    }
  }

  private onEnd(): void {
    try {
      if (this.state === 'head') {
        throw protocolError(this.buffered === 0 ? '(closed before headers)' : '(EOF during headers)');
      }
      if (this.state === 'body') {
        const expected = this.head?.contentLength;
        if (expected !== undefined) throw mismatch(expected, this.bodyBytes);
        this.process();
      }
    } catch (e) {
      this.fail(e);
    }
  }

  private readHead(): void {
    const buf = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    this.chunks = [buf];
    const firstNl = buf.indexOf(10);
    if (firstNl < 0) {
      if (buf.length > MAX_LINE_BYTES) throw protocolError(printable(buf.subarray(0, 200).toString('latin1')));
      return;
    }
    const requestLine = buf.subarray(0, firstNl).toString('latin1').replace(/\r$/, '');
    const { method, version } = parseRequestLine(requestLine);

    // Before 1.5, PING and SKIP came without headers; at 1.0 there were no headers at all (body until EOF).
    let headEnd: number;
    let headerLines: string[] = [];
    if ((version < 1.5 && (method === 'PING' || method === 'SKIP')) || version <= 1.0) {
      headEnd = firstNl + 1;
    } else {
      const found = findBlankLine(buf, Math.max(firstNl, this.searchFrom));
      if (found < 0) {
        this.searchFrom = Math.max(firstNl, buf.length - 3);
        if (buf.length > MAX_HEAD_BYTES) throw protocolError('(too many headers)');
        return;
      }
      headEnd = found;
      headerLines = buf
        .subarray(firstNl + 1, headEnd)
        .toString('latin1')
        .split('\n')
        .map((l) => l.replace(/\r$/, ''))
        .slice(0, -2); // the empty line and what follows its newline
    }
    const head = parseHeaders(method, version, headerLines);
    this.head = head;
    this.chunks = [];

    if (method === 'PING') return this.answer(PONG);
    if (method === 'SKIP') return this.answer(Buffer.alloc(0));
    if (method === 'TELL') {
      if (!this.opts.allowTell) throw unavailable('TELL commands are not enabled, set spamd.allowTell in the config.');
      if (head.set.local && head.remove.local) throw protocolError('Unable to set local and remove local in the same operation.');
      if (head.set.remote && head.remove.remote) throw protocolError('Unable to set remote and remove remote in the same operation.');
    }
    if (head.compress && head.contentLength === undefined) throw unavailable('Compress requires Content-length header');
    if (head.contentLength !== undefined && head.contentLength > this.opts.maxMessageBytes) {
      throw tooLarge(head.contentLength, this.opts.maxMessageBytes);
    }
    this.state = 'body';
    const rest = buf.subarray(headEnd);
    if (rest.length > 0) this.addBody(rest);
    else if (head.contentLength === 0) this.process();
  }

  private addBody(chunk: Buffer): void {
    this.bodyChunks.push(chunk);
    this.bodyBytes += chunk.length;
    const expected = this.head?.contentLength;
    if (expected === undefined) {
      if (this.bodyBytes > this.opts.maxMessageBytes) throw tooLarge(this.bodyBytes, this.opts.maxMessageBytes);
      return;
    }
    if (this.bodyBytes < expected) return;
    if (this.bodyBytes > expected) throw mismatch(expected, this.bodyBytes);
    this.process();
  }

  private process(): void {
    this.state = 'working';
    this.stopTimers();
    const body = Buffer.concat(this.bodyChunks, this.bodyBytes);
    this.bodyChunks = [];
    this.run(body).then(
      (reply) => this.answer(reply),
      (e: unknown) => this.fail(e),
    );
  }

  private async run(body: Buffer): Promise<Buffer> {
    const head = this.head as RequestHead;
    const raw = head.compress ? await inflateBounded(body, this.opts.maxMessageBytes) : body;
    if (head.method === 'TELL') return this.tell(head, raw);
    const verdict = await withDeadline(this.opts.scan({ raw }), this.opts.scanTimeoutMs);
    if (verdict.action === 'tempfail') {
      throw failure('EX_TEMPFAIL', verdict.reason ? `scan failed (${verdict.errorCode ?? 'error'}): ${verdict.reason}` : 'scan failed');
    }
    if (head.method === 'PROCESS' || head.method === 'HEADERS') {
      return messageReply(verdict, head.method, head.version, tagMessage(raw, verdict, { rewriteSubject: this.opts.rewriteSubject }));
    }
    return checkReply(verdict, head.method, head.version, this.opts.hostname);
  }

  private async tell(head: RequestHead, raw: Buffer): Promise<Buffer> {
    const learner = this.opts.learner;
    if (!learner) throw unavailable('learning is not available in this process (no trainable model loaded)');
    const didSet: string[] = [];
    const didRemove: string[] = [];
    if (head.set.local) {
      if (!head.messageClass) throw protocolError('(Set: local needs a Message-class header)');
      if (await learner.learn(raw, head.messageClass)) didSet.push('local');
    }
    if (head.remove.local) {
      if (!learner.forget) throw unavailable('forgetting is not supported by the loaded model');
      if (await learner.forget(raw)) didRemove.push('local');
    }
    // "remote" means reporting to collaborative networks (Razor, Pyzor); there are none here, so it is never done.
    return tellReply(didSet, didRemove);
  }

  private fail(e: unknown): void {
    if (e instanceof SpamdReject) return this.refuse(e);
    const err = toFilterError(e);
    if (err.code === 'EINTERNAL') this.opts.log(`spamd: ${err.message}`);
    this.refuse(failure(exitForError(err.code), err.message));
  }

  /** Sends the one answer, closes our side, and drains whatever the client still sends until it closes. */
  private answer(reply: Buffer): void {
    if (this.state === 'done') return;
    this.state = 'done';
    this.stopTimers();
    this.bodyChunks = [];
    this.chunks = [];
    if (this.socket.destroyed) return;
    this.socket.setTimeout(limits.spamdDrainMs);
    this.socket.end(reply);
  }
}

/** Offset just past the empty line that ends the head, searching from `from`; -1 when not there yet. */
function findBlankLine(buf: Buffer, from: number): number {
  for (let i = buf.indexOf(10, from); i >= 0; i = buf.indexOf(10, i + 1)) {
    if (buf[i + 1] === 10) return i + 2;
    if (buf[i + 1] === 13 && buf[i + 2] === 10) return i + 3;
  }
  return -1;
}

function mismatch(expected: number, got: number): SpamdReject {
  return protocolError(`(Content-Length mismatch: Expected ${expected} bytes, got ${got} bytes)`);
}

function tooLarge(bytes: number, limit: number): FilterError {
  return new FilterError('ETOOLARGE', `the message is ${bytes} bytes, over the limit of ${limit}`, { limit });
}

/** Inflates a zlib body without ever holding more than `limit` bytes of output (zip bombs). */
function inflateBounded(body: Buffer, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    inflate(body, { maxOutputLength: limit }, (err, out) => {
      if (!err) return resolve(out);
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        return reject(new FilterError('ETOOLARGE', `the message inflates past the limit of ${limit} bytes`, { limit }));
      }
      reject(new FilterError('EMALFORMED', `zlib: ${err.message}`));
    });
  });
}
