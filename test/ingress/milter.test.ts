import { readFileSync, existsSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FilterError } from '../../src/core/errors.ts';
import { scan } from '../../src/core/scan.ts';
import type { ScanInput } from '../../src/core/scan.ts';
import { type MilterDoor, startMilterServer } from '../../src/ingress/milter.ts';
import { cstrings, MAX_PACKET, PacketReader } from '../../src/ingress/milter/protocol.ts';
import { testEnv, root } from '../helpers/env.ts';
import { MilterClient, splitMessage } from '../helpers/milter-client.ts';

const env = testEnv();
const seen: ScanInput[] = [];
let door: MilterDoor;

const fx = (name: string) => splitMessage(readFileSync(path.join(root, 'test/fixtures', name), 'latin1'));

async function session(c: MilterClient) {
  c.optneg();
  const neg = await c.next();
  c.macro('C', { j: 'mx.test.local' });
  c.connectInfo('198.51.100.20');
  c.send('H', Buffer.from('client.example\0'));
  return neg!;
}

beforeAll(async () => {
  door = await startMilterServer({
    host: '127.0.0.1',
    port: 0,
    scan: (input) => {
      seen.push(input);
      return scan(input, env);
    },
    maxMessageBytes: 200_000,
    defaultAction: 'tempfail',
  });
});
afterAll(() => door.close());

describe('milter door', () => {
  it('negotiates only what it uses', async () => {
    const c = await MilterClient.open(door.port);
    const neg = await session(c);
    expect(neg.cmd).toBe('O');
    expect(neg.data.readUInt32BE(0)).toBe(6);
    // ADDHDRS | CHGHDRS | QUARANTINE
    expect(neg.data.readUInt32BE(4)).toBe(0x01 | 0x10 | 0x20);
    const proto = neg.data.readUInt32BE(8);
    // No reply wanted for headers, end-of-headers and body chunks (NR_HDR, NR_EOH, NR_BODY); unknown
    // commands skipped (NOUNKNOWN, NR_UNKN).
    expect(proto).toBe(0x80 | 0x40000 | 0x80000 | 0x100 | 0x20000);
    // Connect, HELO, MAIL, RCPT and DATA are answered (no NR_CONN/NR_HELO/NR_MAIL/NR_RCPT/NR_DATA), so Postfix
    // never waits out a delayed ACK; headers and body are never skipped (no NOHDRS, NOBODY).
    expect(proto & (0x1000 | 0x2000 | 0x4000 | 0x8000 | 0x10000 | 0x200 | 0x10 | 0x20)).toBe(0);
    c.close();
  });

  it('accepts ham with X-Spam headers and passes the envelope to scan()', async () => {
    const c = await MilterClient.open(door.port);
    await session(c);
    const m = fx('ham-plain.eml');
    c.message({ from: 'alice@example.org', rcpt: ['bob@test.local', 'carol@test.local'], queueId: 'ABC123', ...m });
    const replies = await c.untilFinal();
    expect(replies.at(-1)!.cmd).toBe('a');
    const added = replies.filter((p) => p.cmd === 'h').map((p) => cstrings(p.data));
    expect(added.map((h) => h[0])).toEqual(['X-Spam-Flag', 'X-Spam-Score', 'X-Spam-Level', 'X-Spam-Status']);
    expect(added[0]![1]).toBe('NO');
    expect(added[3]![1]).toMatch(/^No, score=-?\d+\.\d required=5\.0 tests=/);
    const input = seen.at(-1)!;
    expect(input.envelope).toMatchObject({ ip: '198.51.100.20', helo: 'client.example', from: 'alice@example.org', rcpt: ['bob@test.local', 'carol@test.local'], queueId: 'ABC123' });
    expect(Buffer.from(input.raw).toString()).toContain('Subject: Minutes of Thursday\'s meeting\r\n');
    c.close();
  });

  it('rejects spam with 554 5.7.1 at end-of-body', async () => {
    const c = await MilterClient.open(door.port);
    await session(c);
    c.message({ from: 'x@mailer.example.com', rcpt: ['bob@test.local'], ...fx('rules/SCAM_SEXTORTION.eml') });
    const replies = (await c.untilFinal()).filter((p) => p.cmd !== 'c');
    expect(replies).toHaveLength(1);
    expect(replies[0]!.cmd).toBe('y');
    expect(cstrings(replies[0]!.data)[0]).toMatch(/^554 5\.7\.1 Message rejected as spam \(score 15\.0\)$/);
    c.close();
  });

  it('deletes forged X-Spam headers before adding its own', async () => {
    const c = await MilterClient.open(door.port);
    await session(c);
    const m = fx('ham-plain.eml');
    m.headers.push(['X-Spam-Flag', 'NO'], ['X-Spam-Status', 'No, score=-100'], ['x-spam-flag', 'NO']);
    c.message({ from: 'alice@example.org', rcpt: ['bob@test.local'], ...m });
    const replies = await c.untilFinal();
    const deletes = replies.filter((p) => p.cmd === 'm').map((p) => [p.data.readUInt32BE(0), ...cstrings(p.data.subarray(4))]);
    // Last occurrence first, empty value = delete.
    expect(deletes).toEqual([
      [2, 'x-spam-flag', ''],
      [1, 'X-Spam-Status', ''],
      [1, 'X-Spam-Flag', ''],
    ]);
    c.close();
  });

  it('handles several messages on one connection, with aborts between them', async () => {
    const c = await MilterClient.open(door.port);
    await session(c);
    for (const name of ['ham-plain.eml', 'rules/SCAM_SEXTORTION.eml', 'ham-plain.eml']) {
      c.message({ from: 'a@b.example', rcpt: ['bob@test.local'], ...fx(name) });
      const final = (await c.untilFinal()).at(-1)!;
      expect(final.cmd).toBe(name.startsWith('rules') ? 'y' : 'a');
      c.send('A');
    }
    // An abort in the middle of a message drops it; the next one is judged alone.
    c.send('M', Buffer.from('<a@b.example>\0'));
    c.send('L', Buffer.from('Subject\0half\0'));
    c.send('A');
    c.message({ from: 'a@b.example', rcpt: ['bob@test.local'], ...fx('ham-plain.eml') });
    expect((await c.untilFinal()).at(-1)!.cmd).toBe('a');
    expect(Buffer.from(seen.at(-1)!.raw).toString()).not.toContain('Subject: half');
    c.send('Q');
    expect(await c.nextNotContinue()).toBeNull();
  });

  it('answers continue to every event when the MTA offers no no-reply bits', async () => {
    const c = await MilterClient.open(door.port);
    c.optneg(2, 0x1f, 0x7f);
    const neg = (await c.next())!;
    expect(neg.data.readUInt32BE(8) & 0x1000).toBe(0);
    c.connectInfo('192.0.2.1');
    expect((await c.next())!.cmd).toBe('c');
    c.message({ from: 'a@b.example', rcpt: ['r@test.local'], ...fx('ham-plain.eml') });
    const replies = await c.untilFinal();
    expect(replies.filter((p) => p.cmd === 'c').length).toBeGreaterThan(5);
    expect(replies.at(-1)!.cmd).toBe('a');
    c.close();
  });

  it('passes an oversized body unscanned without buffering it', async () => {
    const c = await MilterClient.open(door.port);
    await session(c);
    const before = seen.length;
    c.message({ from: 'a@b.example', rcpt: ['r@test.local'], headers: [['Subject', 'big']], body: 'x'.repeat(300_000) });
    expect((await c.untilFinal()).map((p) => p.cmd).filter((cmd) => cmd !== 'c')).toEqual(['a']);
    expect(seen.length).toBe(before);
    expect(door.stats().tooLarge).toBeGreaterThan(0);
    c.close();
  });

  it('refuses a stray HTTP request and a bare probe cleanly', async () => {
    const http = await new Promise<string>((resolve) => {
      const s = connect(door.port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      let got = '';
      s.on('data', (d) => (got += d.toString()));
      s.on('close', () => resolve(got));
    });
    expect(http).toBe('');
    // A bare TCP connect-and-close, as a port probe does.
    await new Promise<void>((resolve) => {
      const s = connect(door.port, '127.0.0.1', () => s.end());
      s.on('close', () => resolve());
    });
    // A first packet that is not option negotiation.
    const c = await MilterClient.open(door.port);
    c.send('C', Buffer.from('x\0'));
    expect(await c.next()).toBeNull();
    // Still serving.
    const ok = await MilterClient.open(door.port);
    await session(ok);
    ok.message({ from: 'a@b.example', rcpt: ['r@test.local'], ...fx('ham-plain.eml') });
    expect((await ok.untilFinal()).at(-1)!.cmd).toBe('a');
    ok.close();
  });

  it('frames packets across arbitrary chunk boundaries and bounds their length', () => {
    const r = new PacketReader();
    const whole = Buffer.concat([Buffer.from([0, 0, 0, 3, 0x4c, 0x61, 0]), Buffer.from([0, 0, 0, 1, 0x4e])]);
    const got = [];
    for (const b of whole) got.push(...r.push(Buffer.from([b])));
    expect(got.map((p) => p.cmd)).toEqual(['L', 'N']);
    const big = Buffer.alloc(4);
    big.writeUInt32BE(MAX_PACKET + 1, 0);
    expect(() => new PacketReader().push(big)).toThrow(/out of range/);
  });
});

describe('milter failures', () => {
  it.each([
    ['tempfail', '451 4.7.1'],
    ['accept', null],
  ] as const)('a failed scan answers as milter_default_action=%s', async (defaultAction, code) => {
    const failing = await startMilterServer({
      host: '127.0.0.1',
      port: 0,
      scan: async () => {
        throw new FilterError('EOVERLOAD', 'the classifier queue is full');
      },
      maxMessageBytes: 100_000,
      defaultAction,
    });
    const c = await MilterClient.open(failing.port);
    await session(c);
    c.message({ from: 'a@b.example', rcpt: ['r@test.local'], ...fx('ham-plain.eml') });
    const final = (await c.untilFinal()).at(-1)!;
    if (code) expect(cstrings(final.data)[0]).toMatch(/^451 4\.7\.1 Try again later: the classifier queue is full$/);
    else expect(final.cmd).toBe('a');
    c.close();
    await failing.close();
  });

  it('a scan that never answers times out into a tempfail', async () => {
    const stuck = await startMilterServer({
      host: '127.0.0.1',
      port: 0,
      scan: () => new Promise(() => {}),
      maxMessageBytes: 100_000,
      defaultAction: 'tempfail',
      scanTimeoutMs: 200,
    });
    const c = await MilterClient.open(stuck.port);
    await session(c);
    c.message({ from: 'a@b.example', rcpt: ['r@test.local'], ...fx('ham-plain.eml') });
    const final = (await c.untilFinal()).at(-1)!;
    expect(cstrings(final.data)[0]).toMatch(/^451 4\.7\.1 Try again later: no verdict within 200 ms$/);
    c.close();
    await stuck.close();
  });

  it('replays the Postfix 3.7.11 packet trace from ../shared/recipes when present', async () => {
    const trace = path.join(root, '../shared/recipes/milter-trace-postfix-3.7.11.jsonl');
    if (!existsSync(trace)) return expect(existsSync(trace)).toBe(false);
    const events = readFileSync(trace, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    let c = await MilterClient.open(door.port);
    let finals = 0;
    for (const e of events) {
      switch (e.cmd) {
        case 'OPTNEG':
          if (c.closed) c = await MilterClient.open(door.port);
          c.optneg(e.version, parseInt(e.actions, 16), parseInt(e.protocol, 16));
          expect((await c.nextNotContinue())!.cmd).toBe('O');
          break;
        case 'MACRO': c.macro(e.for, e.macros); break;
        case 'CONNECT': c.connectInfo(e.addr, e.port); break;
        case 'HELO': c.send('H', Buffer.from(`${e.args[0]}\0`)); break;
        case 'MAIL': c.send('M', Buffer.from(e.args.map((a: string) => `${a}\0`).join(''))); break;
        case 'RCPT': c.send('R', Buffer.from(e.args.map((a: string) => `${a}\0`).join(''))); break;
        case 'DATA': c.send('T'); break;
        case 'HEADER': c.send('L', Buffer.from(`${e.args[0]}\0${e.args[1]}\0`)); break;
        case 'EOH': c.send('N'); break;
        case 'BODY': c.send('B', Buffer.from('hello, trace\r\n'.padEnd(e.bytes, ' '))); break;
        case 'EOB':
          c.send('E');
          expect((await c.untilFinal()).at(-1)!.cmd).toBe('a');
          finals++;
          break;
        case 'ABORT': c.send('A'); break;
        case 'QUIT':
          c.send('Q');
          expect(await c.nextNotContinue()).toBeNull();
          break;
      }
    }
    expect(finals).toBe(2);
  });
});

describe('milter and Authentication-Results', () => {
  it('deletes an incoming one that claims our authserv-id', async () => {
    const door2 = await startMilterServer({
      host: '127.0.0.1',
      port: 0,
      scan: async (input) => ({ ...(await scan(input, env)), authResults: 'mx.test.local;\r\n spf=none' }),
      maxMessageBytes: 100_000,
      defaultAction: 'tempfail',
    });
    const c = await MilterClient.open(door2.port);
    await session(c);
    const m = fx('ham-plain.eml');
    m.headers.unshift(['Authentication-Results', 'mx.test.local; dkim=pass header.d=bank.example'], ['Authentication-Results', 'other.example; spf=pass']);
    c.message({ from: 'a@b.example', rcpt: ['r@test.local'], ...m });
    const replies = await c.untilFinal();
    const deletes = replies.filter((p) => p.cmd === 'm').map((p) => [p.data.readUInt32BE(0), ...cstrings(p.data.subarray(4))]);
    expect(deletes).toEqual([[1, 'Authentication-Results', '']]);
    const added = replies.filter((p) => p.cmd === 'h').map((p) => cstrings(p.data));
    expect(added.at(-1)).toEqual(['Authentication-Results', 'mx.test.local;\n spf=none']);
    c.close();
    await door2.close();
  });
});
