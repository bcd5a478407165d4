// The classifier pool with real tinypool workers running the built worker (dist/pool/worker.js;
// `npm test` builds first). Faults come from a test-only worker that wraps the real one.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { classifyMessage, emptyModel, loadModel, serializeModel, trainMessage } from '../../src/core/classify.ts';
import { defaultConfig } from '../../src/core/config.ts';
import { FilterError } from '../../src/core/errors.ts';
import { type Classifier, type ClassifyRequest, scan } from '../../src/core/scan.ts';
import type { Verdict } from '../../src/core/verdict.ts';
import { ClassifierPool, type ClassifierPoolOptions } from '../../src/pool/pool.ts';
import { corpusFiles, hasCorpus, noCorpusReason } from '../helpers/corpus.ts';
import { fixture as fixtureOf, root, testEnv } from '../helpers/env.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const faultyWorker = path.join(here, 'fixtures/faulty-worker.mjs');
const fixture = (name: string) => new Uint8Array(readFileSync(path.join(here, 'fixtures', name)));
const ham = fixture('ham.eml');
const spam = fixture('spam.eml');
const withFault = (fault: string, msg = ham): Uint8Array => {
  const head = new TextEncoder().encode(`X-Test-Fault: ${fault}\r\n`);
  const out = new Uint8Array(head.length + msg.length);
  out.set(head);
  out.set(msg, head.length);
  return out;
};

/** A small model trained on the two fixtures, so BAYES symbols fire and differ from "no model". */
function trainedModelBytes(): Uint8Array {
  const m = emptyModel();
  for (let i = 0; i < 3; i++) {
    trainMessage(m, ham, 'ham');
    trainMessage(m, spam, 'spam');
  }
  return serializeModel(m);
}
const modelBytes = trainedModelBytes();

const look: ClassifyRequest['look'] = { sender: '', senderDomain: '', fromDomain: '', relayIp: '', subject: '', messageId: '' };
const request = (raw: Uint8Array, deadlineMs = 10_000): ClassifyRequest => ({ raw, look, deadline: performance.now() + deadlineMs });

const pools: ClassifierPool[] = [];
function startPool(over: Partial<ClassifierPoolOptions> = {}): ClassifierPool {
  const pool = new ClassifierPool({ workers: 2, queueLength: 100, taskTimeoutMs: 10_000, modelBytes, ...over });
  pools.push(pool);
  return pool;
}
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

async function rejection(p: Promise<unknown>): Promise<FilterError> {
  const err = await p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FilterError);
  return err as FilterError;
}

describe('ClassifierPool', () => {
  it('answers exactly as classifyMessage does in-process', async () => {
    const pool = startPool();
    const model = loadModel(modelBytes);
    for (const raw of [ham, spam]) {
      expect(await pool.classify(request(raw))).toEqual(classifyMessage(raw, model));
    }
    const spamResult = await pool.classify(request(spam));
    expect(spamResult.symbols.map((s) => s.name)).toContain('BAYES_SPAM');
    expect(pool.stats()).toMatchObject({ workers: 2, completed: 3, timeouts: 0, crashes: 0, overloads: 0 });
  });

  it('reuses message buffers without leaking a longer earlier message into a shorter later one', async () => {
    const pool = startPool({ workers: 1 });
    const model = loadModel(modelBytes);
    // Same size class (the pool keeps buffers by power-of-two size): the short message lands in the
    // buffer the long one came back in, with the long one's bytes still past its end.
    const padded = (msg: Uint8Array, size: number, byte: number) => {
      const out = new Uint8Array(size).fill(byte);
      out.set(msg);
      return out;
    };
    const long = padded(spam, 7000, 0x41);
    const short = padded(ham, 4500, 0x62);
    for (let i = 0; i < 3; i++) {
      expect(await pool.classify(request(long))).toEqual(classifyMessage(long, model));
      expect(await pool.classify(request(short))).toEqual(classifyMessage(short, model));
    }
  });

  it.skipIf(!hasCorpus)(`matches in-process results on corpus messages, many in flight at once${hasCorpus ? '' : ` (${noCorpusReason})`}`, async () => {
    const pool = startPool({ queueLength: 1000 });
    const model = loadModel(modelBytes);
    const files = corpusFiles().filter((_, i) => i % 40 === 0);
    expect(files.length).toBeGreaterThan(50);
    const raws = files.map((f) => new Uint8Array(readFileSync(f.path)));
    const results = await Promise.all(raws.map((raw) => pool.classify(request(raw, 60_000))));
    results.forEach((r, i) => expect(r).toEqual(classifyMessage(raws[i] as Uint8Array, model)));
  });

  it("never detaches or changes the caller's bytes", async () => {
    const pool = startPool({ workerFile: faultyWorker });
    // A view into the middle of a larger buffer, as Node's pooled Buffers are.
    const msg = withFault('mutate');
    const backing = new Uint8Array(msg.length + 64);
    backing.set(msg, 32);
    const view = backing.subarray(32, 32 + msg.length);
    const before = Uint8Array.from(view);
    await pool.classify(request(view));
    expect(backing.buffer.byteLength).toBe(msg.length + 64);
    expect(view.byteLength).toBe(msg.length);
    expect(view).toEqual(before);
  });

  it('times out a worker stuck in an endless loop, replaces it, and keeps answering', async () => {
    const pool = startPool({ workers: 1, workerFile: faultyWorker });
    const stuck = pool.classify(request(withFault('hang'), 300));
    // Queued behind the stuck task with a longer deadline: answered by the replacement worker.
    const queued = pool.classify(request(spam, 20_000));
    const err = await rejection(stuck);
    expect(err.code).toBe('ETIMEOUT');
    expect(err.transient).toBe(true);
    expect(await queued).toEqual(classifyMessage(spam, loadModel(modelBytes)));
    expect(await pool.classify(request(ham))).toEqual(classifyMessage(ham, loadModel(modelBytes)));
    expect(pool.stats()).toMatchObject({ workers: 1, timeouts: 1, completed: 2, queued: 0, running: 0 });
  });

  it('skips a message whose deadline passed while it waited, so it cannot hang a worker later', async () => {
    const pool = startPool({ workers: 1, workerFile: faultyWorker });
    const busy = pool.classify(request(withFault('slow 400')));
    // Both would loop forever if the worker ever started them after the pool gave up on them: the
    // first waits inside the worker, the second still in the pool's queue.
    const expiredInWorker = pool.classify(request(withFault('hang'), 100));
    const expiredInQueue = pool.classify(request(withFault('hang'), 100));
    const after = pool.classify(request(ham));
    expect((await rejection(expiredInWorker)).code).toBe('ETIMEOUT');
    expect((await rejection(expiredInQueue)).code).toBe('ETIMEOUT');
    await busy;
    expect(await after).toEqual(classifyMessage(ham, loadModel(modelBytes)));
    expect(pool.stats()).toMatchObject({ workers: 1, timeouts: 2, crashes: 0, completed: 2 });
  });

  it('sends waiting messages in batches; a hang inside one costs only the hung message', async () => {
    const pool = startPool({ workers: 1, workerFile: faultyWorker });
    const first = [pool.classify(request(withFault('slow 200'))), pool.classify(request(ham))];
    // These wait in the pool's queue, then go to the worker together.
    const before = [pool.classify(request(ham)), pool.classify(request(spam))];
    const hung = pool.classify(request(withFault('hang'), 1_000));
    const after = [pool.classify(request(spam)), pool.classify(request(ham))];
    expect((await rejection(hung)).code).toBe('ETIMEOUT');
    const model = loadModel(modelBytes);
    const answers = await Promise.all([...first.slice(1), ...before, ...after]);
    expect(answers).toEqual([ham, ham, spam, spam, ham].map((m) => classifyMessage(m, model)));
    await first[0];
    expect(pool.stats()).toMatchObject({ workers: 1, timeouts: 1, crashes: 0, completed: 6, queued: 0, running: 0 });
  });

  it('takes the shorter of the task timeout and the request deadline', async () => {
    const pool = startPool({ workers: 1, taskTimeoutMs: 200, workerFile: faultyWorker });
    const err = await rejection(pool.classify(request(withFault('hang'), 60_000)));
    expect(err.code).toBe('ETIMEOUT');
    expect(err.details).toEqual({ timeoutMs: 200 });
  });

  it('refuses at once when the deadline has already passed', async () => {
    const pool = startPool();
    const err = await rejection(pool.classify(request(ham, -1)));
    expect(err.code).toBe('ETIMEOUT');
  });

  it('rejects a task whose worker crashes with EWORKER, and replaces the worker', async () => {
    const pool = startPool({ workers: 1, workerFile: faultyWorker });
    const crashing = pool.classify(request(withFault('crash')));
    // Waiting inside the same worker when it dies: not its fault, so it is sent again.
    const neighbour = pool.classify(request(ham));
    const err = await rejection(crashing);
    expect(err.code).toBe('EWORKER');
    expect(err.message).toMatch(/injected crash/);
    expect(await neighbour).toEqual(classifyMessage(ham, loadModel(modelBytes)));
    expect(await pool.classify(request(spam))).toEqual(classifyMessage(spam, loadModel(modelBytes)));
    expect(pool.stats()).toMatchObject({ workers: 1, crashes: 1, completed: 2 });
  });

  it('rejects a task whose worker exits with EWORKER, and replaces the worker', async () => {
    const pool = startPool({ workers: 1, workerFile: faultyWorker });
    const err = await rejection(pool.classify(request(withFault('exit'))));
    expect(err.code).toBe('EWORKER');
    expect(await pool.classify(request(ham))).toEqual(classifyMessage(ham, loadModel(modelBytes)));
    expect(pool.stats()).toMatchObject({ workers: 1, crashes: 1 });
  });

  it("passes on the classifier's own error code, and answers a message the worker left out", async () => {
    const pool = startPool({ workers: 1, workerFile: faultyWorker });
    const refused = await rejection(pool.classify(request(withFault('refuse'))));
    expect([refused.code, refused.message]).toEqual(['EMALFORMED', 'injected refusal']);
    const muted = await rejection(pool.classify(request(withFault('mute'))));
    expect(muted.code).toBe('EINTERNAL');
    expect(await pool.classify(request(ham))).toEqual(classifyMessage(ham, loadModel(modelBytes)));
  });

  it('refuses with EOVERLOAD once the queue is full, and serves what it accepted', async () => {
    const pool = startPool({ workers: 1, queueLength: 2, workerFile: faultyWorker });
    const busy = pool.classify(request(withFault('slow 300')));
    const waiting = [pool.classify(request(ham)), pool.classify(request(spam))];
    const err = await rejection(pool.classify(request(ham)));
    expect(err.code).toBe('EOVERLOAD');
    expect(err.transient).toBe(true);
    expect(err.details).toEqual({ limit: 2 });
    expect(pool.stats()).toMatchObject({ overloads: 1, queued: 2, running: 1 });
    await Promise.all([busy, ...waiting]);
    expect(pool.stats()).toMatchObject({ completed: 3, queued: 0, running: 0 });
    await pool.classify(request(ham));
  });

  it('reloads the model: later messages use the new one', async () => {
    const pool = startPool({ modelBytes: null });
    const before = await pool.classify(request(spam));
    expect(before).toEqual(classifyMessage(spam, null));
    await pool.reloadModel(modelBytes);
    const after = await pool.classify(request(spam));
    expect(after).toEqual(classifyMessage(spam, loadModel(modelBytes)));
    expect(after).not.toEqual(before);
    expect(pool.stats()).toMatchObject({ workers: 2, modelVersion: 1 });
  });

  it('answers every message in flight when the model is reloaded under load, each by one model', async () => {
    const pool = startPool({ modelBytes: null });
    const inflight = Array.from({ length: 40 }, () => pool.classify(request(spam)));
    // The pool sends what arrived once the event loop turns (dispatchSoon): let the first tasks leave.
    await new Promise((r) => setImmediate(r));
    const reload = pool.reloadModel(modelBytes);
    const results = await Promise.all(inflight);
    await reload;
    const before = classifyMessage(spam, null);
    const after = classifyMessage(spam, loadModel(modelBytes));
    // Those already sent finish on the old workers; those still queued go to the new ones.
    expect(results[0]).toEqual(before);
    expect(results.at(-1)).toEqual(after);
    for (const r of results) expect([before, after]).toContainEqual(r);
  });

  it('refuses a bad model with EMODEL and keeps the current one', async () => {
    expect(() => startPool({ modelBytes: new TextEncoder().encode('not a model') })).toThrow(
      expect.objectContaining({ code: 'EMODEL' }),
    );
    const pool = startPool();
    await expect(pool.reloadModel(modelBytes.subarray(0, 40))).rejects.toMatchObject({ code: 'EMODEL' });
    expect(await pool.classify(request(spam))).toEqual(classifyMessage(spam, loadModel(modelBytes)));
  });

  it('gives its workers the preload that makes tinypool’s per-task memory reading cheap, and none under node flags', () => {
    // A process of its own: whether the preload goes in depends on the node flags the process runs with.
    const dir = mkdtempSync(path.join(os.tmpdir(), 'atlas-preload-'));
    const script = path.join(dir, 'probe.mjs');
    writeFileSync(
      script,
      `import { ClassifierPool } from ${JSON.stringify(pathToFileURL(path.join(root, 'dist/pool/pool.js')).href)};
      const pool = new ClassifierPool({ workers: 1, queueLength: 10, taskTimeoutMs: 10000, modelBytes: null, workerFile: ${JSON.stringify(faultyWorker)} });
      const message = 'Subject: x\\r\\n\\r\\nhello\\r\\n';
      const encode = (s) => new TextEncoder().encode(s);
      const look = { sender: '', senderDomain: '', fromDomain: '', relayIp: '', subject: '', messageId: '' };
      const err = await pool.classify({ raw: encode('X-Test-Fault: probe\\r\\n' + message), look, deadline: performance.now() + 10000 }).catch((e) => e);
      const ham = await pool.classify({ raw: encode(message), look, deadline: performance.now() + 10000 });
      console.log(JSON.stringify({ probe: err.message.split(' ')[0], heapUsed: Number(err.message.split(' ')[1]), classified: Array.isArray(ham.symbols) }));
      await pool.close();`,
    );
    try {
      const run = (flags: string[]) => JSON.parse(execFileSync(process.execPath, [...flags, script], { encoding: 'utf8', timeout: 30_000 }));
      const plain = run([]);
      expect(plain).toMatchObject({ probe: 'lazyMemoryUsage', classified: true });
      expect(plain.heapUsed).toBeGreaterThan(1_000_000);
      // Node refuses --expose-gc in a worker's execArgv: the workers inherit it and keep the full reading.
      expect(run(['--expose-gc'])).toMatchObject({ probe: 'memoryUsage', classified: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.runIf(process.platform === 'linux')('runs its workers workerNice steps below the thread that started them, replacements too', async () => {
    /** The nice value of each thread of this process (field 19 of /proc/self/task/TID/stat). */
    const niceOfThreads = (): number[] =>
      readdirSync('/proc/self/task').flatMap((tid) => {
        try {
          return [Number(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]?.split(' ')[16])];
        } catch {
          return []; // a thread that ended meanwhile
        }
      });
    const base = os.getPriority(0);
    const lowered = () => niceOfThreads().filter((n) => n === Math.min(19, base + 7)).length;
    expect(lowered()).toBe(0);
    const pool = startPool({ workers: 2, workerNice: 7, workerFile: faultyWorker });
    await Promise.all([pool.classify(request(ham)), pool.classify(request(spam))]);
    expect(lowered()).toBe(2);
    expect(os.getPriority(0)).toBe(base);
    // A crash replaces the worker; the new thread lowers itself as well.
    await rejection(pool.classify(request(withFault('crash'))));
    await vi.waitFor(() => expect(lowered()).toBe(2), { timeout: 10_000 });
    await pool.close();
    expect(lowered()).toBe(0);
    // 0 leaves them at the starting thread's priority.
    const same = startPool({ workers: 2, workerNice: 0, workerFile: faultyWorker });
    await Promise.all([same.classify(request(ham)), same.classify(request(spam))]);
    expect(niceOfThreads().every((n) => n === base)).toBe(true);
  });

  it('names a bad option', () => {
    expect(() => startPool({ workers: 0 })).toThrow(new RangeError('ClassifierPool option "workers" must be a positive whole number, got 0'));
    expect(() => startPool({ queueLength: 1.5 })).toThrow(/"queueLength"/);
    expect(() => startPool({ taskTimeoutMs: -1 })).toThrow(/"taskTimeoutMs"/);
    expect(() => startPool({ workerNice: 20 })).toThrow(/"workerNice" must be a whole number from 0 to 19/);
  });

  it('close() resolves, fails what was in flight, and rejects later calls with EWORKER', async () => {
    const pool = startPool({ workers: 1, workerFile: faultyWorker });
    const running = pool.classify(request(withFault('slow 2000')));
    const queued = pool.classify(request(ham));
    const failures = Promise.all([rejection(running), rejection(queued)]);
    await pool.close();
    expect((await failures).map((e) => e.code)).toEqual(['EWORKER', 'EWORKER']);
    const later = await rejection(pool.classify(request(ham)));
    expect(later.code).toBe('EWORKER');
    expect(later.message).toMatch(/closed/);
    await expect(pool.reloadModel(modelBytes)).rejects.toMatchObject({ code: 'EWORKER' });
    await pool.close();
  });
});

describe('scan() with the pool as classifier', () => {
  it('turns a stuck worker into a tempfail verdict, never an accept', async () => {
    const pool = startPool({ workers: 1, workerFile: faultyWorker });
    const config = defaultConfig();
    config.pool.taskTimeoutMs = 300;
    const v = await scan({ raw: withFault('hang') }, testEnv({ config, classifier: pool }));
    expect(v).toMatchObject({ action: 'tempfail', errorCode: 'ETIMEOUT', spam: false, source: 'classifier' });
    expect(v.reason).toMatch(/longer than \d+ ms; the worker was replaced/);
  });

  it('turns a full queue into a tempfail verdict with the reason', async () => {
    const pool = startPool({ workers: 1, queueLength: 1, workerFile: faultyWorker });
    const env = testEnv({ classifier: pool });
    const scans = [withFault('slow 300'), ham, ham].map((raw) => scan({ raw, noCache: true }, env));
    const verdicts = await Promise.all(scans);
    expect(verdicts.map((v) => v.action)).toEqual(['accept', 'accept', 'tempfail']);
    expect(verdicts[2]).toMatchObject({ errorCode: 'EOVERLOAD' });
    expect(verdicts[2]?.reason).toMatch(/overloaded/);
  });
});

describe('scan() with the body rules matched in the pool', () => {
  const ruleFixtures = readdirSync(path.join(root, 'test/fixtures/rules')).filter((f) => f.endsWith('.eml'));
  // Stages are timings; everything else in a verdict must be the same whichever thread matched the body.
  const comparable = (v: Verdict) => ({ ...v, elapsedMs: 0, stages: {} });

  it('gives the same verdict as matching the body on the main thread, for every rule fixture and the classifier fixtures', async () => {
    const pool = startPool();
    const model = loadModel(modelBytes);
    // The same worker code, in-process and without `matchesBody`: scan() then matches the body itself.
    const inProcess: Classifier = { classify: async (req) => classifyMessage(req.raw, model) };
    const raws = [...ruleFixtures.map((f) => fixtureOf(`rules/${f}`)), ham, spam];
    expect(pool.matchesBody).toBe(true);
    for (const raw of raws) {
      const viaPool = await scan({ raw }, testEnv({ classifier: pool }));
      const direct = await scan({ raw }, testEnv({ classifier: inProcess }));
      expect(comparable(viaPool)).toEqual(comparable(direct));
    }
    // The body-rule fixtures did end their scans early with the body matched in a worker.
    const sextortion = await scan({ raw: fixtureOf('rules/SCAM_SEXTORTION.eml') }, testEnv({ classifier: pool }));
    expect(sextortion).toMatchObject({ action: 'reject', source: 'early' });
  });

  it('keeps the body matches for the cache: a repeat is answered without the pool', async () => {
    const pool = startPool();
    const env = testEnv({ classifier: pool });
    const raw = fixtureOf('rules/PHISH_VERIFY_NOW.eml');
    const first = await scan({ raw }, env);
    const completed = pool.stats().completed;
    const second = await scan({ raw }, env);
    expect(pool.stats().completed).toBe(completed);
    expect(second.symbols.map((s) => s.name)).toEqual(first.symbols.map((s) => s.name));
    expect(second.symbols.map((s) => s.name)).toContain('PHISH_VERIFY_NOW');
  });

  it('still ends the scan on a body rule when the classification fails, instead of a tempfail', async () => {
    const pool = startPool({ workers: 1, workerFile: faultyWorker });
    const v = await scan({ raw: withFault('refuse', fixtureOf('rules/SCAM_SEXTORTION.eml')) }, testEnv({ classifier: pool }));
    expect(v).toMatchObject({ action: 'reject', source: 'early' });
    expect(v.symbols.map((s) => s.name)).toContain('SCAM_SEXTORTION');
    const plain = await scan({ raw: withFault('refuse') }, testEnv({ classifier: pool }));
    expect(plain).toMatchObject({ action: 'tempfail', errorCode: 'EMALFORMED' });
  });
});
