// Serves the HTTP app (http.ts) on Node: slow-client timeouts, and a shutdown that stops accepting,
// lets in-flight requests finish, then closes every connection. POSTs to the message routes skip the
// Fetch layer (see fastMessage).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener, RequestError } from '@hono/node-server';
import { FilterError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import { declaredLength, lengthRequired, tooLarge } from './body.ts';
import { type Answer, errorResponse, type MessagePath, type MessageRoutes, messageRoutesOf } from './http.ts';
import type { HeaderSource } from './rspamd.ts';

export interface HttpServerOptions {
  host: string;
  /** 0 picks a free port; the bound one is in `address`. */
  port: number;
  app: { fetch(req: Request): Response | Promise<Response> };
  log: (msg: string) => void;
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
  /** How long close() waits for in-flight requests before cutting their connections. */
  drainTimeoutMs?: number;
}

export interface HttpServer {
  name: string;
  /** "host:port" as bound. */
  address: string;
  port: number;
  close(): Promise<void>;
}

export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const headersTimeout = options.headersTimeoutMs ?? limits.httpHeadersTimeoutMs;
  const requestTimeout = Math.max(headersTimeout, options.requestTimeoutMs ?? limits.httpRequestTimeoutMs);
  const drainTimeout = options.drainTimeoutMs ?? limits.httpDrainTimeoutMs;
  const handle = getRequestListener((req) => options.app.fetch(req), {
    // HTTP/1.0 clients such as rspamc send no Host header; the app never looks at the URL's host.
    hostname: 'localhost',
    // Only a request Node could parse but Fetch cannot represent (a bad Host, a bad URL) lands here.
    errorHandler: (e) => errorResponse(e instanceof RequestError ? new FilterError('EPROTOCOL', e.message) : e),
  });
  const fast = messageRoutesOf(options.app);
  let closing = false;
  /** Requests being answered; those whose headers are not out yet are told to close at shutdown. */
  const pending = new Set<ServerResponse>();
  const server = createServer(
    {
      headersTimeout,
      requestTimeout,
      // Node looks for expired requests on this tick; its 30 s default would let a stalled client
      // stay far past its timeout.
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(headersTimeout / 4))),
    },
    (req, res) => {
      // During shutdown every answer ends its connection, so keep-alive clients move elsewhere.
      if (closing) res.setHeader('connection', 'close');
      else {
        pending.add(res);
        res.once('close', () => pending.delete(res));
      }
      const path = req.url;
      if (fast && req.method === 'POST' && (path === '/v1/check' || path === '/checkv2')) void fastMessage(fast, path, req, res);
      else void handle(req, res);
    },
  );
  server.keepAliveTimeout = options.keepAliveTimeoutMs ?? limits.httpKeepAliveTimeoutMs;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (e) => options.log(`http: ${e.message}`));
  const bound = server.address() as AddressInfo;
  const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;

  return {
    name: 'http',
    address: `${host}:${bound.port}`,
    port: bound.port,
    close: () =>
      new Promise<void>((resolve) => {
        closing = true;
        for (const res of pending) if (!res.headersSent) res.setHeader('connection', 'close');
        // Idle keep-alive connections close now; busy ones as soon as their answer is out.
        const sweep = setInterval(() => server.closeIdleConnections(), 50);
        const cut = setTimeout(() => {
          options.log(`http: in-flight requests still running after ${drainTimeout} ms; closing their connections`);
          server.closeAllConnections();
        }, drainTimeout);
        server.close(() => {
          clearInterval(sweep);
          clearTimeout(cut);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}

/**
 * The header fields as Fetch's Headers.get reads them: every copy of a field joined with ", ", outer
 * blanks trimmed. Read from rawHeaders because IncomingMessage.headers keeps only the first copy of some
 * fields (From among them) where Fetch joins them all. Names are asked in lower case.
 */
function rawHeaderSource(raw: string[]): HeaderSource {
  return {
    get(name) {
      let value: string | null = null;
      for (let i = 0; i < raw.length; i += 2) {
        const k = raw[i] as string;
        if (k.length !== name.length || k.toLowerCase() !== name) continue;
        const v = (raw[i + 1] as string).replace(/^[\t ]+|[\t ]+$/g, '');
        value = value === null ? v : `${value}, ${v}`;
      }
      return value;
    },
  };
}

/**
 * The body into one buffer. With a Content-Length (checked against the limit before anything is read)
 * the buffer is allocated once at that size and filled as chunks arrive; without one (chunked), chunks
 * are kept until the end and cut off as soon as they pass the limit. A client that goes away rejects.
 */
function readIncoming(req: IncomingMessage, h: HeaderSource, max: number): Promise<Uint8Array> {
  const declared = declaredLength(h.get('content-length'), max);
  return new Promise((resolve, reject) => {
    const whole = declared === null ? null : Buffer.allocUnsafeSlow(declared);
    const chunks: Buffer[] = [];
    let total = 0;
    const stop = (e: FilterError) => {
      req.off('data', onData);
      req.pause();
      reject(e);
    };
    const onData = (c: Buffer) => {
      if (whole) {
        // The parser stops at the declared length; this only guards the copy.
        if (total + c.length > whole.length) return stop(tooLarge(null, max));
        c.copy(whole, total);
      } else {
        if (total + c.length > max) return stop(tooLarge(null, max));
        chunks.push(c);
      }
      total += c.length;
    };
    // `on`, not `once`: each request has its own listeners, which go with it (once adds a wrapper per call).
    req.on('data', onData);
    req.on('end', () => {
      if (whole) return resolve(whole);
      if (total === 0) return reject(lengthRequired());
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, total));
    });
    req.on('close', () => {
      if (!req.complete) reject(new FilterError('EPROTOCOL', 'the client closed the connection before the end of the message'));
    });
  });
}

function send(req: IncomingMessage, res: ServerResponse, a: Answer): void {
  // A client that went away gets nothing. (res.socket is not checked: a pipelined answer waits for one.)
  if (res.headersSent || res.destroyed || req.socket.destroyed) return;
  // Fields as a flat name/value list: writeHead takes it without building another object per answer.
  const fields: string[] = [];
  for (const name in a.headers) fields.push(name, a.headers[name] as string);
  fields.push('content-length', String(Buffer.byteLength(a.body)));
  // An answer given before the body was read (413, 415, 411) closes rather than reads the rest.
  if (!req.complete && a.headers.connection === undefined) fields.push('connection', 'close');
  res.writeHead(a.status, fields);
  // A string body goes out in the same write as the header block.
  res.end(a.body);
}

/**
 * POST /v1/check and /checkv2 straight from node:http: the same steps as the app's routes (http.ts
 * MessageRoutes), without building a Fetch Request, Headers and Response for each message. These two
 * paths carry nearly all the traffic; everything else (and these paths with a query string) goes
 * through the Hono app.
 */
async function fastMessage(routes: MessageRoutes, path: MessagePath, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const h = rawHeaderSource(req.rawHeaders);
  let a: Answer;
  try {
    routes.checkHeaders(h);
    const raw = await readIncoming(req, h, routes.maxMessageBytes);
    a = await routes.answer(path, raw, h);
  } catch (e) {
    a = routes.fail(e);
  }
  send(req, res, a);
}
