// The Node-only parts a pipeline needs: the classifier pool, the auth stage. Each door asks for what
// it uses; `close()` stops them in order.
import { existsSync, readFileSync } from 'node:fs';
import { createAuthStage } from '../auth/stage.ts';
import type { Caches } from '../core/cache.ts';
import type { Config } from '../core/config.ts';
import type { AuthStage, Classifier } from '../core/scan.ts';
import { ClassifierPool } from '../pool/pool.ts';

export interface Runtime {
  classifier?: Classifier;
  /** The same object as `classifier` when it runs in workers: stats() for metrics, reloadModel() for learn. */
  pool?: ClassifierPool;
  auth?: AuthStage;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  /** Start the classifier pool (false for rules-only runs). */
  classify?: boolean;
  /** Say on stderr which classifier runs (serve); one-shot commands stay quiet. */
  log?: boolean;
  /** The pipeline's caches, read when a message is checked (the auth stage keeps its own without). */
  caches?: () => Caches;
}

export async function createRuntime(config: Config, options: RuntimeOptions = {}): Promise<Runtime> {
  const pool = startPool(config, options);
  const auth = config.auth.enabled ? createAuthStage(config, { caches: options.caches }) : undefined;
  return { classifier: pool, pool, auth, close: async () => pool?.close() };
}

/** The pool when asked for and a model file exists; otherwise scans run on rules alone. */
function startPool(config: Config, options: RuntimeOptions): ClassifierPool | undefined {
  const warn = (m: string) => process.stderr.write(m + '\n');
  const say = options.log ? warn : () => {};
  if (!options.classify) {
    say('classifier: off (rules only)');
    return undefined;
  }
  if (!existsSync(config.modelFile)) {
    // Said even by quiet commands: a missing model silently turning `check` into rules-only would mislead.
    warn(`classifier: off, no model file at ${config.modelFile} (train one with "atlas-email learn")`);
    return undefined;
  }
  const { workers, queueLength, taskTimeoutMs, workerNice } = config.pool;
  // A bad model file throws EMODEL here, at start, rather than failing every message later.
  const pool = new ClassifierPool({ workers, queueLength, taskTimeoutMs, workerNice, modelBytes: new Uint8Array(readFileSync(config.modelFile)) });
  say(`classifier: ${workers} worker${workers === 1 ? '' : 's'}, model ${config.modelFile}`);
  return pool;
}
