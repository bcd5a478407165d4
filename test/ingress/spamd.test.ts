// The SPAMC door driven by Debian's real spamc client, one invocation per protocol feature.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SpamdLearner } from '../../src/ingress/spamd.ts';
import { DEFER, HAM, type Harness, requireSpamc, SPAM, spamc, startHarness } from './spamd-helpers.ts';

describe('spamd door with the real spamc', () => {
  let h: Harness;
  let tellHarness: Harness;
  const learned: { label: string; bytes: number }[] = [];
  const learner: SpamdLearner = {
    learn: async (raw, label) => {
      learned.push({ label, bytes: raw.length });
      return true;
    },
    forget: async (raw) => {
      learned.push({ label: 'forget', bytes: raw.length });
      return true;
    },
  };

  beforeAll(async () => {
    requireSpamc();
    h = await startHarness();
    tellHarness = await startHarness({ allowTell: true, learner });
  });
  afterAll(async () => {
    await h?.close();
    await tellHarness?.close();
  });

  it('spamc -c exits 1 for spam and prints score/threshold', async () => {
    const r = await spamc(h.door.port, ['-c'], SPAM);
    expect(r.code).toBe(1);
    expect(r.stdout.toString()).toBe('16.0/5.0\n');
  });

  it('spamc -c exits 0 for ham', async () => {
    const r = await spamc(h.door.port, ['-c'], HAM);
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe('-1.0/5.0\n');
  });

  it('spamc -y prints the sorted symbol list', async () => {
    const r = await spamc(h.door.port, ['-y'], SPAM);
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe('TEST_LOTTERY,TEST_PILLS');
  });

  it('spamc -R prints the score line and the points table', async () => {
    const r = await spamc(h.door.port, ['-R'], SPAM);
    expect(r.code).toBe(0);
    const lines = r.stdout.toString().split('\n');
    expect(lines[0]).toBe('16.0/5.0');
    expect(lines).toContain('  10 TEST_LOTTERY           Body announces a lottery win');
    expect(lines).toContain(' 6.0 TEST_PILLS             Subject offers cheap pills');
    expect(r.stdout.toString()).toContain('"test-host"');
  });

  it('spamc -r reports spam and prints nothing for ham', async () => {
    const spam = await spamc(h.door.port, ['-r'], SPAM);
    // REPORT_IFSPAM answers "Spam: Yes ; …" as spamd does, which spamc does not read as a score line.
    expect(spam.stdout.toString()).toMatch(/^The atlas-email filter[\s\S]*TEST_PILLS/);
    const ham = await spamc(h.door.port, ['-r'], HAM);
    expect(ham.stdout.toString()).toBe('');
  });

  it('spamc (PROCESS) returns the message with fresh X-Spam-* headers and the body untouched', async () => {
    const r = await spamc(h.door.port, [], SPAM);
    expect(r.code).toBe(0);
    const out = r.stdout.toString();
    const [head, body] = out.split('\r\n\r\n');
    expect(body).toBe('Dear friend, you have won the lottery.\r\nClaim it today.\r\n');
    // The sender's forged X-Spam-* lines are gone; ours are the only ones.
    expect(head?.match(/^X-Spam-Flag:.*$/gm)).toEqual(['X-Spam-Flag: YES']);
    expect(head).not.toContain('forged by the sender');
    expect(head).toContain('X-Spam-Status: Yes, score=16.0 required=5.0 tests=TEST_LOTTERY,TEST_PILLS');
    expect(head).toContain('Subject: cheap pills now');
  });

  it('spamc -E exits 1 for spam while still printing the processed message', async () => {
    const r = await spamc(h.door.port, ['-E'], SPAM);
    expect(r.code).toBe(1);
    expect(r.stdout.toString()).toContain('X-Spam-Flag: YES');
    const ham = await spamc(h.door.port, ['-E'], HAM);
    expect(ham.code).toBe(0);
    expect(ham.stdout.toString()).toContain('X-Spam-Flag: NO');
  });

  it('spamc --headers (HEADERS) gets the rewritten header block and keeps its own body', async () => {
    const r = await spamc(h.door.port, ['--headers'], SPAM);
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toContain('X-Spam-Score: 16.0\r\n');
    expect(r.stdout.toString().endsWith('\r\n\r\nDear friend, you have won the lottery.\r\nClaim it today.\r\n')).toBe(true);
  });

  it('spamc -K pings', async () => {
    const r = await spamc(h.door.port, ['-K'], '');
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe('SPAMD/1.5 0\n');
  });

  it('handles a 3 MB message (spamc -s raises its own 500 KB cap)', async () => {
    const filler = ('lorem ipsum dolor sit amet '.repeat(3) + '\r\n').repeat(40_000);
    const big = SPAM.replace('Claim it today.\r\n', `Claim it today.\r\n${filler}`);
    expect(big.length).toBeGreaterThan(3_000_000);
    const c = await spamc(h.door.port, ['-s', '8000000', '-c'], big);
    expect(c.code).toBe(1);
    const p = await spamc(h.door.port, ['-s', '8000000'], big);
    expect(p.stdout.length).toBeGreaterThan(big.length);
    expect(p.stdout.toString().endsWith(filler)).toBe(true);
  });

  it('a message over the door limit is refused, and spamc falls back to passing it unchanged', async () => {
    const huge = HAM + 'x'.repeat(5 * 1024 * 1024);
    const r = await spamc(h.door.port, ['-s', '8000000', '-x', '-c'], huge);
    expect(r.code).not.toBe(0);
    expect(r.stdout.toString()).toBe('0/0\n');
  });

  it('a tempfail verdict makes spamc -x fail (the MTA defers) instead of passing the mail as ham', async () => {
    const strict = await spamc(h.door.port, ['-x', '-c'], DEFER);
    expect(strict.code).toBe(74); // spamc reports the refused answer as EX_IOERR; Postfix's pipe defers on it
    const strictProcess = await spamc(h.door.port, ['-x'], DEFER);
    expect(strictProcess.code).toBe(74);
    // Without -x, spamc's "safe fallback" passes any failure through as 0/0 (spamc's design, documented in the README).
    const lax = await spamc(h.door.port, ['-c'], DEFER);
    expect(lax.stdout.toString()).toBe('0/0\n');
  });

  it('spamc -L spam / ham / forget reach the learner when TELL is allowed', async () => {
    learned.length = 0;
    for (const type of ['spam', 'ham', 'forget']) {
      const r = await spamc(tellHarness.door.port, ['-L', type], SPAM);
      expect(r.code).toBe(0);
      expect(r.stdout.toString()).toBe('Message successfully un/learned\n');
    }
    expect(learned).toEqual([
      { label: 'spam', bytes: SPAM.length },
      { label: 'ham', bytes: SPAM.length },
      { label: 'forget', bytes: SPAM.length },
    ]);
  });

  it('spamc -L fails when TELL is not allowed', async () => {
    const r = await spamc(h.door.port, ['-L', 'spam'], SPAM);
    expect(r.code).toBe(74);
    expect(r.stdout.toString()).not.toContain('learned');
  });

  it('answers 40 spamc clients in parallel, each with its own verdict', async () => {
    const runs = Array.from({ length: 40 }, (_, i) => spamc(h.door.port, ['-c'], i % 2 ? SPAM : HAM));
    const results = await Promise.all(runs);
    results.forEach((r, i) => {
      expect(r.code).toBe(i % 2 ? 1 : 0);
      expect(r.stdout.toString()).toBe(i % 2 ? '16.0/5.0\n' : '-1.0/5.0\n');
    });
  });
});
