// Online learning for a running filter (HTTP /v1/learn, SPAMC TELL): trains the model held in this
// process, saves it atomically (as `atlas-email learn` does) and hands it to the worker pool. Reloads
// are coalesced: messages learned while one reload runs all go into the next, so a burst of learns
// costs two pool reloads, not one per message.
import type { Caches } from '../core/cache.ts';
import { emptyModel, type Model, trainMessage } from '../core/classify.ts';
import type { ClassifierPool } from '../pool/pool.ts';
import { readModelFile, writeModelFile } from './learn.ts';

export interface LearnResult {
  /** The pool's model version that includes this message. */
  modelVersion: number;
  /** Messages learned by this process since it started. */
  learnedSinceStart: number;
}

export interface Learner {
  /** Resolves once the model that includes the message classifies new mail. */
  learn(raw: Uint8Array, label: 'spam' | 'ham'): Promise<LearnResult>;
}

export interface LearnerOptions {
  modelFile: string;
  pool: Pick<ClassifierPool, 'reloadModel' | 'stats'>;
  /** Cached classifier answers come from the old model: cleared on every reload. */
  caches?: Caches;
}

export function createLearner(options: LearnerOptions): Learner {
  let model: Model | null = null;
  let learned = 0;
  let running: Promise<void> | null = null;
  let queued: Promise<void> | null = null;

  const publish = async (m: Model): Promise<void> => {
    await options.pool.reloadModel(writeModelFile(options.modelFile, m));
    options.caches?.verdict.clear();
  };
  const start = (m: Model): Promise<void> => {
    running = publish(m).finally(() => {
      running = null;
    });
    return running;
  };
  /** A reload that starts after the training just done: the running one started before it. */
  const schedule = (m: Model): Promise<void> => {
    if (queued) return queued;
    if (!running) return start(m);
    queued = running
      .catch(() => {})
      .then(() => {
        queued = null;
        return start(m);
      });
    return queued;
  };

  return {
    async learn(raw, label) {
      // Loaded on first use, from the file as it is now (a CLI `learn` may have updated it since start).
      model ??= readModelFile(options.modelFile) ?? emptyModel();
      trainMessage(model, raw, label);
      learned++;
      await schedule(model);
      return { modelVersion: options.pool.stats().modelVersion, learnedSinceStart: learned };
    },
  };
}
