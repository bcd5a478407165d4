// Where the edge logs verdicts: there is no SQLite at the edge, so verdicts go to a pluggable sink —
// JSON lines on the console (the platform's log collector picks them up) or batches POSTed to an HTTP
// endpoint. Neither ever holds up an answer: the HTTP sink buffers and sends in the background.
import type { Verdict } from '../core/verdict.ts';

export interface VerdictSink {
  record(v: Verdict): void;
  /** Sends what is buffered; resolves when done (or failed and counted). */
  flush(): Promise<void>;
  stats(): { recorded: number; sent: number; dropped: number; failedBatches: number };
}

/** The row a sink writes: the verdict without internal timings, plus the time. */
export function logRow(v: Verdict, now = new Date()): Record<string, unknown> {
  const { stages: _stages, ...rest } = v;
  return { time: now.toISOString(), ...rest };
}

export function consoleSink(write: (line: string) => void = (l) => console.log(l)): VerdictSink {
  let recorded = 0;
  return {
    record(v) {
      recorded++;
      write(JSON.stringify(logRow(v)));
    },
    flush: async () => {},
    stats: () => ({ recorded, sent: recorded, dropped: 0, failedBatches: 0 }),
  };
}

export interface HttpSinkOptions {
  url: string;
  /** Sent as a bearer token when set. */
  token?: string;
  batchSize?: number;
  flushMs?: number;
  /** Rows kept while the endpoint is down; older ones are dropped and counted. */
  maxBuffered?: number;
  fetch?: typeof fetch;
  log?: (msg: string) => void;
}

/** POSTs JSON arrays of rows; a failed batch is retried with the next flush, within maxBuffered. */
export function httpSink(o: HttpSinkOptions): VerdictSink & { close(): Promise<void> } {
  const batchSize = o.batchSize ?? 500;
  const maxBuffered = o.maxBuffered ?? 50_000;
  const doFetch = o.fetch ?? fetch;
  let buf: Record<string, unknown>[] = [];
  let recorded = 0;
  let sent = 0;
  let dropped = 0;
  let failedBatches = 0;
  let inFlight: Promise<void> | null = null;

  const send = async (): Promise<void> => {
    while (buf.length) {
      const batch = buf.slice(0, batchSize);
      try {
        const res = await doFetch(o.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) },
          body: JSON.stringify(batch),
        });
        await res.body?.cancel();
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        buf = buf.slice(batch.length);
        sent += batch.length;
      } catch (e) {
        failedBatches++;
        o.log?.(`edge: verdict sink ${o.url} failed (${(e as Error).message}); keeping ${buf.length} rows for the next try`);
        return;
      }
    }
  };
  const flush = (): Promise<void> => {
    inFlight ??= send().finally(() => {
      inFlight = null;
    });
    return inFlight;
  };
  const timer = setInterval(() => void flush(), o.flushMs ?? 1000);
  // Deno and Node both let a timer not keep the process alive.
  (timer as unknown as { unref?: () => void }).unref?.();

  return {
    record(v) {
      recorded++;
      buf.push(logRow(v));
      if (buf.length > maxBuffered) {
        dropped += buf.length - maxBuffered;
        buf = buf.slice(buf.length - maxBuffered);
      }
      if (buf.length >= batchSize) void flush();
    },
    flush,
    stats: () => ({ recorded, sent, dropped, failedBatches }),
    close: async () => {
      clearInterval(timer);
      await flush();
    },
  };
}
