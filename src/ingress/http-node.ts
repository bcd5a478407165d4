// Serves the HTTP app (http.ts) on Node: slow-client timeouts, and a shutdown that stops accepting,
// lets in-flight requests finish, then closes every connection.
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener, RequestError } from '@hono/node-server';
import { FilterError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import { errorResponse } from './http.ts';

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
      void handle(req, res);
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
