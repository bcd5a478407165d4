// A scan environment built from the shipped rules and defaults, for core tests.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCaches } from '../../src/core/cache.ts';
import { type Config, defaultConfig } from '../../src/core/config.ts';
import type { RuleSet } from '../../src/core/rules/load.ts';
import type { Classifier, ScanEnv } from '../../src/core/scan.ts';
import { readRulesDir } from '../../src/cli/rules-watch.ts';

export const root = path.resolve(fileURLToPath(new URL('../../', import.meta.url)));
export const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(path.join(root, 'test/fixtures', name)));
export const shippedRules = (): RuleSet => readRulesDir(path.join(root, 'rules'));

export function testEnv(over: { config?: Config; rules?: RuleSet; classifier?: Classifier } = {}): ScanEnv {
  const config = over.config ?? defaultConfig();
  const rules = over.rules ?? shippedRules();
  return {
    config,
    rules: () => rules,
    caches: createCaches(config.cache),
    classifier: over.classifier,
    now: () => performance.now(),
  };
}

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
