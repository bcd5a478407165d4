// The Node-only parts a pipeline needs: the classifier pool, the auth stage. Each door asks for what
// it uses; `close()` stops them in order.
import { createAuthStage } from '../auth/stage.ts';
import type { Caches } from '../core/cache.ts';
import type { Config } from '../core/config.ts';
import type { AuthStage, Classifier } from '../core/scan.ts';

export interface Runtime {
  classifier?: Classifier;
  auth?: AuthStage;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  /** Start the classifier pool (false for rules-only runs). */
  classify?: boolean;
  log?: boolean;
  /** The pipeline's caches, read when a message is checked (the auth stage keeps its own without). */
  caches?: () => Caches;
}

export async function createRuntime(config: Config, options: RuntimeOptions = {}): Promise<Runtime> {
  const auth = config.auth.enabled ? createAuthStage(config, { caches: options.caches }) : undefined;
  return { auth, close: async () => {} };
}
