// The Node-only parts a pipeline needs: the classifier pool, the auth stage. Each door asks for what
// it uses; `close()` stops them in order.
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
}

export async function createRuntime(_config: Config, _options: RuntimeOptions = {}): Promise<Runtime> {
  return { close: async () => {} };
}
