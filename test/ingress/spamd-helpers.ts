// Shared by the SPAMC door suites: a pipeline on a rule set of our own (so verdicts do not move when the
// shipped rules change), a door on port 0, the real spamc client, and a raw-socket client for what spamc
// never sends.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createPipeline, type Pipeline } from '../../src/cli/pipeline.ts';
import { defaultConfig } from '../../src/core/config.ts';
import { type SpamdDoor, type SpamdOptions, startSpamdServer } from '../../src/ingress/spamd.ts';

const RULES = `rules:
  - symbol: TEST_PILLS
    score: 6
    description: Subject offers cheap pills
    match:
      subject: [cheap pills]
  - symbol: TEST_LOTTERY
    score: 10
    description: Body announces a lottery win
    match:
      body: [you have won the lottery]
  - symbol: TEST_LUNCH
    score: -1
    description: Talks about lunch
    match:
      subject: [lunch]
  - symbol: TEST_DEFER
    score: 0
    action: tempfail
    description: Test rule that makes the verdict a tempfail
    match:
      subject: [please defer me]
`;

export const SPAM =
  'From: seller@example.com\r\nTo: you@example.org\r\nSubject: cheap pills now\r\nMessage-ID: <spam1@example.com>\r\n' +
  'Date: Mon, 23 Nov 2026 00:00:00 +0000\r\nX-Spam-Flag: YES\r\nX-Spam-Status: No, forged by the sender\r\n\r\n' +
  'Dear friend, you have won the lottery.\r\nClaim it today.\r\n';
export const HAM =
  'From: ann@example.com\r\nTo: bob@example.org\r\nSubject: lunch on friday\r\nMessage-ID: <ham1@example.com>\r\n' +
  'Date: Mon, 23 Nov 2026 00:00:00 +0000\r\n\r\nSee you at noon.\r\n';
export const DEFER = 'From: ann@example.com\r\nTo: bob@example.org\r\nSubject: please defer me\r\n\r\nbody\r\n';

export interface Harness {
  door: SpamdDoor;
  pipeline: Pipeline;
  close(): Promise<void>;
}

/** A temporary folder holding the test rule set; the caller removes it. */
export function testRulesDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'atlas-spamd-'));
  writeFileSync(path.join(dir, 'test.yaml'), RULES);
  return dir;
}

export async function startHarness(over: Partial<SpamdOptions> = {}): Promise<Harness> {
  const dir = testRulesDir();
  const config = defaultConfig();
  config.rulesDir = dir;
  const pipeline = createPipeline(config, { log: () => {} });
  const door = await startSpamdServer({
    host: '127.0.0.1',
    port: 0,
    scan: (input) => pipeline.scan(input),
    maxMessageBytes: 4 * 1024 * 1024,
    allowTell: false,
    hostname: 'test-host',
    ...over,
  });
  return {
    door,
    pipeline,
    close: async () => {
      await door.close();
      await pipeline.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function requireSpamc(): void {
  const r = spawnSync('spamc', ['-V'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error('spamc is not installed: run .ci/system-deps as root (Debian package "spamc")');
  }
}

export interface SpamcResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs the real spamc against the door; bounded by spamc's own -t timeout and a kill after 20 s. */
export function spamc(port: number, args: string[], input: string | Buffer): Promise<SpamcResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('spamc', ['-d', '127.0.0.1', '-p', String(port), '-t', '15', ...args]);
    const out: Buffer[] = [];
    let stderr = '';
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout: Buffer.concat(out), stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

export interface RawResult {
  data: Buffer;
  /** The server closed its side (every answer ends that way). */
  ended: boolean;
}

/**
 * Talks to the door over a plain socket: writes `parts` (with a pause between them when given), half-closes
 * unless `keepOpen`, and collects everything until the server closes or `maxWaitMs` passes.
 */
export function raw(port: number, parts: (string | Buffer)[], opts: { keepOpen?: boolean; pauseMs?: number; maxWaitMs?: number } = {}): Promise<RawResult> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    const data: Buffer[] = [];
    let ended = false;
    const done = () => {
      clearTimeout(guard);
      sock.destroy();
      resolve({ data: Buffer.concat(data), ended });
    };
    const guard = setTimeout(done, opts.maxWaitMs ?? 10_000);
    sock.on('data', (c: Buffer) => data.push(c));
    sock.on('end', () => {
      ended = true;
      done();
    });
    sock.on('error', done);
    sock.on('connect', async () => {
      for (const p of parts) {
        if (sock.destroyed) return;
        sock.write(p);
        if (opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs));
      }
      if (!opts.keepOpen && !sock.destroyed) sock.end();
    });
  });
}

export function request(method: string, body: string | Buffer, headers: string[] = []): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  return Buffer.concat([Buffer.from(`${method} SPAMC/1.5\r\n${[...headers, `Content-length: ${b.length}`].map((h) => h + '\r\n').join('')}\r\n`), b]);
}
