// Compiles validated rules into one matcher. Each text field gets one combined regular expression
// per flag set, used as a prefilter: most mail matches nothing, and then the cost is one scan of the
// field instead of one per rule. Only when the prefilter hits are the single patterns tried, to learn
// which rules fired. Lists (sender, domain, IP) become hash lookups.
import { FilterError } from '../errors.ts';
import { limits } from '../limits.ts';
import type { Look } from '../look.ts';
import { type Cidr, cidrContains, parseCidr, parseIp } from '../net.ts';
import { patternOf } from './validate.ts';
import type { RuleHit, RuleSpec } from './types.ts';

interface FieldMatcher {
  prefilters: RegExp[];
  singles: { rule: number; re: RegExp }[];
}

type TextField = 'subject' | 'body' | 'from' | `header:${string}`;

export interface RuleSet {
  readonly rules: readonly RuleSpec[];
  /** Files the set was built from, for reload logs. */
  readonly files: readonly string[];
  /**
   * Body patterns only: which rules' body condition holds. It depends on the body bytes alone, so the
   * verdict cache keeps it beside the classifier's answer and a cache hit never rescans the body.
   */
  matchBody(look: Look, raw: Uint8Array): BodyMatches;
  /**
   * The body patterns as plain data, so a classifier worker can match them beside its own work and
   * spare the main thread (the body scan is its largest cost on a cache miss); absent without body rules.
   */
  readonly body?: BodyRules;
  /** Every rule, given the body matches (computed now or taken from the cache). */
  match(look: Look, raw: Uint8Array, body?: BodyMatches): RuleHit[];
}

/** Rule index → the matched text, for the rules whose body condition holds. */
export type BodyMatches = ReadonlyMap<number, string>;

export const NO_BODY: BodyMatches = new Map();

/** A rule set's body patterns; `id` differs for every compiled set, so a worker can keep its compiled form. */
export interface BodyRules {
  id: number;
  patterns: { rule: number; pattern: string }[];
}

let lastBodyRulesId = 0;

function buildField(entries: { rule: number; pattern: string }[]): FieldMatcher {
  const byFlags = new Map<string, string[]>();
  const singles: FieldMatcher['singles'] = [];
  for (const { rule, pattern } of entries) {
    const { source, flags } = patternOf(pattern);
    singles.push({ rule, re: new RegExp(source, flags) });
    const list = byFlags.get(flags) ?? [];
    list.push(`(?:${source})`);
    byFlags.set(flags, list);
  }
  const prefilters = [...byFlags].map(([flags, sources]) => new RegExp(sources.join('|'), flags));
  return { prefilters, singles };
}

const latin1 = new TextDecoder('latin1');

function anyTest(res: readonly RegExp[], text: string): boolean {
  for (const re of res) if (re.test(text)) return true;
  return false;
}

export function compileRules(rules: RuleSpec[], scoreOverrides: Record<string, number> = {}): RuleSet {
  const seen = new Map<string, string>();
  for (const r of rules) {
    const other = seen.get(r.symbol);
    if (other !== undefined) {
      throw new FilterError('ERULES', `${r.file}: rule ${r.symbol}: field "symbol" is already defined in ${other}`, {
        file: r.file,
        rule: r.symbol,
        field: 'symbol',
      });
    }
    seen.set(r.symbol, r.file);
  }

  const texts = new Map<TextField, { rule: number; pattern: string }[]>();
  const senders = new Map<string, number[]>();
  const domains = new Map<string, number[]>();
  const ips: { rule: number; cidr: Cidr }[] = [];
  const missing = new Map<string, number[]>();
  const push = <K>(map: Map<K, number[]>, key: K, rule: number) => {
    const l = map.get(key);
    if (l) l.push(rule);
    else map.set(key, [rule]);
  };

  rules.forEach((r, i) => {
    const m = r.match;
    for (const f of ['subject', 'body', 'from'] as const) {
      for (const p of m[f] ?? []) {
        const l = texts.get(f) ?? [];
        l.push({ rule: i, pattern: p });
        texts.set(f, l);
      }
    }
    for (const [name, pats] of Object.entries(m.header ?? {})) {
      const key = `header:${name}` as const;
      const l = texts.get(key) ?? [];
      for (const p of pats) l.push({ rule: i, pattern: p });
      texts.set(key, l);
    }
    for (const s of m.sender ?? []) push(senders, s.startsWith('*@') ? s.slice(1) : s, i);
    for (const d of m.domain ?? []) push(domains, d, i);
    for (const c of m.ip ?? []) ips.push({ rule: i, cidr: parseCidr(c) as Cidr });
    for (const h of m.missing ?? []) push(missing, h, i);
  });

  const fields = new Map<TextField, FieldMatcher>();
  for (const [f, entries] of texts) fields.set(f, buildField(entries));
  const missingNames = [...missing.keys()];

  const scored = rules.map((r) => ({ ...r, score: scoreOverrides[r.symbol] ?? r.score }));

  const bodyField = fields.get('body');
  fields.delete('body');

  const bodyEntries = texts.get('body');
  const body: BodyRules | undefined = bodyEntries && { id: ++lastBodyRulesId, patterns: bodyEntries };
  const bodyMatch = bodyField && bodyMatcher(bodyField);
  const matchBody = (look: Look, raw: Uint8Array): BodyMatches => (bodyMatch ? bodyMatch(raw, look.bodyOffset) : NO_BODY);

  // The text fields once more as a flat list with the header name cut out ahead of time: match() runs
  // for every message, cache hits included, and per-call slices and arrays showed in bench/early.
  const textFields = [...fields].map(([field, fm]) => ({
    field,
    cond: field.startsWith('header:') ? 'header' : field,
    header: field.startsWith('header:') ? field.slice(7) : undefined,
    fm,
  }));

  function match(look: Look, raw: Uint8Array, body: BodyMatches = matchBody(look, raw)): RuleHit[] {
    // Which conditions held, per rule, with the value that made each hold; made on the first hit,
    // since most mail holds none.
    let held: Map<number, Map<string, string>> | undefined;
    const mark = (rule: number, cond: string, value: string) => {
      held ??= new Map();
      let m = held.get(rule);
      if (!m) held.set(rule, (m = new Map()));
      if (!m.has(cond)) m.set(cond, value);
    };
    const tryField = (t: (typeof textFields)[number], v: string) => {
      if (!v || !anyTest(t.fm.prefilters, v)) return;
      for (const { rule, re } of t.fm.singles) {
        const hit = re.exec(v);
        if (hit) mark(rule, t.cond, `${t.field}=${hit[0].slice(0, 80)}`);
      }
    };

    for (const [rule, value] of body) mark(rule, 'body', value);
    for (const t of textFields) {
      if (t.header === undefined) tryField(t, t.field === 'subject' ? look.subject : look.from);
      else for (const v of look.headers.get(t.header) ?? []) tryField(t, v);
    }
    const senderAt = (addr: string) => {
      for (const r of senders.get(addr) ?? []) mark(r, 'sender', addr);
      const at = addr.lastIndexOf('@');
      if (at >= 0) for (const r of senders.get(addr.slice(at)) ?? []) mark(r, 'sender', addr);
    };
    if (senders.size) {
      if (look.sender) senderAt(look.sender);
      if (look.fromAddress && look.fromAddress !== look.sender) senderAt(look.fromAddress);
    }
    const domainUp = (dom: string) => {
      // example.com matches mail.example.com too: walk up the labels.
      let d = dom;
      for (;;) {
        for (const r of domains.get(d) ?? []) mark(r, 'domain', dom);
        const dot = d.indexOf('.');
        if (dot < 0) break;
        d = d.slice(dot + 1);
      }
    };
    if (domains.size) {
      if (look.senderDomain) domainUp(look.senderDomain);
      if (look.fromDomain && look.fromDomain !== look.senderDomain) domainUp(look.fromDomain);
    }
    if (look.relayIp && ips.length) {
      const ip = parseIp(look.relayIp);
      if (ip) for (const { rule, cidr } of ips) if (cidrContains(cidr, ip)) mark(rule, 'ip', look.relayIp);
    }
    for (const name of missingNames) {
      if (look.headers.has(name)) continue;
      // "missing" holds only when every header the rule lists is absent.
      for (const r of missing.get(name) ?? []) {
        if ((scored[r] as RuleSpec).match.missing?.every((h) => !look.headers.has(h))) mark(r, 'missing', `missing ${name}`);
      }
    }

    const hits: RuleHit[] = [];
    if (!held) return hits;
    for (const [i, conds] of held) {
      const r = scored[i] as RuleSpec;
      const m = r.match;
      // Header conditions are one kind: a rule with several header names needs each to hold.
      const headerNames = Object.keys(m.header ?? {});
      const headerOk =
        headerNames.length === 0 ||
        headerNames.every((n) => {
          const fm = fields.get(`header:${n}`) as FieldMatcher;
          const vals = look.headers.get(n) ?? [];
          return fm.singles.some((s) => s.rule === i && vals.some((v) => s.re.test(v)));
        });
      const need = (['sender', 'domain', 'ip', 'subject', 'body', 'from', 'missing'] as const).filter((k) => m[k] !== undefined);
      if (!headerOk || !need.every((k) => conds.has(k))) continue;
      hits.push({
        symbol: r.symbol,
        score: r.score,
        description: r.description,
        group: r.group,
        priority: r.priority,
        action: r.action,
        options: [...conds.values()],
      });
    }
    return hits;
  }

  return { rules: scored, files: [...new Set(rules.map((r) => r.file))], matchBody, match, body };
}

/**
 * The body condition of a rule set from its plain BodyRules, as a classifier worker builds it: which
 * body rules hold for the first limits.earlyBodyScanBytes of the body.
 */
export function compileBodyRules(rules: BodyRules): (raw: Uint8Array, bodyOffset: number) => BodyMatches {
  return bodyMatcher(buildField(rules.patterns));
}

/** Reads the body as latin1, so a pattern sees the raw bytes of any charset. */
function bodyMatcher(compiled: FieldMatcher): (raw: Uint8Array, bodyOffset: number) => BodyMatches {
  return (raw, bodyOffset) => {
    if (bodyOffset >= raw.length) return NO_BODY;
    const end = Math.min(raw.length, bodyOffset + limits.earlyBodyScanBytes);
    const text = latin1.decode(raw.subarray(bodyOffset, end));
    if (!anyTest(compiled.prefilters, text)) return NO_BODY;
    const out = new Map<number, string>();
    for (const { rule, re } of compiled.singles) {
      if (out.has(rule)) continue;
      const hit = re.exec(text);
      if (hit) out.set(rule, `body=${hit[0].slice(0, 80)}`);
    }
    return out;
  };
}
