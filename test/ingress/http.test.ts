// The HTTP contract through app.request(): no sockets, the real pipeline with the shipped rules.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createPipeline } from '../../src/cli/pipeline.ts';
import { type Config, defaultConfig } from '../../src/core/config.ts';
import { FilterError } from '../../src/core/errors.ts';
import type { Classifier } from '../../src/core/scan.ts';
import { createHttpApp, type HttpAppDeps } from '../../src/ingress/http.ts';
import { fixture, root } from '../helpers/env.ts';

function configWith(over: (c: Config) => void = () => {}): Config {
  const c = defaultConfig();
  c.rulesDir = path.join(root, 'rules');
  over(c);
  return c;
}

function appWith(opts: { config?: Config; classifier?: Classifier; deps?: Partial<HttpAppDeps> } = {}) {
  const config = opts.config ?? configWith();
  const pipeline = createPipeline(config, { classifier: opts.classifier, log: () => {} });
  const app = createHttpApp({ config, scan: (i) => pipeline.scan(i), ...opts.deps });
  return { app, pipeline };
}

const ham = fixture('ham-plain.eml');
const lottery = fixture('rules/SCAM_LOTTERY_WINNER.eml');
const sextortion = fixture('rules/SCAM_SEXTORTION.eml');

const post = (body: BodyInit | null, headers: Record<string, string> = {}) => ({
  method: 'POST',
  body,
  headers: body instanceof Uint8Array ? { 'content-length': String(body.length), ...headers } : headers,
});

/** A body that fails the test if anyone reads it: proves a refusal happened before buffering. */
function unreadableBody(): ReadableStream<Uint8Array> {
  return new ReadableStream({
    pull() {
      throw new Error('the body was read');
    },
  });
}

const overloaded: Classifier = {
  classify: () => Promise.reject(new FilterError('EOVERLOAD', 'the classifier is overloaded: 1000 messages already wait')),
};

describe('POST /v1/check', () => {
  it('answers the public verdict of a ham message', async () => {
    const { app } = appWith();
    const res = await app.request('/v1/check', post(ham, { 'content-type': 'message/rfc822' }));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const v = await res.json();
    expect(v).toMatchObject({ action: 'accept', spam: false, required: 5, messageId: '<20261123091200.12345@mail.example.org>' });
    expect(Object.keys(v)).toEqual(expect.arrayContaining(['action', 'score', 'required', 'spam', 'symbols', 'source', 'elapsedMs', 'messageId']));
    for (const internal of ['stages', 'sender', 'recipients', 'subject', 'relayIp']) expect(v).not.toHaveProperty(internal);
  });

  it('tags and rejects by the rules, with their symbols', async () => {
    const { app } = appWith();
    const tagged = await (await app.request('/v1/check', post(lottery))).json();
    expect(tagged).toMatchObject({ action: 'tag', spam: true, score: 8 });
    expect(tagged.symbols).toEqual([expect.objectContaining({ name: 'SCAM_LOTTERY_WINNER', score: 8 })]);
    const rejected = await (await app.request('/v1/check', post(sextortion))).json();
    expect(rejected).toMatchObject({ action: 'reject', source: 'early' });
  });

  it('takes the envelope from Rspamd-style headers (IP, From, Rcpt, Queue-Id)', async () => {
    const { app } = appWith();
    const plain = await (await app.request('/v1/check', post(ham))).json();
    expect(plain.symbols.map((s: { name: string }) => s.name)).not.toContain('RELAY_RESERVED_IP');

    const res = await app.request('/v1/check', post(ham, { IP: '240.1.2.3', 'Queue-Id': '4F1A2B3C', Rcpt: 'bob@example.net' }));
    const v = await res.json();
    expect(v.queueId).toBe('4F1A2B3C');
    expect(v.symbols.map((s: { name: string }) => s.name)).toContain('RELAY_RESERVED_IP');

    const denied = await (await app.request('/v1/check', post(ham, { From: 'x@mailer.invalid' }))).json();
    expect(denied).toMatchObject({ action: 'reject', source: 'early' });
    expect(denied.symbols[0].name).toBe('DENY_INVALID_SENDER_TLD');
  });

  it('splits repeated Rcpt headers into recipients', async () => {
    const seen: string[][] = [];
    const config = configWith();
    const pipeline = createPipeline(config, { log: () => {} });
    const app = createHttpApp({
      config,
      scan: (i) => {
        seen.push(i.envelope?.rcpt ?? []);
        return pipeline.scan(i);
      },
    });
    const headers = new Headers({ 'content-length': String(ham.length) });
    headers.append('Rcpt', 'a@example.net');
    headers.append('Rcpt', 'b@example.net');
    await app.request('/v1/check', { method: 'POST', body: ham, headers });
    expect(seen).toEqual([['a@example.net', 'b@example.net']]);
  });

  it('accepts the raw-message content types and refuses others with 415', async () => {
    const { app } = appWith();
    for (const type of ['message/rfc822', 'application/octet-stream', 'text/plain; charset=utf-8', 'application/x-www-form-urlencoded']) {
      expect((await app.request('/v1/check', post(ham, { 'content-type': type }))).status, type).toBe(200);
    }
    for (const type of ['application/json', 'multipart/form-data; boundary=x']) {
      const res = await app.request('/v1/check', post(ham, { 'content-type': type }));
      expect(res.status, type).toBe(415);
      expect((await res.json()).error).toMatchObject({ code: 'EPROTOCOL', message: expect.stringContaining('message/rfc822') });
    }
  });

  it('refuses compressed bodies (Content-Encoding, Rspamd\'s Compression) with 415', async () => {
    const { app } = appWith();
    for (const h of [{ 'content-encoding': 'gzip' }, { Compression: 'zstd' }]) {
      const res = await app.request('/checkv2', post(ham, h));
      expect(res.status).toBe(415);
      expect((await res.json()).error.message).toContain('uncompressed');
    }
    expect((await app.request('/v1/check', post(ham, { 'content-encoding': 'identity' }))).status).toBe(200);
  });

  it('answers 400 EMALFORMED for an empty message', async () => {
    const { app } = appWith();
    const res = await app.request('/v1/check', post(new Uint8Array(0)));
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: { code: 'EMALFORMED', message: 'the message is empty' } });
  });

  it('answers 400 for a Content-Length that is not a number', async () => {
    const { app } = appWith();
    const res = await app.request('/v1/check', { method: 'POST', body: ham, headers: { 'content-length': '12abc' } });
    expect(res.status).toBe(400);
    expect((await res.json()).error.code).toBe('EPROTOCOL');
  });

  it('answers 411 when there is neither a length nor a body', async () => {
    const { app } = appWith();
    const res = await app.request('/v1/check', { method: 'POST' });
    expect(res.status).toBe(411);
    expect((await res.json()).error.code).toBe('EPROTOCOL');
  });

  it('refuses an oversized Content-Length with 413 before reading the body', async () => {
    const { app } = appWith({ config: configWith((c) => (c.maxMessageBytes = 1000)) });
    const res = await app.request('/v1/check', {
      method: 'POST',
      body: unreadableBody(),
      headers: { 'content-length': '5000000' },
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(res.headers.get('connection')).toBe('close');
    expect((await res.json()).error).toMatchObject({ code: 'ETOOLARGE', message: expect.stringContaining('5000000') });
  });

  it('cuts a chunked body off as soon as it passes the limit', async () => {
    const { app } = appWith({ config: configWith((c) => (c.maxMessageBytes = 1000)) });
    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        if (pulled > 100) throw new Error('kept reading past the limit');
        controller.enqueue(new Uint8Array(400).fill(65));
      },
    });
    const res = await app.request('/v1/check', { method: 'POST', body: endless, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(413);
    expect(pulled).toBeLessThanOrEqual(4);
  });

  it('scans a chunked body within the limit', async () => {
    const { app } = appWith();
    const half = Math.floor(lottery.length / 2);
    const chunks = [lottery.subarray(0, half), lottery.subarray(half)];
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        const c = chunks.shift();
        if (c) controller.enqueue(c);
        else controller.close();
      },
    });
    const res = await app.request('/v1/check', { method: 'POST', body, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(200);
    expect((await res.json()).symbols[0].name).toBe('SCAM_LOTTERY_WINNER');
  });

  it('answers 503 with Retry-After when the classifier pool is overloaded', async () => {
    const { app } = appWith({ classifier: overloaded });
    const res = await app.request('/v1/check', post(ham));
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect((await res.json()).error).toMatchObject({ code: 'EOVERLOAD', message: expect.stringContaining('overloaded') });
  });

  it('still answers early verdicts while the pool is overloaded', async () => {
    const { app } = appWith({ classifier: overloaded });
    const res = await app.request('/v1/check', post(sextortion));
    expect(res.status).toBe(200);
    expect((await res.json()).action).toBe('reject');
  });

  it('answers 405 for other methods and a JSON 404 for unknown paths', async () => {
    const { app } = appWith();
    const get = await app.request('/v1/check');
    expect(get.status).toBe(405);
    expect((await get.json()).error.code).toBe('EPROTOCOL');
    const missing = await app.request('/nope');
    expect(missing.status).toBe(404);
    expect((await missing.json()).error.message).toContain('/nope');
  });
});

describe('POST /checkv2 (Rspamd protocol)', () => {
  it('answers Rspamd JSON: score, required_score, action, symbols, milter headers', async () => {
    const { app } = appWith();
    const res = await app.request('/checkv2', post(lottery, { 'Queue-Id': 'Q1', Rcpt: 'bob@example.net' }));
    expect(res.status).toBe(200);
    const r = await res.json();
    expect(r).toMatchObject({
      is_skipped: false,
      score: 8,
      required_score: 5,
      action: 'add header',
      thresholds: { reject: 15, 'add header': 5 },
      'message-id': '<3781.7289@mailer.example.com>',
    });
    expect(typeof r.time_real).toBe('number');
    expect(r.symbols.SCAM_LOTTERY_WINNER).toMatchObject({ name: 'SCAM_LOTTERY_WINNER', score: 8 });
    expect(r.milter.add_headers).toMatchObject({ 'X-Spam-Flag': 'YES', 'X-Spam-Score': '8.0', 'X-Spam-Level': '********' });
    expect(r.milter.add_headers['X-Spam-Status']).toMatch(/^Yes, score=8\.0 required=5\.0 tests=SCAM_LOTTERY_WINNER/);
    expect(r.milter.remove_headers['X-Spam-Flag']).toBe(0);
  });

  it('maps every action to Rspamd\'s strings', async () => {
    const plain = appWith().app;
    const action = async (app: typeof plain, raw: Uint8Array) => (await (await app.request('/checkv2', post(raw))).json()).action;
    expect(await action(plain, ham)).toBe('no action');
    expect(await action(plain, lottery)).toBe('add header');
    expect(await action(plain, sextortion)).toBe('reject');
    const quarantine = appWith({ config: configWith((c) => (c.thresholds.quarantine = 7)) }).app;
    expect(await action(quarantine, lottery)).toBe('quarantine');
    expect(await action(appWith({ classifier: overloaded }).app, ham)).toBe('soft reject');
  });

  it('answers "rewrite subject" with the new subject when a subject prefix is configured', async () => {
    const { app } = appWith({ config: configWith((c) => (c.smtp.rewriteSubject = '[SPAM] ')) });
    const r = await (await app.request('/checkv2', post(lottery))).json();
    expect(r).toMatchObject({ action: 'rewrite subject', subject: '[SPAM] Notification' });
  });

  it('gives the reason of a reject as smtp_message and adds no headers', async () => {
    const { app } = appWith();
    const r = await (await app.request('/checkv2', post(sextortion))).json();
    expect(r.messages.smtp_message).toContain('SCAM_SEXTORTION');
    expect(r.milter.add_headers).toEqual({});
  });

  it('answers pong on /ping', async () => {
    const res = await appWith().app.request('/ping');
    expect(await res.text()).toBe('pong\r\n');
  });
});

describe('POST /v1/learn/:label', () => {
  const learned: [string, string][] = [];
  const learn = async (raw: Uint8Array, label: 'spam' | 'ham') => {
    learned.push([new TextDecoder().decode(raw).slice(0, 12), label]);
    return { messages: learned.length };
  };
  const withToken = configWith((c) => (c.http.token = 's3cret-token'));

  it('is refused with 403 when no token is configured', async () => {
    const { app } = appWith({ deps: { learn } });
    const res = await app.request('/v1/learn/spam', post(lottery, { authorization: 'Bearer anything' }));
    expect(res.status).toBe(403);
    expect((await res.json()).error).toMatchObject({ code: 'EAUTH', message: expect.stringContaining('ATLAS_API_TOKEN') });
  });

  it('is refused with 401 without the right bearer token', async () => {
    const { app } = appWith({ config: withToken, deps: { learn } });
    for (const auth of [undefined, 'Bearer wrong-token', 'Basic czNjcmV0LXRva2Vu', 'Bearer s3cret-tokenX']) {
      const res = await app.request('/v1/learn/spam', post(lottery, auth ? { authorization: auth } : {}));
      expect(res.status, String(auth)).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect((await res.json()).error.code).toBe('EAUTH');
    }
    expect(learned).toEqual([]);
  });

  it('trains with the right token', async () => {
    const { app } = appWith({ config: withToken, deps: { learn } });
    const spam = await app.request('/v1/learn/spam', post(lottery, { authorization: 'Bearer s3cret-token' }));
    expect(spam.status).toBe(200);
    expect(await spam.json()).toEqual({ learned: 'spam', messages: 1 });
    const hamRes = await app.request('/v1/learn/ham', post(ham, { authorization: 'bearer s3cret-token' }));
    expect(await hamRes.json()).toEqual({ learned: 'ham', messages: 2 });
    expect(learned).toEqual([
      ['Return-Path:', 'spam'],
      ['Return-Path:', 'ham'],
    ]);
  });

  it('takes Rspamd\'s controller paths and Password header (rspamc -P TOKEN learn_spam)', async () => {
    const before = learned.length;
    const { app } = appWith({ config: withToken, deps: { learn } });
    const res = await app.request('/learnspam', post(lottery, { Password: 's3cret-token' }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ success: true });
    expect(learned.slice(before)).toEqual([['Return-Path:', 'spam']]);
    expect((await app.request('/learnham', post(ham, { Password: 'nope' }))).status).toBe(401);
  });

  it('answers 404 for another label, 405 for GET, 503 when this process cannot learn', async () => {
    const auth = { authorization: 'Bearer s3cret-token' };
    expect((await appWith({ config: withToken, deps: { learn } }).app.request('/v1/learn/eggs', post(ham, auth))).status).toBe(404);
    expect((await appWith({ config: withToken, deps: { learn } }).app.request('/v1/learn/spam')).status).toBe(405);
    const res = await appWith({ config: withToken }).app.request('/v1/learn/spam', post(ham, auth));
    expect(res.status).toBe(503);
    expect((await res.json()).error.code).toBe('EWORKER');
  });
});

describe('GET /v1/health and /metrics', () => {
  it('answers 200 when every check passes and 503 naming the failing one', async () => {
    const good = appWith({ deps: { health: () => [{ name: 'pool', ok: true, detail: { workers: 2 } }] } }).app;
    const ok = await good.request('/v1/health');
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ status: 'ok', checks: { pool: { ok: true, workers: 2 } } });

    const bad = appWith({
      deps: { health: async () => [{ name: 'pool', ok: true }, { name: 'store', ok: false, detail: { error: 'read-only' } }] },
    }).app;
    const down = await bad.request('/v1/health');
    expect(down.status).toBe(503);
    expect(await down.json()).toEqual({ status: 'unavailable', checks: { pool: { ok: true }, store: { ok: false, error: 'read-only' } } });
  });

  it('serves the metrics text it is given, and 404 without a registry', async () => {
    const app = appWith({ deps: { metrics: { contentType: 'text/plain; version=0.0.4', render: async () => 'atlas_up 1\n' } } }).app;
    const res = await app.request('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4');
    expect(await res.text()).toBe('atlas_up 1\n');
    expect((await appWith().app.request('/metrics')).status).toBe(404);
  });
});
