// Builds the scan environment once per process: config → rules → caches → classifier → sinks.
// Every command and door shares this, so `check` answers exactly as `serve` would.
import { performance } from 'node:perf_hooks';
import { createCaches } from '../core/cache.ts';
import type { Config } from '../core/config.ts';
import type { Look } from '../core/look.ts';
import { type AuthStage, type Classifier, scan, type ScanEnv, type ScanInput } from '../core/scan.ts';
import type { Verdict } from '../core/verdict.ts';
import { readRulesDir, type RuleHolder, watchRules } from './rules-watch.ts';

export interface PipelineOptions {
  /** Reload rules when their files change (serve); one-shot commands read them once. */
  watchRules?: boolean;
  classifier?: Classifier;
  auth?: AuthStage;
  log?: (msg: string) => void;
}

export interface Pipeline {
  config: Config;
  env: ScanEnv;
  rules: RuleHolder;
  scan(input: ScanInput): Promise<Verdict>;
  /** Adds a verdict listener (metrics, verdict log); listeners must not throw. */
  onVerdict(listener: (v: Verdict, look: Look | null) => void): void;
  close(): Promise<void>;
}

export function createPipeline(config: Config, options: PipelineOptions = {}): Pipeline {
  const log = options.log ?? ((m: string) => process.stderr.write(m + '\n'));
  const rules: RuleHolder = options.watchRules
    ? watchRules(config.rulesDir, config.scores, log)
    : (() => {
        const set = readRulesDir(config.rulesDir, config.scores);
        return { current: () => set, reload: () => true, close: () => {} };
      })();
  const listeners: ((v: Verdict, look: Look | null) => void)[] = [];
  const env: ScanEnv = {
    config,
    rules: rules.current,
    caches: createCaches(config.cache),
    classifier: options.classifier,
    auth: options.auth,
    now: () => performance.now(),
    onVerdict: (v, look) => {
      for (const l of listeners) {
        try {
          l(v, look);
        } catch (e) {
          log(`verdict listener failed: ${(e as Error).message}`);
        }
      }
    },
  };
  return {
    config,
    env,
    rules,
    scan: (input) => scan(input, env),
    onVerdict: (l) => listeners.push(l),
    close: async () => {
      rules.close();
    },
  };
}
