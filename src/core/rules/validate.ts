// Validation of parsed rule files. Errors name the file, the rule and the field, because an operator
// editing rules/local.yaml at 3 a.m. needs to know exactly which line to fix.
import { FilterError } from '../errors.ts';
import { parseCidr } from '../net.ts';
import { ACTIONS, type Action } from '../verdict.ts';
import type { MatchSpec, RuleSpec } from './types.ts';

const SYMBOL = /^[A-Z][A-Z0-9_]{1,63}$/;
const MATCH_KEYS = ['sender', 'domain', 'ip', 'subject', 'body', 'from', 'header', 'missing'] as const;
const RULE_KEYS = new Set(['symbol', 'score', 'group', 'description', 'priority', 'action', 'match']);

function err(file: string, rule: string, field: string, message: string): never {
  const where = rule ? `${file}: rule ${rule}: field "${field}"` : `${file}: field "${field}"`;
  throw new FilterError('ERULES', `${where} ${message}`, { file, rule, field });
}

/** Turns "/re/flags" or a plain phrase into a RegExp source + flags; throws on a bad pattern. */
export function patternOf(p: string): { source: string; flags: string } {
  const m = /^\/(.*)\/([a-z]*)$/s.exec(p);
  if (m) return { source: m[1] as string, flags: m[2] as string };
  // A plain phrase: literal, case-insensitive, whitespace-tolerant.
  const escaped = p.trim().replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\s+/g, '\\s+');
  return { source: escaped, flags: 'i' };
}

function stringList(file: string, rule: string, field: string, v: unknown): string[] {
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.length === 0 || !list.every((x) => typeof x === 'string' && x.length > 0)) {
    err(file, rule, field, 'must be a non-empty string or list of strings');
  }
  return list as string[];
}

function checkPatterns(file: string, rule: string, field: string, list: string[]): void {
  for (const p of list) {
    const { source, flags } = patternOf(p);
    if (/[^imsu]/.test(flags)) err(file, rule, field, `pattern ${p} has unsupported flags "${flags}" (use i, m, s, u)`);
    try {
      new RegExp(source, flags);
    } catch (e) {
      err(file, rule, field, `has an invalid pattern ${p}: ${(e as Error).message}`);
    }
  }
}

function validateMatch(file: string, rule: string, v: unknown): MatchSpec {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) err(file, rule, 'match', 'must be a mapping of conditions');
  const m = v as Record<string, unknown>;
  const out: MatchSpec = {};
  for (const key of Object.keys(m)) {
    if (!(MATCH_KEYS as readonly string[]).includes(key)) err(file, rule, `match.${key}`, `is not a known condition (one of ${MATCH_KEYS.join(', ')})`);
  }
  if (Object.keys(m).length === 0) err(file, rule, 'match', 'needs at least one condition');
  if (m.sender !== undefined) out.sender = stringList(file, rule, 'match.sender', m.sender).map((s) => s.toLowerCase());
  if (m.domain !== undefined) out.domain = stringList(file, rule, 'match.domain', m.domain).map((s) => s.toLowerCase().replace(/^\.|\.$/g, ''));
  if (m.ip !== undefined) {
    out.ip = stringList(file, rule, 'match.ip', m.ip);
    for (const c of out.ip) if (!parseCidr(c)) err(file, rule, 'match.ip', `has an invalid address or CIDR "${c}"`);
  }
  for (const key of ['subject', 'body', 'from'] as const) {
    if (m[key] === undefined) continue;
    const list = stringList(file, rule, `match.${key}`, m[key]);
    checkPatterns(file, rule, `match.${key}`, list);
    out[key] = list;
  }
  if (m.header !== undefined) {
    const h = m.header;
    if (typeof h !== 'object' || h === null || Array.isArray(h)) err(file, rule, 'match.header', 'must be a mapping of header name to patterns');
    out.header = {};
    for (const [name, pats] of Object.entries(h as Record<string, unknown>)) {
      const list = stringList(file, rule, `match.header.${name}`, pats);
      checkPatterns(file, rule, `match.header.${name}`, list);
      out.header[name.toLowerCase()] = list;
    }
  }
  if (m.missing !== undefined) out.missing = stringList(file, rule, 'match.missing', m.missing).map((s) => s.toLowerCase());
  return out;
}

/** Validates one parsed rule file (`{ rules: [...] }`) and returns its rules. */
export function validateRuleFile(file: string, doc: unknown): RuleSpec[] {
  if (doc === null || doc === undefined) return [];
  if (typeof doc !== 'object' || Array.isArray(doc)) err(file, '', 'rules', 'the file must be a mapping with a "rules" list');
  const top = doc as Record<string, unknown>;
  for (const k of Object.keys(top)) if (k !== 'rules') err(file, '', k, 'is not a known top-level key (only "rules")');
  if (!Array.isArray(top.rules)) err(file, '', 'rules', 'must be a list');
  const group = file.replace(/^.*[\\/]/, '').replace(/\.ya?ml$/, '');
  return (top.rules as unknown[]).map((raw, i) => {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) err(file, `#${i + 1}`, '(rule)', 'must be a mapping');
    const r = raw as Record<string, unknown>;
    const name = typeof r.symbol === 'string' ? r.symbol : `#${i + 1}`;
    for (const k of Object.keys(r)) if (!RULE_KEYS.has(k)) err(file, name, k, `is not a known field (one of ${[...RULE_KEYS].join(', ')})`);
    if (typeof r.symbol !== 'string' || !SYMBOL.test(r.symbol)) err(file, name, 'symbol', 'must be UPPER_CASE letters, digits and _ (2-64 chars)');
    if (typeof r.score !== 'number' || !Number.isFinite(r.score)) err(file, name, 'score', 'must be a number');
    if (r.group !== undefined && typeof r.group !== 'string') err(file, name, 'group', 'must be a string');
    if (typeof r.description !== 'string' || !r.description.trim()) err(file, name, 'description', 'must be a non-empty string');
    if (r.priority !== undefined && !Number.isInteger(r.priority)) err(file, name, 'priority', 'must be a whole number');
    if (r.action !== undefined && !(ACTIONS as readonly unknown[]).includes(r.action)) err(file, name, 'action', `must be one of ${ACTIONS.join(', ')}`);
    return {
      symbol: r.symbol,
      score: r.score,
      group: (r.group as string | undefined) ?? group,
      description: r.description.trim(),
      priority: (r.priority as number | undefined) ?? 0,
      action: r.action as Action | undefined,
      match: validateMatch(file, name, r.match),
      file,
    };
  });
}
