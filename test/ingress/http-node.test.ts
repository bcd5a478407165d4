// The Node server around the app, over real sockets: timeouts for stalled clients, early 413, and a
// shutdown that lets in-flight requests finish.
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createPipeline } from '../../src/cli/pipeline.ts';
import { defaultConfig } from '../../src/core/config.ts';
import type { ScanInput } from '../../src/core/scan.ts';
import type { Verdict } from '../../src/core/verdict.ts';
import { createHttpApp } from '../../src/ingress/http.ts';
import { type HttpServer, type HttpServerOptions, startHttpServer } from '../../src/ingress/http-node.ts';
import { fixture, root } from '../helpers/env.ts';

const config = defaultConfig();
config.rulesDir = path.join(root, 'rules');
config.maxMessageBytes = 64 * 1024;
const pipeline = createPipeline(config, { log: () => {} });
const ham = fixture('ham-plain.eml');

const servers: HttpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(scan: (i: ScanInput) => Promise<Verdict> = (i) => pipeline.scan(i), over: Partial<HttpServerOptions> = {}) {
  const app = createHttpApp({ config, scan });
  const s = await startHttpServer({ host: '127.0.0.1', port: 0, app, log: () => {}, ...over });
  servers.push(s);
  return s;
}

/** Writes raw bytes on a socket and collects everything until the server closes it (bounded). */
function rawExchange(port: number, chunks: string[], waitMs = 10_000): Promise<{ text: string; closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let text = '';
    const guard = setTimeout(() => {
      sock.destroy();
      resolve({ text, closedByServer: false });
    }, waitMs);
    sock.on('connect', () => {
      for (const c of chunks) sock.write(c);
    });
    sock.on('data', (d) => (text += d.toString('latin1')));
    sock.on('error', (e) => {
      clearTimeout(guard);
      reject(e);
    });
    sock.on('close', () => {
      clearTimeout(guard);
      resolve({ text, closedByServer: true });
    });
  });
}

describe('startHttpServer', () => {
  it('binds port 0 and reports the bound address', async () => {
    const s = await start();
    expect(s.address).toBe(`127.0.0.1:${s.port}`);
    expect(s.port).toBeGreaterThan(0);
    const res = await fetch(`http://${s.address}/v1/check`, { method: 'POST', body: ham, headers: { IP: '240.0.0.9' } });
    expect(res.status).toBe(200);
    const v = await res.json();
    expect(v.symbols.map((x: { name: string }) => x.name)).toContain('RELAY_RESERVED_IP');
  });

  it('cuts off a client that never finishes its headers', async () => {
    const s = await start(undefined, { headersTimeoutMs: 300, requestTimeoutMs: 600 });
    const r = await rawExchange(s.port, ['POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Le']);
    expect(r.closedByServer).toBe(true);
    expect(r.text).toMatch(/^HTTP\/1\.1 408/);
  });

  it('cuts off a client that stalls in the middle of its body', async () => {
    let scanned = 0;
    const s = await start(
      (i) => {
        scanned++;
        return pipeline.scan(i);
      },
      { headersTimeoutMs: 300, requestTimeoutMs: 600 },
    );
    const r = await rawExchange(s.port, ['POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\nFrom: a@b.example\r\n']);
    expect(r.closedByServer).toBe(true);
    expect(r.text).toMatch(/^HTTP\/1\.1 408/);
    expect(scanned).toBe(0);
  });

  it('answers 413 from the declared length and closes instead of reading the rest', async () => {
    const s = await start();
    const r = await rawExchange(s.port, [`POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: ${10 * 1024 * 1024}\r\n\r\nFrom: a@b.example\r\n`]);
    expect(r.closedByServer).toBe(true);
    expect(r.text).toMatch(/^HTTP\/1\.1 413/);
    expect(r.text).toMatch(/connection: close/i);
    expect(r.text).toContain('"code":"ETOOLARGE"');
  });

  it('reads a chunked upload and answers the verdict', async () => {
    const s = await start();
    const body = Buffer.from(ham).toString('latin1');
    const half = Math.floor(body.length / 2);
    const chunk = (c: string) => `${Buffer.byteLength(c, 'latin1').toString(16)}\r\n${c}\r\n`;
    const r = await rawExchange(s.port, [
      'POST /v1/check HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n',
      chunk(body.slice(0, half)),
      chunk(body.slice(half)),
      '0\r\n\r\n',
    ]);
    expect(r.text).toMatch(/^HTTP\/1\.1 200/);
    expect(r.text).toContain('"action":"accept"');
  });

  it('on close: cuts a request that outlives the drain timeout, so shutdown always ends', async () => {
    let entered: () => void = () => {};
    const inScan = new Promise<void>((r) => (entered = r));
    const s = await start(
      () => {
        entered();
        return new Promise<Verdict>(() => {});
      },
      { drainTimeoutMs: 300 },
    );
    const stuck = fetch(`http://${s.address}/v1/check`, { method: 'POST', body: ham }).then(
      () => 'answered',
      () => 'cut',
    );
    await inScan;
    await servers.splice(0)[0]!.close();
    expect(await stuck).toBe('cut');
  });

  it('on close: refuses new connections, finishes the request in flight, then resolves', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    let entered: () => void = () => {};
    const inScan = new Promise<void>((r) => (entered = r));
    const s = await start(async (i) => {
      entered();
      await gate;
      return pipeline.scan(i);
    });
    const inflight = fetch(`http://${s.address}/v1/check`, { method: 'POST', body: ham });
    await inScan;
    let closed = false;
    const closing = servers.splice(0)[0]!.close().then(() => (closed = true));
    await expect(fetch(`http://${s.address}/v1/health`)).rejects.toThrow();
    expect(closed).toBe(false);
    release();
    const res = await inflight;
    expect(res.status).toBe(200);
    expect(res.headers.get('connection')).not.toBe('keep-alive');
    expect((await res.json()).action).toBe('accept');
    await closing;
    expect(closed).toBe(true);
  });
});

// POST /v1/check and /checkv2 are answered straight from node:http (http-node.ts fastMessage); the
// same requests through the Hono app (the same server given a wrapper of the app, which it does not
// recognise) must get the same status, headers and verdict.
describe('startHttpServer: the message routes without the Fetch layer', () => {
  const seen: ScanInput[] = [];
  const app = createHttpApp({
    config,
    scan: (i) => {
      seen.push(i);
      return pipeline.scan(i);
    },
  });
  /** The answer as compared: timings differ from run to run. */
  const comparable = async (res: Response) => {
    const text = await res.text();
    const json = JSON.parse(text) as Record<string, unknown>;
    delete json.elapsedMs;
    delete json.time_real;
    return { status: res.status, type: res.headers.get('content-type'), retry: res.headers.get('retry-after'), json };
  };
  const cases: { name: string; path: string; body?: Uint8Array | string; chunked?: boolean; headers: [string, string][] }[] = [
    { name: 'a verdict', path: '/v1/check', body: ham, headers: [['Content-Type', 'message/rfc822'], ['IP', '240.0.0.9']] },
    {
      name: 'an Rspamd verdict with a repeated Rcpt and two From fields',
      path: '/checkv2',
      body: ham,
      headers: [['Rcpt', 'a@example.net'], ['rcpt', ' b@example.net '], ['From', 'x@example.org'], ['from', 'y@example.org'], ['Queue-Id', 'Q1']],
    },
    { name: 'a JSON body (415)', path: '/v1/check', body: '{}', headers: [['content-type', 'application/json']] },
    { name: 'a compressed body (415)', path: '/checkv2', body: ham, headers: [['Content-Encoding', 'gzip']] },
    { name: 'an empty body (400)', path: '/v1/check', body: '', headers: [] },
    { name: 'a declared length over the limit (413)', path: '/v1/check', body: new Uint8Array(config.maxMessageBytes + 1), headers: [] },
    { name: 'a chunked upload', path: '/v1/check', body: ham, chunked: true, headers: [] },
    { name: 'a chunked upload over the limit (413)', path: '/checkv2', body: new Uint8Array(config.maxMessageBytes + 1), chunked: true, headers: [] },
  ];
  for (const c of cases) {
    it(`answers ${c.name} as the app does`, async () => {
      const direct = await startHttpServer({ host: '127.0.0.1', port: 0, app, log: () => {} });
      const viaHono = await startHttpServer({ host: '127.0.0.1', port: 0, app: { fetch: (r) => app.fetch(r) }, log: () => {} });
      servers.push(direct, viaHono);
      seen.length = 0;
      // A stream body has no length: fetch sends it chunked.
      const body = () => (c.chunked ? new Blob([c.body as Uint8Array]).stream() : c.body);
      const init = () => ({ method: 'POST', body: body(), headers: c.headers, duplex: 'half' }) as RequestInit;
      const viaNode = await comparable(await fetch(`http://${direct.address}${c.path}`, init()));
      const nodeInputs = seen.splice(0);
      const viaApp = await comparable(await fetch(`http://${viaHono.address}${c.path}`, init()));
      expect(viaNode).toEqual(viaApp);
      // The scan saw the same envelope both ways (Fetch joins repeated fields with ", ").
      expect(nodeInputs.map((i) => i.envelope)).toEqual(seen.map((i) => i.envelope));
    });
  }

  it('keeps answering pipelined requests in order on one connection', async () => {
    const direct = await startHttpServer({ host: '127.0.0.1', port: 0, app, log: () => {} });
    servers.push(direct);
    const body = Buffer.from(ham).toString('latin1');
    const req = (q: string) => `POST /v1/check HTTP/1.1\r\nHost: x\r\nQueue-Id: ${q}\r\nContent-Length: ${Buffer.byteLength(body, 'latin1')}\r\n\r\n${body}`;
    const last = `POST /checkv2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\n\r\nx: y\n`;
    const r = await rawExchange(direct.port, [req('P1') + req('P2') + last]);
    expect(r.closedByServer).toBe(true);
    expect([...r.text.matchAll(/"queueId":"(\w+)"/g)].map((m) => m[1])).toEqual(['P1', 'P2']);
    expect(r.text.match(/HTTP\/1\.1 200/g)).toHaveLength(3);
  });
});
