// The SMTP door against a real next hop (smtp-server sink on port 0), driven by a raw SMTP client.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createPipeline, type Pipeline } from '../../src/cli/pipeline.ts';
import net from 'node:net';
import { type Config, defaultConfig } from '../../src/core/config.ts';
import { FilterError } from '../../src/core/errors.ts';
import type { ScanInput } from '../../src/core/scan.ts';
import type { Verdict } from '../../src/core/verdict.ts';
import { startSmtpDoor, type SmtpDoor, type SmtpDoorOptions } from '../../src/ingress/smtp.ts';
import { createReinjector } from '../../src/ingress/smtp/reinject.ts';
import { root } from '../helpers/env.ts';
import { type Sink, type SinkOptions, smtpSend, startSink } from '../helpers/smtp.ts';

const ham = readFileSync(path.join(root, 'test/fixtures/smtp/ham-forged-headers.eml'));
const withSubject = (s: string) => Buffer.from(ham.toString('latin1').replace('Subject: Lunch on Friday', `Subject: ${s}`), 'latin1');

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

function testConfig(over: Partial<Config['smtp']> = {}, maxMessageBytes?: number): Config {
  const c = defaultConfig();
  c.rulesDir = path.join(root, 'test/fixtures/smtp/rules');
  c.smtp.quarantineDir = mkdtempSync(path.join(os.tmpdir(), 'atlas-quarantine-'));
  Object.assign(c.smtp, over);
  if (maxMessageBytes) c.maxMessageBytes = maxMessageBytes;
  return c;
}

async function setup(
  o: { sink?: SinkOptions; config?: Config; door?: Partial<SmtpDoorOptions>; sinkDown?: boolean } = {},
): Promise<{ door: SmtpDoor; sink: Sink; config: Config; pipeline: Pipeline; seen: ScanInput[] }> {
  const config = o.config ?? testConfig();
  const sink = await startSink(o.sink);
  if (o.sinkDown) await sink.close();
  else cleanup.push(() => sink.close());
  const pipeline = createPipeline(config, { log: () => {} });
  const seen: ScanInput[] = [];
  const door = await startSmtpDoor({
    host: '127.0.0.1',
    port: 0,
    nextHop: { host: '127.0.0.1', port: sink.port },
    scan: (input) => {
      seen.push(input);
      return pipeline.scan(input);
    },
    config,
    ...o.door,
  });
  cleanup.push(async () => {
    await door.close();
    await pipeline.close();
  });
  return { door, sink, config, pipeline, seen };
}

describe('SMTP door: the delivery promise', () => {
  it('re-injects ham tagged No, with the envelope kept and the body untouched, and answers 250 with the next hop reply', async () => {
    const { door, sink } = await setup();
    const r = await smtpSend(door.port, { from: '', to: ['bob@test.local', 'carol@test.local'], data: ham });
    expect(r.code).toBe(250);
    expect(r.text).toMatch(/^2\.0\.0 Ok: ham .*next hop said: 250 2\.0\.0 Ok: sink id 1/);
    expect(sink.messages).toHaveLength(1);
    const m = sink.messages[0];
    expect(m.from).toBe('');
    expect(m.to).toEqual(['bob@test.local', 'carol@test.local']);
    const text = m.raw.toString('latin1');
    expect(text).toContain('\r\nX-Spam-Flag: NO\r\n');
    expect(text).toMatch(/\r\nX-Spam-Status: No, score=0\.0 required=5\.0 tests=none\r\n/);
    expect(text).not.toContain('forged');
    expect(text).not.toContain('X-Spam-Flag: YES');
    const body = (b: Buffer) => b.subarray(b.indexOf('\r\n\r\n'));
    expect(body(m.raw).equals(body(ham))).toBe(true);
  });

  it('tags spam Yes and rewrites the Subject when configured', async () => {
    const { door, sink } = await setup({ config: testConfig({ rewriteSubject: '[SPAM] ' }) });
    const r = await smtpSend(door.port, { from: 'alice@example.org', to: ['bob@test.local'], data: withSubject('ATLAS-TEST-SPAMMY offer') });
    expect(r.code).toBe(250);
    const text = sink.messages[0].raw.toString('latin1');
    expect(text).toContain('\r\nSubject: [SPAM] ATLAS-TEST-SPAMMY offer\r\n');
    expect(text).toContain('\r\nX-Spam-Flag: YES\r\n');
    expect(text).toContain('\r\nX-Spam-Level: *******\r\n');
    expect(text).toContain('X-Spam-Status: Yes, score=7.5 required=5.0 tests=TEST_SPAMMY');
  });

  it('answers 550 5.7.1 with the reason on reject and delivers nothing', async () => {
    const { door, sink } = await setup();
    const r = await smtpSend(door.port, { from: 'alice@example.org', to: ['bob@test.local'], data: withSubject('ATLAS-TEST-REJECT') });
    expect(r).toEqual({ code: 550, text: expect.stringMatching(/^5\.7\.1 Message rejected as spam: TEST_REJECT: test marker that rejects/) });
    expect(sink.messages).toHaveLength(0);
  });

  it('keeps a quarantined message on disk with its envelope, answers 250, delivers nothing', async () => {
    const { door, sink, config } = await setup();
    const r = await smtpSend(door.port, { from: 'alice@example.org', to: ['bob@test.local'], data: withSubject('ATLAS-TEST-QUARANTINE') });
    expect(r.code).toBe(250);
    const id = /quarantined as (\S+)/.exec(r.text)?.[1] as string;
    expect(id).toBeTruthy();
    expect(sink.messages).toHaveLength(0);
    const files = readdirSync(config.smtp.quarantineDir).sort();
    expect(files).toEqual([`${id}.eml`, `${id}.json`]);
    const rec = JSON.parse(readFileSync(path.join(config.smtp.quarantineDir, `${id}.json`), 'utf8'));
    expect(rec.envelope).toMatchObject({ from: 'alice@example.org', rcpt: ['bob@test.local'] });
    expect(rec.verdict.action).toBe('quarantine');
    expect(readFileSync(path.join(config.smtp.quarantineDir, `${id}.eml`), 'latin1')).toContain('ATLAS-TEST-QUARANTINE');
  });

  it('answers 451 when a rule asks for a retry', async () => {
    const { door, sink } = await setup();
    const r = await smtpSend(door.port, { from: 'a@example.org', to: ['bob@test.local'], data: withSubject('ATLAS-TEST-TEMPFAIL') });
    expect(r.code).toBe(451);
    expect(r.text).toMatch(/^4\.7\.1 /);
    expect(sink.messages).toHaveLength(0);
  });

  it('answers 451 4.4.1 when the next hop is down', async () => {
    const { door } = await setup({ sinkDown: true });
    const r = await smtpSend(door.port, { from: 'a@example.org', to: ['bob@test.local'], data: ham });
    expect(r.code).toBe(451);
    expect(r.text).toMatch(/^4\.4\.1 Next hop did not accept the message.*ENEXTHOP/);
  });

  it.each([451, 554])('answers 451 when the next hop answers %i to the data', async (code) => {
    const { door, sink } = await setup({ sink: { dataCode: () => code } });
    const r = await smtpSend(door.port, { from: 'a@example.org', to: ['bob@test.local'], data: ham });
    expect(r.code).toBe(451);
    expect(r.text).toContain(String(code));
    expect(sink.messages).toHaveLength(0);
  });

  it('answers 451 4.4.1 when the next hop is too slow to answer the data', async () => {
    const sink = await startSink({ delayMs: 2_000 });
    cleanup.push(() => sink.close());
    const reinjector = createReinjector({ host: '127.0.0.1', port: sink.port, timeoutMs: 300 });
    const { door } = await setup({ door: { reinjector } });
    const r = await smtpSend(door.port, { from: 'a@example.org', to: ['bob@test.local'], data: ham });
    expect(r.code).toBe(451);
    expect(r.text).toMatch(/^4\.4\.1 .*ENEXTHOP/);
  });

  it('answers 451 when the next hop accepts only some recipients (the whole message is retried)', async () => {
    const { door, sink } = await setup({ sink: { rcptCode: (a) => (a === 'gone@test.local' ? 550 : undefined) } });
    const r = await smtpSend(door.port, { from: 'a@example.org', to: ['bob@test.local', 'gone@test.local'], data: ham });
    expect(r.code).toBe(451);
    expect(r.text).toMatch(/refused 1 of 2 recipients/);
    // The accepted half went through; the retry may duplicate it for bob, but gone@ is not lost.
    expect(sink.messages.map((m) => m.to)).toEqual([['bob@test.local']]);
  });

  it('answers 451 4.4.7 when the scan does not finish in time', async () => {
    const never = () => new Promise<Verdict>(() => {});
    const { door, sink } = await setup({ door: { scan: never, scanTimeoutMs: 200 } });
    const r = await smtpSend(door.port, { from: 'a@example.org', to: ['bob@test.local'], data: ham });
    expect(r.code).toBe(451);
    expect(r.text).toMatch(/^4\.4\.7 .*ETIMEOUT/);
    expect(sink.messages).toHaveLength(0);
  });

  it('answers 451 4.3.0 when the scan throws something unforeseen', async () => {
    const { door } = await setup({ door: { scan: () => Promise.reject(new TypeError('boom')) } });
    const r = await smtpSend(door.port, { from: 'a@example.org', to: ['bob@test.local'], data: ham });
    expect(r).toEqual({ code: 451, text: expect.stringMatching(/^4\.3\.0 Internal filter error.*EINTERNAL: boom/) });
  });

  it('refuses a message over maxMessageBytes with 552 5.3.4, counted while streaming', async () => {
    const { door, sink, seen } = await setup({ config: testConfig({}, 4096) });
    const huge = Buffer.concat([ham, Buffer.from(`${'y'.repeat(78)}\r\n`.repeat(100))]);
    const r = await smtpSend(door.port, { from: 'a@example.org', to: ['bob@test.local'], data: huge });
    expect(r.code).toBe(552);
    expect(r.text).toMatch(/^5\.3\.4 /);
    expect(seen).toHaveLength(0);
    expect(sink.messages).toHaveLength(0);
  });
});

describe('SMTP door: overload and limits', () => {
  it('answers 451 4.3.2 when the classifier pool is full (EOVERLOAD)', async () => {
    const config = testConfig();
    const pipeline = createPipeline(config, {
      log: () => {},
      classifier: { classify: () => Promise.reject(new FilterError('EOVERLOAD', 'the pool queue is full')) },
    });
    cleanup.push(() => pipeline.close());
    const { door, sink } = await setup({ config, door: { scan: (i) => pipeline.scan(i) } });
    const r = await smtpSend(door.port, { from: 'a@example.org', to: ['bob@test.local'], data: ham });
    expect(r).toEqual({ code: 451, text: expect.stringMatching(/^4\.3\.2 Filter overloaded.*EOVERLOAD: the pool queue is full/) });
    expect(sink.messages).toHaveLength(0);
  });

  it('turns away connections past maxClients with a 421 (Postfix retries)', async () => {
    const { door } = await setup({ config: testConfig({ maxClients: 1 }) });
    const first = net.connect(door.port, '127.0.0.1');
    cleanup.push(async () => void first.destroy());
    await new Promise((r) => first.once('data', r));
    const second = await new Promise<string>((resolve) => {
      const s = net.connect(door.port, '127.0.0.1');
      s.once('data', (d) => {
        s.destroy();
        resolve(d.toString());
      });
    });
    expect(second).toMatch(/^421 /);
  });

  it('forgets a transaction whose client vanishes mid-message (shutdown does not wait for it)', async () => {
    const { door, sink } = await setup();
    const s = net.connect(door.port, '127.0.0.1');
    let seen = '';
    s.on('data', (d) => (seen += d));
    const waitFor = async (re: RegExp) => {
      for (let i = 0; i < 200 && !re.test(seen); i++) await new Promise((r) => setTimeout(r, 10));
    };
    await waitFor(/^220 /m);
    s.write('EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<bob@test.local>\r\nDATA\r\n');
    await waitFor(/^354 /m);
    s.write('Subject: half\r\n\r\nonly the first part');
    for (let i = 0; i < 100 && door.inFlight === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(door.inFlight).toBe(1);
    s.destroy();
    for (let i = 0; i < 100 && door.inFlight > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(door.inFlight).toBe(0);
    expect(sink.messages).toHaveLength(0);
  });
});

describe('SMTP door: pipelining', () => {
  it('answers a pipelined MAIL, RCPT and DATA in one write, and still takes the message', async () => {
    const { door, sink } = await setup();
    const s = net.connect(door.port, '127.0.0.1');
    cleanup.push(async () => void s.destroy());
    s.setNoDelay(true);
    const chunks: string[] = [];
    s.on('data', (d) => chunks.push(d.toString('latin1')));
    const waitFor = async (re: RegExp) => {
      for (let i = 0; i < 300 && !re.test(chunks.join('')); i++) await new Promise((r) => setTimeout(r, 10));
      expect(chunks.join('')).toMatch(re);
    };
    await waitFor(/^220 /m);
    s.write('EHLO client.test\r\n');
    await waitFor(/PIPELINING[\s\S]*^250 /m);
    chunks.length = 0;
    s.write('MAIL FROM:<a@example.org>\r\nRCPT TO:<bob@test.local>\r\nDATA\r\n');
    await waitFor(/^354 /m);
    // One write by the door arrives as one read here on loopback; three writes would be three reads.
    expect(chunks).toHaveLength(1);
    expect(chunks[0]).toMatch(/^250 [^\r]*\r\n250 [^\r]*\r\n354 /);
    s.write(Buffer.concat([ham, Buffer.from('\r\n.\r\n')]));
    await waitFor(/^250 2\.0\.0 Ok: ham/m);
    expect(sink.messages).toHaveLength(1);
  });
});

describe('SMTP door: XFORWARD', () => {
  it('scans with the forwarded client and passes XFORWARD on to the next hop', async () => {
    const { door, sink, seen } = await setup();
    const r = await smtpSend(door.port, {
      from: 'alice@example.org',
      to: ['bob@test.local'],
      data: ham,
      xforward: 'XFORWARD NAME=client.example ADDR=198.51.100.7 PORT=40000 PROTO=ESMTP HELO=client.example IDENT=4ABC123',
    });
    expect(r.code).toBe(250);
    expect(seen[0].envelope).toMatchObject({ ip: '198.51.100.7', helo: 'client.example', queueId: '4ABC123', from: 'alice@example.org' });
    expect(sink.messages[0].xForward).toMatchObject({ ADDR: '198.51.100.7', HELO: 'client.example', IDENT: '4ABC123', NAME: 'client.example' });
  });
});

describe('SMTP door: XFORWARD from an untrusted peer', () => {
  it('is refused (it could be forged to dodge IP rules); mail without it still flows', async () => {
    const config = testConfig();
    config.trustedRelays = ['192.0.2.0/24'];
    const { door, seen } = await setup({ config });
    const refused = await smtpSend(door.port, { from: 'a@example.org', to: ['bob@test.local'], data: ham, xforward: 'XFORWARD ADDR=198.51.100.7 HELO=forged.example' });
    expect(refused.code).toBeGreaterThanOrEqual(500);
    expect(seen).toHaveLength(0);
    const r = await smtpSend(door.port, { from: 'a@example.org', to: ['bob@test.local'], data: ham });
    expect(r.code).toBe(250);
    expect(seen[0].envelope?.ip).toMatch(/127\.0\.0\.1$/);
    expect(seen[0].envelope?.helo).toBe('client.test');
  });
});

describe('SMTP door: shutdown', () => {
  it('finishes a transaction in flight (next hop 250 first), then stops accepting', async () => {
    const { door, sink } = await setup({ sink: { delayMs: 400 } });
    const pending = smtpSend(door.port, { from: 'a@example.org', to: ['bob@test.local'], data: ham });
    for (let i = 0; i < 100 && door.inFlight === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(door.inFlight).toBe(1);
    const closed = door.close();
    const r = await pending;
    expect(r.code).toBe(250);
    expect(sink.messages).toHaveLength(1);
    await closed;
    await expect(smtpSend(door.port, { from: 'a@example.org', to: ['bob@test.local'], data: ham })).rejects.toThrow(/ECONNREFUSED/);
  });
});
