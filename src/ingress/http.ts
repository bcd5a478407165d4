// The HTTP door as a Hono app: raw message in, JSON verdict out. Runtime-neutral (no node: imports),
// so the Node server (http-node.ts) and the Deno edge entry serve the same app; everything with I/O
// (scan, learning, health, metrics, extra routes) is passed in.
import { Hono } from 'hono';
import type { Config } from '../core/config.ts';
import { type ErrorCode, FilterError, toFilterError } from '../core/errors.ts';
import type { ScanInput } from '../core/scan.ts';
import { publicVerdict, type Verdict } from '../core/verdict.ts';
import { readMessage } from './body.ts';
import { envelopeFromHeaders, type HeaderSource, toRspamd } from './rspamd.ts';
import { sameToken } from './token.ts';

export type LearnLabel = 'spam' | 'ham';

/** One readiness fact (pool up, store writable…); any `ok: false` makes /v1/health answer 503. */
export interface HealthCheck {
  name: string;
  ok: boolean;
  detail?: Record<string, unknown>;
}

export interface HttpAppDeps {
  config: Pick<Config, 'maxMessageBytes' | 'http' | 'thresholds' | 'smtp'>;
  scan(input: ScanInput): Promise<Verdict>;
  /** Trains the model on one message; absent when this process cannot learn (answers 503). */
  learn?: (raw: Uint8Array, label: LearnLabel) => Promise<object | void>;
  health?: () => HealthCheck[] | Promise<HealthCheck[]>;
  /** Prometheus exposition; absent on runtimes without a metrics registry (answers 404). */
  metrics?: { contentType: string; render(): Promise<string> };
  /** Sub-apps mounted as they are (e.g. the verdict history routes of the store). */
  mounts?: { path: string; app: Hono }[];
  /** Where unforeseen failures (500) are reported with their stack. */
  log?: (msg: string) => void;
}

// The one place where FilterError codes become HTTP statuses. A few protocol errors carry a more
// precise status in `details.status` (411 no length, 415 wrong type, 403 learning disabled, 404, 405).
const STATUS: Record<ErrorCode, number> = {
  EMALFORMED: 400,
  EPROTOCOL: 400,
  ETOOLARGE: 413,
  EAUTH: 401,
  EOVERLOAD: 503,
  ETIMEOUT: 503,
  EWORKER: 503,
  ESTORE: 503,
  ENEXTHOP: 502,
  ECONFIG: 500,
  ERULES: 500,
  EMODEL: 500,
  EINTERNAL: 500,
};

/** Seconds a client should wait before asking again; overload clears fastest. */
const RETRY_AFTER_S: Partial<Record<ErrorCode, number>> = { EOVERLOAD: 1, ETIMEOUT: 5, EWORKER: 5, ESTORE: 5 };

export function httpStatusOf(err: FilterError): number {
  const s = err.details.status;
  return typeof s === 'number' ? s : STATUS[err.code];
}

/** An answer as plain data, so the Hono routes and the Node fast path (http-node.ts) send the same bytes. */
export interface Answer {
  status: number;
  body: string;
  headers: Record<string, string>;
}

export function errorAnswer(e: unknown): Answer {
  const err = toFilterError(e);
  const status = httpStatusOf(err);
  const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' };
  const retry = RETRY_AFTER_S[err.code];
  if (retry !== undefined) headers['retry-after'] = String(retry);
  if (status === 401) headers['www-authenticate'] = 'Bearer realm="atlas-email"';
  // The rest of an oversized body is not worth reading: close instead of draining it for keep-alive.
  if (status === 413) headers.connection = 'close';
  return { status, body: JSON.stringify({ error: { code: err.code, message: err.message } }), headers };
}

export function errorResponse(e: unknown): Response {
  const a = errorAnswer(e);
  return new Response(a.body, { status: a.status, headers: a.headers });
}

/**
 * Raw message types accepted. Lenient: anything that can carry RFC 822 bytes, including curl's default
 * for --data-binary; multipart and JSON bodies are a client mistake worth naming.
 */
const MESSAGE_TYPE = /^\s*(message\/|text\/|application\/(octet-stream|x-www-form-urlencoded)\b)/i;

function checkContentType(h: HeaderSource): void {
  const t = h.get('content-type');
  if (t && !MESSAGE_TYPE.test(t)) {
    throw new FilterError('EPROTOCOL', `Content-Type "${t}" is not a raw message: send the RFC 822 bytes as message/rfc822`, {
      status: 415,
    });
  }
  // Scanning compressed bytes as mail would answer a confident verdict about garbage.
  const encoding = h.get('content-encoding') ?? h.get('compression');
  if (encoding && !/^\s*identity\s*$/i.test(encoding)) {
    throw new FilterError('EPROTOCOL', `compressed bodies (${encoding}) are not accepted: send the message uncompressed`, { status: 415 });
  }
}

/** The bearer token, or Rspamd's controller `Password` header (what `rspamc -P` sends). */
function authorize(h: Headers, token: string | null): void {
  if (!token) {
    throw new FilterError('EAUTH', 'learning over HTTP is disabled: set http.token in the config or ATLAS_API_TOKEN', {
      status: 403,
    });
  }
  const given = /^Bearer\s+(\S+)\s*$/i.exec(h.get('authorization') ?? '')?.[1] ?? h.get('password')?.trim();
  if (!given || !sameToken(given, token)) throw new FilterError('EAUTH', 'a valid "Authorization: Bearer <token>" header is required');
}

const notAllowed = (method: string) => () => {
  throw new FilterError('EPROTOCOL', `use ${method} on this path`, { status: 405 });
};

/** A tempfail caused by a failure (overload, timeout, worker crash) is an HTTP error with Retry-After. */
function failureOf(v: Verdict): FilterError | null {
  if (v.action !== 'tempfail' || !v.errorCode) return null;
  return new FilterError(v.errorCode as ErrorCode, v.reason ?? 'the message could not be judged now; try again later');
}

function stackOf(e: unknown): string {
  return e instanceof Error ? (e.stack ?? e.message) : String(e);
}

/** The paths whose POST carries a message to judge. */
export type MessagePath = '/v1/check' | '/checkv2';

/**
 * The message routes as runtime-neutral steps. The Hono app runs them for every runtime; the Node server
 * also runs them straight from node:http (http-node.ts), skipping the Fetch Request/Response objects on
 * the busiest paths. Either way a request goes through the same checks, scan and answer.
 */
export interface MessageRoutes {
  maxMessageBytes: number;
  /** Refuses (415) a body that is not a raw message; called before any of it is read. */
  checkHeaders(h: HeaderSource): void;
  /** Scans the message and builds the path's answer. */
  answer(path: MessagePath, raw: Uint8Array, h: HeaderSource): Promise<Answer>;
  /** The answer for anything thrown on the way, reported like the app's onError does. */
  fail(e: unknown): Answer;
}

const JSON_TYPE = { 'content-type': 'application/json' };

function messageRoutes(deps: HttpAppDeps): MessageRoutes {
  const { config } = deps;
  const rspamd = { reject: config.thresholds.reject, rewriteSubject: config.smtp.rewriteSubject };
  return {
    maxMessageBytes: config.maxMessageBytes,
    checkHeaders: checkContentType,
    async answer(path, raw, h) {
      const verdict = await deps.scan({ raw, envelope: envelopeFromHeaders(h) });
      // Rspamd clients expect 200 with "soft reject" for try-later, which they turn into an SMTP 4xx.
      if (path === '/checkv2') return { status: 200, body: JSON.stringify(toRspamd(verdict, rspamd)), headers: JSON_TYPE };
      const failure = failureOf(verdict);
      if (failure) return errorAnswer(failure);
      return { status: 200, body: JSON.stringify(publicVerdict(verdict)), headers: JSON_TYPE };
    },
    fail(e) {
      const err = toFilterError(e);
      if (err.code === 'EINTERNAL') deps.log?.(`http: ${stackOf(e)}`);
      return errorAnswer(err);
    },
  };
}

const routesOfApp = new WeakMap<Hono, MessageRoutes>();

/** The message routes of an app made by createHttpApp, for servers that can run them directly. */
export function messageRoutesOf(app: object): MessageRoutes | undefined {
  return routesOfApp.get(app as Hono);
}

export function createHttpApp(deps: HttpAppDeps): Hono {
  const { config } = deps;
  const app = new Hono();
  const routes = messageRoutes(deps);
  routesOfApp.set(app, routes);

  for (const path of ['/v1/check', '/checkv2'] as const) {
    app.post(path, async (c) => {
      const req = c.req.raw;
      routes.checkHeaders(req.headers);
      const raw = await readMessage(req, routes.maxMessageBytes);
      const a = await routes.answer(path, raw, req.headers);
      return new Response(a.body, { status: a.status, headers: a.headers });
    });
    app.all(path, notAllowed('POST'));
  }
  // Rspamd's liveness probe, used by its proxy and by load balancers configured for Rspamd.
  app.get('/ping', (c) => c.text('pong\r\n'));

  const learnRequest = async (req: Request, label: LearnLabel): Promise<object | void> => {
    authorize(req.headers, config.http.token);
    if (!deps.learn) throw new FilterError('EWORKER', 'this process has no classifier to train (started without the model?)');
    checkContentType(req.headers);
    const raw = await readMessage(req, config.maxMessageBytes);
    return deps.learn(raw, label);
  };

  app.post('/v1/learn/:label', async (c) => {
    const label = c.req.param('label');
    if (label !== 'spam' && label !== 'ham') throw new FilterError('EPROTOCOL', 'learn "spam" or "ham"', { status: 404 });
    const result = await learnRequest(c.req.raw, label);
    return c.json({ learned: label, ...(result ?? {}) });
  });
  app.all('/v1/learn/:label', notAllowed('POST'));
  // Rspamd's controller paths, so `rspamc -P TOKEN learn_spam FILE` trains this filter.
  for (const label of ['spam', 'ham'] as const) {
    app.post(`/learn${label}`, async (c) => {
      await learnRequest(c.req.raw, label);
      return c.json({ success: true });
    });
  }

  app.get('/v1/health', async (c) => {
    const checks = deps.health ? await deps.health() : [];
    const ok = checks.every((x) => x.ok);
    const body = {
      status: ok ? 'ok' : 'unavailable',
      checks: Object.fromEntries(checks.map((x) => [x.name, { ok: x.ok, ...x.detail }])),
    };
    return c.json(body, ok ? 200 : 503);
  });

  app.get('/metrics', async (c) => {
    if (!deps.metrics) throw new FilterError('EPROTOCOL', 'metrics are not collected in this runtime', { status: 404 });
    const text = await deps.metrics.render();
    return c.body(text, 200, { 'content-type': deps.metrics.contentType });
  });

  for (const m of deps.mounts ?? []) app.route(m.path, m.app);

  app.notFound((c) => errorResponse(new FilterError('EPROTOCOL', `no route for ${c.req.method} ${c.req.path}`, { status: 404 })));
  app.onError((e) => {
    const err = toFilterError(e);
    if (err.code === 'EINTERNAL') deps.log?.(`http: ${stackOf(e)}`);
    return errorResponse(err);
  });
  return app;
}
