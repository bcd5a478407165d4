// The edge entry: the same Hono app as the Node HTTP door, with the core (quick look, rules, cache,
// model) running in-process — no worker threads, no native addons, no SQLite. Verdicts go to a
// pluggable sink. Runtime-neutral: file reading and watching are the caller's (main.ts on Deno).
import type { Hono } from 'hono';
import { createCaches } from '../core/cache.ts';
import { classifyMessage, loadModel, type Model, trainMessage } from '../core/classify.ts';
import type { Config } from '../core/config.ts';
import { FilterError } from '../core/errors.ts';
import { type RuleFileText, loadRules, type RuleSet } from '../core/rules/load.ts';
import { type Classifier, scan, type ScanEnv } from '../core/scan.ts';
import { createHttpApp } from '../ingress/http.ts';
import { consoleSink, type VerdictSink } from './sink.ts';

export interface EdgeOptions {
  config: Config;
  /** Rule files (read from disk or bundled with the code). */
  rules: RuleFileText[];
  /** Model file bytes; null or absent runs on rules alone. */
  model?: Uint8Array | null;
  sink?: VerdictSink;
  log?: (msg: string) => void;
}

export interface EdgeApp {
  app: Hono;
  fetch: (req: Request) => Response | Promise<Response>;
  env: ScanEnv;
  /** Swaps the rules atomically; a broken set throws and the old one stays. */
  setRules(files: RuleFileText[]): void;
  setModel(bytes: Uint8Array | null): void;
  sink: VerdictSink;
}

export function createEdgeApp(o: EdgeOptions): EdgeApp {
  const log = o.log ?? ((m: string) => console.error(m));
  const sink = o.sink ?? consoleSink();
  let rules: RuleSet = loadRules(o.rules, o.config.scores);
  let model: Model | null = o.model ? loadModel(o.model) : null;
  const caches = createCaches(o.config.cache);
  // In-process: the classifier is synchronous here, so a scan cannot be cut at a deadline; the edge
  // platform's own request limit bounds it instead.
  const classifier: Classifier = { classify: async (req) => classifyMessage(req.raw, model) };
  const env: ScanEnv = {
    config: o.config,
    rules: () => rules,
    caches,
    classifier: model ? classifier : undefined,
    now: () => performance.now(),
    onVerdict: (v) => {
      try {
        sink.record(v);
      } catch (e) {
        log(`edge: verdict sink failed: ${(e as Error).message}`);
      }
    },
  };
  const app = createHttpApp({
    config: o.config,
    scan: (input) => scan(input, env),
    learn: async (raw, label) => {
      // EWORKER, as the Node door answers a process without a classifier: 503, not a 500 crash.
      if (!model) throw new FilterError('EWORKER', 'no model loaded: start the edge with a model file to learn');
      trainMessage(model, raw, label);
      // The cached answers came from the old weights.
      caches.verdict.clear();
      return { persisted: false };
    },
    health: () => [
      { name: 'classifier', ok: true, detail: { model: model ? 'in-process' : 'off (rules only)' } },
      { name: 'rules', ok: true, detail: { count: rules.rules.length } },
      { name: 'sink', ok: true, detail: sink.stats() },
    ],
    log,
  });
  return {
    app,
    fetch: (req) => app.fetch(req),
    env,
    sink,
    setRules(files) {
      rules = loadRules(files, o.config.scores);
      caches.verdict.clear();
    },
    setModel(bytes) {
      model = bytes ? loadModel(bytes) : null;
      env.classifier = model ? classifier : undefined;
      caches.verdict.clear();
    },
  };
}
