// The re-injection pool against a real SMTP sink: envelope kept exactly, connections bounded and reused.
import { afterEach, expect, it } from 'vitest';
import { createReinjector, type Reinjector } from '../../src/ingress/smtp/reinject.ts';
import { type Sink, startSink } from '../helpers/smtp.ts';

let sink: Sink | undefined;
let client: Reinjector | undefined;
afterEach(async () => {
  await client?.close();
  await sink?.close();
});

const raw = Buffer.from('From: a@example.org\r\nSubject: pool\r\n\r\n.starts with a dot\r\nbody\r\n');

it('keeps the null sender and recipient spelling exactly, and the body through dot-stuffing', async () => {
  sink = await startSink();
  client = createReinjector({ host: '127.0.0.1', port: sink.port });
  const r = await client.send({ from: '', to: ['User+Tag@Example.ORG', 'x@[192.0.2.1]'], raw });
  expect(r.response).toMatch(/^250 /);
  expect(sink.messages[0].from).toBe('');
  expect(sink.messages[0].to).toEqual(['User+Tag@Example.ORG', 'x@[192.0.2.1]']);
  expect(sink.messages[0].raw.equals(raw)).toBe(true);
});

it('runs many sends over at most maxConnections kept-alive connections', async () => {
  sink = await startSink({ delayMs: 5 });
  client = createReinjector({ host: '127.0.0.1', port: sink.port, maxConnections: 3 });
  let peak = 0;
  const sends = Array.from({ length: 30 }, async (_, i) => {
    const p = client!.send({ from: `s${i}@example.org`, to: ['bob@test.local'], raw });
    peak = Math.max(peak, client!.stats.open);
    return p;
  });
  await Promise.all(sends);
  expect(sink.messages).toHaveLength(30);
  expect(peak).toBeLessThanOrEqual(3);
  expect(client.stats).toMatchObject({ open: 3, idle: 3, waiting: 0 });
});

it('renews a connection after messagesPerConnection', async () => {
  sink = await startSink();
  client = createReinjector({ host: '127.0.0.1', port: sink.port, maxConnections: 1, messagesPerConnection: 2 });
  for (let i = 0; i < 5; i++) await client.send({ from: 'a@example.org', to: ['bob@test.local'], raw });
  expect(sink.messages).toHaveLength(5);
  expect(client.stats.open).toBeLessThanOrEqual(1);
});

it('fails new sends after close with ENEXTHOP', async () => {
  sink = await startSink();
  client = createReinjector({ host: '127.0.0.1', port: sink.port });
  await client.close();
  await expect(client.send({ from: 'a@example.org', to: ['b@example.org'], raw })).rejects.toMatchObject({ code: 'ENEXTHOP' });
});
