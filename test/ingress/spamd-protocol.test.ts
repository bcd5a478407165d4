// The SPAMC door byte for byte, over raw sockets: exact reply formats, and every way a client can
// misbehave that spamc itself never would (garbage, lying lengths, stalls, bombs).
import { deflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.ts';
import { exitForError, scoreText, SYSEXITS } from '../../src/ingress/spamd/protocol.ts';
import { DEFER, HAM, type Harness, raw, request, SPAM, startHarness } from './spamd-helpers.ts';

const text = (b: Buffer) => b.toString('latin1');

describe('spamd door, exact replies', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('CHECK answers the status line and the Spam header, then closes', async () => {
    const r = await raw(h.door.port, [request('CHECK', SPAM)]);
    expect(text(r.data)).toBe('SPAMD/1.1 0 EX_OK\r\nSpam: True ; 16.0 / 5.0\r\n\r\n');
    expect(r.ended).toBe(true);
  });

  it('SYMBOLS carries a Content-length and no line ending after the list (protocol 1.3+)', async () => {
    const r = await raw(h.door.port, [request('SYMBOLS', SPAM)]);
    const body = 'TEST_LOTTERY,TEST_PILLS';
    expect(text(r.data)).toBe(`SPAMD/1.1 0 EX_OK\r\nContent-length: ${body.length}\r\nSpam: True ; 16.0 / 5.0\r\n\r\n${body}`);
  });

  it('SYMBOLS at protocol 1.2 ends the list with CRLF and sends no Content-length, as spamd', async () => {
    const b = Buffer.from(HAM);
    const r = await raw(h.door.port, [`SYMBOLS SPAMC/1.2\r\nContent-length: ${b.length}\r\n\r\n`, b]);
    expect(text(r.data)).toBe('SPAMD/1.1 0 EX_OK\r\nSpam: False ; -1.0 / 5.0\r\n\r\nTEST_LUNCH\r\n');
  });

  it('REPORT_IFSPAM says Yes/No and sends an empty body for ham', async () => {
    const ham = await raw(h.door.port, [request('REPORT_IFSPAM', HAM)]);
    expect(text(ham.data)).toBe('SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\nSpam: No ; -1.0 / 5.0\r\n\r\n');
    const spam = await raw(h.door.port, [request('REPORT_IFSPAM', SPAM)]);
    expect(text(spam.data)).toMatch(/^SPAMD\/1\.1 0 EX_OK\r\nContent-length: \d+\r\nSpam: Yes ; 16\.0 \/ 5\.0\r\n\r\n/);
  });

  it('PROCESS sends a Content-length equal to the rewritten message bytes (8-bit body kept)', async () => {
    const body = Buffer.concat([Buffer.from(HAM), Buffer.from([0xe9, 0xff, 0x00, 0x0d, 0x0a])]);
    const r = await raw(h.door.port, [request('PROCESS', body)]);
    const sep = r.data.indexOf('\r\n\r\n');
    const head = text(r.data.subarray(0, sep));
    const rest = r.data.subarray(sep + 4);
    expect(head).toBe(`SPAMD/1.1 0 EX_OK\r\nContent-length: ${rest.length}\r\nSpam: False ; -1.0 / 5.0`);
    expect(rest.subarray(rest.length - 5)).toEqual(Buffer.from([0xe9, 0xff, 0x00, 0x0d, 0x0a]));
    expect(text(rest)).toContain('X-Spam-Status: No, score=-1.0 required=5.0 tests=TEST_LUNCH\r\n');
  });

  it('HEADERS stops after the empty line that ends the header block', async () => {
    const r = await raw(h.door.port, [request('HEADERS', SPAM)]);
    const s = text(r.data);
    const msg = s.slice(s.indexOf('\r\n\r\n') + 4);
    expect(msg.endsWith('X-Spam-Status: Yes, score=16.0 required=5.0 tests=TEST_LOTTERY,TEST_PILLS\r\n\r\n')).toBe(true);
    expect(s).toContain(`Content-length: ${Buffer.byteLength(msg)}\r\n`);
  });

  it('PING answers PONG, with or without the 1.5 empty line', async () => {
    expect(text((await raw(h.door.port, ['PING SPAMC/1.5\r\n\r\n'])).data)).toBe('SPAMD/1.5 0 PONG\r\n');
    expect(text((await raw(h.door.port, ['PING SPAMC/1.2\r\n'], { keepOpen: true })).data)).toBe('SPAMD/1.5 0 PONG\r\n');
  });

  it('SKIP closes without a word', async () => {
    const r = await raw(h.door.port, ['SKIP SPAMC/1.5\r\n\r\n'], { keepOpen: true });
    expect(r.data.length).toBe(0);
    expect(r.ended).toBe(true);
  });

  it('unknown headers are ignored; User and Message-class are accepted on checks', async () => {
    const r = await raw(h.door.port, [request('CHECK', SPAM, ['User: alice', 'X-Whatever: 1', 'Message-class: spam'])]);
    expect(text(r.data)).toBe('SPAMD/1.1 0 EX_OK\r\nSpam: True ; 16.0 / 5.0\r\n\r\n');
  });

  it('reads the body until the client half-closes when Content-length is missing', async () => {
    const r = await raw(h.door.port, ['CHECK SPAMC/1.5\r\n\r\n', SPAM]);
    expect(text(r.data)).toBe('SPAMD/1.1 0 EX_OK\r\nSpam: True ; 16.0 / 5.0\r\n\r\n');
  });

  it('a zlib-compressed body (Compress: zlib, what spamc -z sends) is inflated before the scan', async () => {
    const z = deflateSync(Buffer.from(SPAM), { level: 3 });
    const r = await raw(h.door.port, [request('SYMBOLS', z, ['Compress: zlib'])]);
    expect(text(r.data)).toContain('Spam: True ; 16.0 / 5.0\r\n\r\nTEST_LOTTERY,TEST_PILLS');
  });

  it('a tempfail verdict answers EX_TEMPFAIL, never a verdict', async () => {
    const r = await raw(h.door.port, [request('CHECK', DEFER)]);
    expect(text(r.data)).toMatch(/^SPAMD\/1\.0 75 EX_TEMPFAIL scan failed/);
    expect(text(r.data)).not.toContain('Spam:');
  });

  it('an empty message is a data error', async () => {
    const r = await raw(h.door.port, ['CHECK SPAMC/1.5\r\nContent-length: 0\r\n\r\n']);
    expect(text(r.data)).toBe('SPAMD/1.0 65 EX_DATAERR the message is empty\r\n');
  });

  it('TELL is refused with spamd\'s own words when not allowed', async () => {
    const r = await raw(h.door.port, [request('TELL', SPAM, ['Message-class: spam', 'Set: local'])]);
    expect(text(r.data)).toBe('SPAMD/1.0 69 Service Unavailable: TELL commands are not enabled, set spamd.allowTell in the config.\r\n');
  });
});

describe('spamd door, TELL', () => {
  let h: Harness;
  let noLearner: Harness;
  const calls: string[] = [];
  beforeAll(async () => {
    h = await startHarness({
      allowTell: true,
      learner: {
        learn: async (_raw, label) => {
          calls.push(label);
          return label === 'spam';
        },
      },
    });
    noLearner = await startHarness({ allowTell: true });
  });
  afterAll(async () => {
    await h?.close();
    await noLearner?.close();
  });

  it('DidSet names what was learned, followed by the empty lines spamd sends', async () => {
    const r = await raw(h.door.port, [request('TELL', SPAM, ['Message-class: spam', 'Set: local'])]);
    expect(text(r.data)).toBe('SPAMD/1.1 0 EX_OK\r\nDidSet: local\r\n\r\n\r\n');
  });

  it('nothing changed: no DidSet', async () => {
    const r = await raw(h.door.port, [request('TELL', HAM, ['Message-class: ham', 'Set: local'])]);
    expect(text(r.data)).toBe('SPAMD/1.1 0 EX_OK\r\n\r\n\r\n');
    expect(calls).toEqual(['spam', 'ham']);
  });

  it('set and remove at once is a protocol error; a bad class too', async () => {
    const both = await raw(h.door.port, [request('TELL', SPAM, ['Message-class: spam', 'Set: local', 'Remove: local'])]);
    expect(text(both.data)).toBe('SPAMD/1.0 76 Bad header line: Unable to set local and remove local in the same operation.\r\n');
    const bad = await raw(h.door.port, [request('TELL', SPAM, ['Message-class: maybe', 'Set: local'])]);
    expect(text(bad.data)).toBe('SPAMD/1.0 76 Bad header line: (Message-class header contains invalid class)\r\n');
  });

  it('forget without a forget function, and TELL without any learner, answer EX_UNAVAILABLE', async () => {
    const forget = await raw(h.door.port, [request('TELL', SPAM, ['Remove: local'])]);
    expect(text(forget.data)).toMatch(/^SPAMD\/1\.0 69 Service Unavailable: forgetting is not supported/);
    const none = await raw(noLearner.door.port, [request('TELL', SPAM, ['Message-class: spam', 'Set: local'])]);
    expect(text(none.data)).toMatch(/^SPAMD\/1\.0 69 Service Unavailable: learning is not available/);
  });
});

describe('spamd door, hostile and broken clients', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ maxMessageBytes: 1024 * 1024, idleTimeoutMs: 400, requestTimeoutMs: 1500 });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('binary garbage with a newline: EX_PROTOCOL naming the line, then close', async () => {
    const r = await raw(h.door.port, [Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x0a, 0xff, 0xfe])], { keepOpen: true });
    expect(text(r.data)).toBe('SPAMD/1.0 76 Bad header line: ??????\r\n');
    expect(r.ended).toBe(true);
  });

  it('binary garbage without any newline: EX_PROTOCOL once past 1 KB', async () => {
    const junk = Buffer.alloc(4096, 0xaa);
    const r = await raw(h.door.port, [junk], { keepOpen: true });
    expect(text(r.data)).toMatch(/^SPAMD\/1\.0 76 Bad header line: \?{120}\.\.\.\r\n$/);
  });

  it('an HTTP request on the port is a protocol error', async () => {
    const r = await raw(h.door.port, ['GET / HTTP/1.1\r\nHost: x\r\n\r\n'], { keepOpen: true });
    expect(text(r.data)).toBe('SPAMD/1.0 76 Bad header line: GET / HTTP/1.1\r\n');
  });

  it('a header line without a colon, and a non-numeric Content-length', async () => {
    const a = await raw(h.door.port, ['CHECK SPAMC/1.5\r\nnonsense\r\n\r\n']);
    expect(text(a.data)).toBe("SPAMD/1.0 76 Bad header line: (header not in 'Name: value' format)\r\n");
    const b = await raw(h.door.port, ['CHECK SPAMC/1.5\r\nContent-length: 12abc\r\n\r\n']);
    expect(text(b.data)).toBe('SPAMD/1.0 76 Bad header line: (Content-Length contains non-numeric bytes)\r\n');
  });

  it('too many header lines, and a head that never ends', async () => {
    const many = Array.from({ length: 300 }, (_, i) => `X-H${i}: v\r\n`).join('');
    const a = await raw(h.door.port, [`CHECK SPAMC/1.5\r\n${many}\r\n`]);
    expect(text(a.data)).toBe('SPAMD/1.0 76 Bad header line: (too many headers)\r\n');
    const endless = `CHECK SPAMC/1.5\r\n${'X-Long: ' + 'a'.repeat(70 * 1024)}`;
    const b = await raw(h.door.port, [endless], { keepOpen: true });
    expect(text(b.data)).toBe('SPAMD/1.0 76 Bad header line: (too many headers)\r\n');
  });

  it('Content-length claims more than is sent, then the client closes: mismatch', async () => {
    const r = await raw(h.door.port, [`CHECK SPAMC/1.5\r\nContent-length: 5000\r\n\r\n`, HAM]);
    expect(text(r.data)).toBe(`SPAMD/1.0 76 Bad header line: (Content-Length mismatch: Expected 5000 bytes, got ${HAM.length} bytes)\r\n`);
  });

  it('Content-length claims more than is sent and the client waits: EX_TIMEOUT, then close', async () => {
    const r = await raw(h.door.port, [`CHECK SPAMC/1.5\r\nContent-length: 5000\r\n\r\n`, HAM], { keepOpen: true });
    expect(text(r.data)).toBe('SPAMD/1.0 79 Timeout: (0.4 second socket timeout reading input from client)\r\n');
    expect(r.ended).toBe(true);
  });

  it('Content-length claims less than is sent: mismatch', async () => {
    const r = await raw(h.door.port, [`CHECK SPAMC/1.5\r\nContent-length: 10\r\n\r\n${HAM}`]);
    expect(text(r.data)).toBe(`SPAMD/1.0 76 Bad header line: (Content-Length mismatch: Expected 10 bytes, got ${HAM.length} bytes)\r\n`);
  });


  it('a silent client is timed out', async () => {
    const r = await raw(h.door.port, [], { keepOpen: true });
    expect(text(r.data)).toBe('SPAMD/1.0 79 Timeout: (0.4 second socket timeout reading input from client)\r\n');
  });

  it('an oversized Content-length is refused at once, and the reply reaches a client still sending', async () => {
    const chunk = Buffer.alloc(256 * 1024, 0x61);
    const parts: Buffer[] = [Buffer.from('PROCESS SPAMC/1.5\r\nContent-length: 8388608\r\n\r\n'), ...Array.from({ length: 8 }, () => chunk)];
    const r = await raw(h.door.port, parts);
    expect(text(r.data)).toBe('SPAMD/1.0 65 EX_DATAERR the message is 8388608 bytes, over the limit of 1048576\r\n');
  });

  it('an oversized body without Content-length is refused once past the limit', async () => {
    const body = HAM + 'y'.repeat(1024 * 1024);
    const r = await raw(h.door.port, ['CHECK SPAMC/1.5\r\n\r\n', body]);
    expect(text(r.data)).toMatch(/^SPAMD\/1\.0 65 EX_DATAERR the message is \d+ bytes, over the limit of 1048576\r\n$/);
  });

  it('a zlib bomb stops at the size limit; corrupt zlib is a data error; Compress needs a length', async () => {
    const bomb = deflateSync(Buffer.alloc(64 * 1024 * 1024, 0x20));
    expect(bomb.length).toBeLessThan(1024 * 1024);
    const a = await raw(h.door.port, [request('CHECK', bomb, ['Compress: zlib'])]);
    expect(text(a.data)).toBe('SPAMD/1.0 65 EX_DATAERR the message inflates past the limit of 1048576 bytes\r\n');
    const b = await raw(h.door.port, [request('CHECK', Buffer.from('not zlib at all'), ['Compress: zlib'])]);
    expect(text(b.data)).toMatch(/^SPAMD\/1\.0 65 EX_DATAERR zlib: /);
    const c = await raw(h.door.port, ['CHECK SPAMC/1.5\r\nCompress: zlib\r\n\r\n', 'xx']);
    expect(text(c.data)).toBe('SPAMD/1.0 69 Service Unavailable: Compress requires Content-length header\r\n');
    const d = await raw(h.door.port, [request('CHECK', SPAM, ['Compress: gzip'])]);
    expect(text(d.data)).toBe('SPAMD/1.0 76 Bad header line: (compression type not supported: gzip)\r\n');
  });

  it('a client that connects and closes gets a protocol error line and no crash', async () => {
    const r = await raw(h.door.port, []);
    expect(text(r.data)).toBe('SPAMD/1.0 76 Bad header line: (closed before headers)\r\n');
    // The door still answers afterwards.
    expect(text((await raw(h.door.port, ['PING SPAMC/1.5\r\n\r\n'])).data)).toBe('SPAMD/1.5 0 PONG\r\n');
  });

  it('200 raw requests in parallel, mixed good and broken, each get their own answer', async () => {
    const runs = Array.from({ length: 200 }, (_, i) =>
      i % 3 === 0 ? raw(h.door.port, ['BOGUS SPAMC/1.5\r\n\r\n']) : raw(h.door.port, [request('CHECK', i % 3 === 1 ? SPAM : HAM)]),
    );
    const rs = await Promise.all(runs);
    rs.forEach((r, i) => {
      const want =
        i % 3 === 0
          ? 'SPAMD/1.0 76 Bad header line: BOGUS SPAMC/1.5\r\n'
          : `SPAMD/1.1 0 EX_OK\r\nSpam: ${i % 3 === 1 ? 'True ; 16.0' : 'False ; -1.0'} / 5.0\r\n\r\n`;
      expect(text(r.data)).toBe(want);
    });
  });
});

describe('spamd door, limits and mapping', () => {
  it('a client that dribbles bytes, never idle long, is cut at the request deadline with EX_TIMEOUT', async () => {
    const h = await startHarness({ idleTimeoutMs: 5000, requestTimeoutMs: 1000 });
    try {
      const parts = `CHECK SPAMC/1.5\r\nUser: slow\r\n`.split('');
      const r = await raw(h.door.port, parts, { keepOpen: true, pauseMs: 100, maxWaitMs: 8_000 });
      expect(text(r.data)).toBe('SPAMD/1.0 79 Timeout: (1 second limit for reading the request)\r\n');
    } finally {
      await h.close();
    }
  });

  it('past maxClients, a new connection gets EX_TEMPFAIL', async () => {
    const h = await startHarness({ maxClients: 2, idleTimeoutMs: 2000 });
    try {
      const hold = [raw(h.door.port, ['CHECK SPAMC/1.5\r\n'], { keepOpen: true, maxWaitMs: 3000 }), raw(h.door.port, ['CHECK SPAMC/1.5\r\n'], { keepOpen: true, maxWaitMs: 3000 })];
      // Until the server has accepted both held connections, a third one is still served normally.
      let reply = '';
      for (let i = 0; i < 15 && !reply.includes('EX_TEMPFAIL'); i++) {
        await new Promise((r) => setTimeout(r, 100));
        reply = text((await raw(h.door.port, [request('CHECK', HAM)])).data);
      }
      expect(reply).toBe('SPAMD/1.0 75 EX_TEMPFAIL too many connections (2); try again later\r\n');
      await Promise.all(hold);
    } finally {
      await h.close();
    }
  });

  it('a scan that never answers is cut at the scan deadline with EX_TEMPFAIL', async () => {
    const h = await startHarness({ scan: () => new Promise(() => {}), scanTimeoutMs: 300 });
    try {
      const r = await raw(h.door.port, [request('CHECK', HAM)]);
      expect(text(r.data)).toBe('SPAMD/1.0 75 EX_TEMPFAIL no verdict within 300 ms\r\n');
    } finally {
      await h.close();
    }
  });

  it('close() cuts connections that have not sent anything, and lets a request under way finish', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    let entered: () => void = () => {};
    const scanning = new Promise<void>((r) => (entered = r));
    const g: Harness = await startHarness({
      idleTimeoutMs: 5000,
      scan: async (input) => {
        entered();
        await gate;
        return g.pipeline.scan(input);
      },
    });
    // Connected first, so accepted before the busy one reaches the scan.
    const silent = raw(g.door.port, [], { keepOpen: true });
    const busy = raw(g.door.port, [request('CHECK', SPAM)]);
    await scanning;
    const closed = g.close();
    release();
    await closed;
    // The silent one got no Timeout line (that would come after 5 s): it was cut at close.
    expect(text((await silent).data)).toBe('');
    expect(text((await busy).data)).toBe('SPAMD/1.1 0 EX_OK\r\nSpam: True ; 16.0 / 5.0\r\n\r\n');
  });

  it('maps every FilterError code to a sysexits code', () => {
    const table = Object.fromEntries(Object.values(ErrorCodes).map((c) => [c, SYSEXITS[exitForError(c)]]));
    expect(table).toEqual({
      EMALFORMED: 65,
      ETOOLARGE: 65,
      ETIMEOUT: 75,
      EOVERLOAD: 75,
      EWORKER: 75,
      ECONFIG: 75,
      ERULES: 75,
      EMODEL: 75,
      ENEXTHOP: 75,
      ESTORE: 75,
      EPROTOCOL: 76,
      EAUTH: 77,
      EINTERNAL: 75,
    });
  });

  it('prints scores as spamd: one decimal, a ham never at or over the threshold', () => {
    expect(scoreText(16, 5, true)).toBe('16.0');
    expect(scoreText(4.96, 5, false)).toBe('4.9');
    expect(scoreText(7, 5, false)).toBe('4.9');
    expect(scoreText(2, 5, true)).toBe('2.0');
    expect(scoreText(-0.04, 5, false)).toBe('0.0');
    expect(scoreText(-3.25, 5, false)).toBe('-3.2');
  });
});
