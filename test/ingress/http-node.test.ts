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
