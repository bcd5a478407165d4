// Loads rule files from their text. Reading the files (and watching them) is the caller's I/O.
import { parse } from 'yaml';
import { FilterError } from '../errors.ts';
import { compileRules, type RuleSet } from './compile.ts';
import { validateRuleFile } from './validate.ts';

export interface RuleFileText {
  path: string;
  text: string;
}

/** Parses, validates and compiles every file; the first problem throws an ERULES error naming it. */
export function loadRules(files: RuleFileText[], scoreOverrides: Record<string, number> = {}): RuleSet {
  const specs = files.flatMap(({ path, text }) => {
    let doc: unknown;
    try {
      doc = parse(text);
    } catch (e) {
      throw new FilterError('ERULES', `${path}: not valid YAML: ${(e as Error).message.split('\n')[0]}`, { file: path });
    }
    return validateRuleFile(path, doc);
  });
  return compileRules(specs, scoreOverrides);
}

export { type BodyMatches, type BodyRules, compileBodyRules, NO_BODY, type RuleSet } from './compile.ts';
export type { RuleHit, RuleSpec } from './types.ts';
