// Loads rules/*.yaml and reloads them when a file changes. A reload builds a complete new rule set
// and swaps it in one assignment; a broken edit keeps the old set and logs why (as Haraka's config).
import { readdirSync, readFileSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { RuleSet } from '../core/rules/load.ts';
import { loadRules } from '../core/rules/load.ts';

export function readRulesDir(dir: string, scoreOverrides: Record<string, number> = {}): RuleSet {
  const files = readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => path.join(dir, f));
  return loadRules(
    files.map((p) => ({ path: p, text: readFileSync(p, 'utf8') })),
    scoreOverrides,
  );
}

export interface RuleHolder {
  current: () => RuleSet;
  reload: () => boolean;
  close: () => void;
}

export function watchRules(
  dir: string,
  scoreOverrides: Record<string, number>,
  log: (msg: string) => void = (m) => process.stderr.write(m + '\n'),
): RuleHolder {
  let set = readRulesDir(dir, scoreOverrides);
  let timer: NodeJS.Timeout | undefined;
  const reload = (): boolean => {
    try {
      set = readRulesDir(dir, scoreOverrides);
      log(`rules: reloaded ${set.rules.length} rules from ${dir}`);
      return true;
    } catch (e) {
      log(`rules: reload failed, keeping the previous ${set.rules.length} rules: ${(e as Error).message}`);
      return false;
    }
  };
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dir, { persistent: false }, () => {
      // Editors write in several steps (truncate, write, rename): settle before reading.
      clearTimeout(timer);
      timer = setTimeout(reload, 100);
    });
  } catch (e) {
    log(`rules: cannot watch ${dir} (${(e as Error).message}); edits need a restart`);
  }
  return {
    current: () => set,
    reload,
    close: () => {
      clearTimeout(timer);
      watcher?.close();
    },
  };
}
