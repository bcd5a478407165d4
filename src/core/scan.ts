// The pipeline every door calls: quick look → early exit → cache → classify → decide.
// Runtime-neutral: the classifier (a worker pool on Node, in-process on the edge), the auth stage,
// the clock and the verdict sink are passed in through ScanEnv.
import type { Caches } from './cache.ts';
import type { Config } from './config.ts';
import { decide } from './decide.ts';
import { FilterError, toFilterError } from './errors.ts';
import { type Envelope, type Look, quickLook } from './look.ts';
import { type Cidr, parseCidr } from './net.ts';
import { type BodyMatches, type BodyRules, NO_BODY, type RuleHit, type RuleSet } from './rules/load.ts';
import { roundScore, type Stage, type SymbolHit, type Verdict } from './verdict.ts';

export interface ScanInput {
  /** The raw RFC 822 message. The scan never mutates or detaches it. */
  raw: Uint8Array;
  envelope?: Envelope;
  /** Skips the verdict cache (used by eval and learn, which must see the classifier itself). */
  noCache?: boolean;
}

/** What the classification stage knows about the message besides its bytes. */
export interface ClassifyRequest {
  raw: Uint8Array;
  look: Pick<Look, 'sender' | 'senderDomain' | 'fromDomain' | 'relayIp' | 'subject' | 'messageId'>;
  /** Absolute deadline on the env clock. */
  deadline: number;
  /** Only to a classifier with `matchesBody`: the body rules to match beside the classification. */
  body?: { rules: BodyRules; offset: number };
}

export interface ClassifyResult {
  symbols: SymbolHit[];
  /** Which body rules hold, when the request asked. */
  body?: BodyMatches;
}

export interface Classifier {
  classify(req: ClassifyRequest): Promise<ClassifyResult>;
  /**
   * It can match the body rules too (ClassifyRequest.body). The worker pool can, which takes the body
   * scan off the main thread on a cache miss; the verdict is the same either way.
   */
  readonly matchesBody?: boolean;
}

/** Checks that need network I/O (SPF/DKIM/DMARC, geo); they run beside the classifier, never cached by content. */
export interface AuthStage {
  check(raw: Uint8Array, look: Look, deadline: number): Promise<{ symbols: SymbolHit[]; country?: string; authResults?: string }>;
}

export interface ScanEnv {
  config: Config;
  /** The current rule set; a function so hot reloads swap it atomically between messages. */
  rules: () => RuleSet;
  caches: Caches;
  classifier?: Classifier;
  auth?: AuthStage;
  /** Monotonic milliseconds (performance.now on Node and Deno). */
  now: () => number;
  /** Called with every verdict (metrics, verdict log). Must not throw or block. */
  onVerdict?: (verdict: Verdict, look: Look | null) => void;
}

/**
 * What the verdict cache keeps per content key: the body-rule matches (valid for the rule set that made
 * them) and the classifier's symbols. Not the verdict itself, so thresholds, header rules and auth still
 * apply on a hit.
 */
interface CachedClassification {
  rules: RuleSet;
  body: BodyMatches;
  symbols?: SymbolHit[];
}

const trustedCache = new WeakMap<readonly string[], Cidr[]>();
function trustedOf(config: Config): Cidr[] {
  let c = trustedCache.get(config.trustedRelays);
  if (!c) {
    c = config.trustedRelays.map((t) => parseCidr(t)).filter((x): x is Cidr => x !== null);
    trustedCache.set(config.trustedRelays, c);
  }
  return c;
}

function hitToSymbol(h: RuleHit): SymbolHit {
  return { name: h.symbol, score: h.score, description: h.description, options: h.options };
}

/** Picks the rule that ends the scan: highest priority, then the strongest score in its direction. */
function endingHit(hits: RuleHit[]): RuleHit | undefined {
  let best: RuleHit | undefined;
  for (const h of hits) {
    if (!h.action) continue;
    if (!best || h.priority > best.priority || (h.priority === best.priority && Math.abs(h.score) > Math.abs(best.score))) best = h;
  }
  return best;
}

export async function scan(input: ScanInput, env: ScanEnv): Promise<Verdict> {
  const t0 = env.now();
  const { config } = env;
  if (input.raw.length === 0) throw new FilterError('EMALFORMED', 'the message is empty');
  if (input.raw.length > config.maxMessageBytes) {
    throw new FilterError('ETOOLARGE', `the message is ${input.raw.length} bytes, over the limit of ${config.maxMessageBytes}`, {
      limit: config.maxMessageBytes,
    });
  }
  const stages: Partial<Record<Stage, number>> = {};
  const look = quickLook(input.raw, input.envelope, { trustedRelays: trustedOf(config) });
  const t1 = env.now();
  stages.look = t1 - t0;

  // The verdict is built field by field, not by spreading a base object into each result: object
  // spread of differently shaped objects takes V8's slow generic path, and it was a tenth of a
  // cache hit's time (bench/early).
  const finish = (v: VerdictResult): Verdict => {
    const verdict = {
      required: config.thresholds.required,
      messageId: look.messageId,
      queueId: look.queueId,
      sender: look.sender,
      recipients: look.recipients,
      subject: look.subject,
      relayIp: look.relayIp,
      action: v.action,
      score: v.score,
      spam: v.spam,
      symbols: v.symbols,
      source: v.source,
    } as Verdict;
    // Optional fields exist on the verdict exactly when the path that ends the scan sets them (as with
    // the spread before), and elapsedMs and stages still come last; doors print publicVerdict's order.
    if ('reason' in v) verdict.reason = v.reason;
    if ('errorCode' in v) verdict.errorCode = v.errorCode;
    if ('country' in v) verdict.country = v.country;
    if ('authResults' in v) verdict.authResults = v.authResults;
    verdict.elapsedMs = roundMs(env.now() - t0);
    verdict.stages = stages;
    env.onVerdict?.(verdict, look);
    return verdict;
  };

  // The cache comes before the body patterns: the body-rule matches are cached with the classifier's
  // answer, so a hit never rescans the body. Header and list rules run on every message (their inputs
  // — relay IP, envelope, Received — are not part of the content key).
  const rules = env.rules();
  const useCache = !input.noCache;
  const cached = useCache ? (env.caches.verdict.get(look.contentKey) as CachedClassification | undefined) : undefined;
  const t2 = env.now();
  stages.cache = t2 - t1;
  let body = cached && cached.rules === rules ? cached.body : undefined;
  // On a miss with a classifier that can do both, the body rules run in its worker beside the
  // classification. The rules are first matched without the body: when none of them ends the scan,
  // the body matches only change the outcome once the worker answers (below). When one does, a body
  // rule might outrank it, so the body is matched here, as without a worker.
  let deferBody = !cached && rules.body !== undefined && env.classifier?.matchesBody === true;
  let earlySymbols: SymbolHit[] = [];
  /** Matches the rules now that the body matches are known; returns the rule that ends the scan, if any. */
  const ruling = (matched: BodyMatches): RuleHit | undefined => {
    body = matched;
    deferBody = false;
    const hits = rules.match(look, input.raw, matched);
    earlySymbols = hits.map(hitToSymbol);
    return endingHit(hits);
  };
  const endEarly = (ending: RuleHit): Verdict => {
    if (useCache && !cached) env.caches.verdict.set(look.contentKey, { rules, body: body as BodyMatches });
    const score = roundScore(earlySymbols.reduce((a, s) => a + s.score, 0));
    return finish({
      action: ending.action as Verdict['action'],
      score,
      spam: ending.action === 'reject' || ending.action === 'quarantine' || ending.action === 'tag' || score >= config.thresholds.required,
      symbols: earlySymbols,
      source: 'early',
      reason: `${ending.symbol}: ${ending.description}`,
    });
  };
  if (deferBody) {
    const hits = rules.match(look, input.raw, NO_BODY);
    earlySymbols = hits.map(hitToSymbol);
    if (endingHit(hits)) deferBody = false;
  }
  const ending = deferBody ? undefined : ruling(body ?? rules.matchBody(look, input.raw));
  const t3 = env.now();
  stages.early = t3 - t2;
  if (ending) return endEarly(ending);

  let symbols: SymbolHit[] = [];
  let country: string | undefined;
  let authResults: string | undefined;
  let source: Verdict['source'] = 'classifier';
  const deadline = t0 + config.pool.taskTimeoutMs;
  try {
    const authP = env.auth ? env.auth.check(input.raw, look, deadline) : undefined;
    // If classification fails first, the scan returns without awaiting authP: mark it handled now, so a
    // late rejection cannot become an unhandled rejection (which ends a Node process). Awaiting it below
    // still sees the error.
    authP?.catch(() => {});
    if (cached?.symbols) {
      symbols = cached.symbols;
      source = 'cache';
    } else if (env.classifier) {
      const req: ClassifyRequest = { raw: input.raw, look, deadline };
      if (deferBody) req.body = { rules: rules.body as BodyRules, offset: look.bodyOffset };
      const r = await env.classifier.classify(req);
      symbols = r.symbols;
      if (deferBody) {
        const late = ruling(r.body ?? NO_BODY);
        // A body rule ends the scan, as it would have before the classifier without a worker.
        if (late) {
          stages.classify = env.now() - t3;
          return endEarly(late);
        }
      }
      if (useCache) env.caches.verdict.set(look.contentKey, { rules, body: body as BodyMatches, symbols });
    } else if (useCache && !cached) {
      env.caches.verdict.set(look.contentKey, { rules, body: body as BodyMatches });
    }
    if (authP) {
      const a = await authP;
      symbols = [...symbols, ...a.symbols];
      country = a.country;
      authResults = a.authResults;
    }
  } catch (e) {
    const err = toFilterError(e);
    // The classifier failed before its worker matched the body: match it here, so that a body rule
    // still ends the scan as it would have without a worker, rather than a tempfail.
    if (deferBody) {
      const late = ruling(rules.matchBody(look, input.raw));
      if (late) {
        stages.classify = env.now() - t3;
        return endEarly(late);
      }
    }
    stages.classify = env.now() - t3;
    return finish({
      action: 'tempfail',
      score: roundScore(earlySymbols.reduce((a, s) => a + s.score, 0)),
      spam: false,
      symbols: earlySymbols,
      source: 'classifier',
      reason: err.message,
      errorCode: err.code,
    });
  }
  const t4 = env.now();
  stages.classify = t4 - t3;

  const all = [...earlySymbols, ...withScoreOverrides(symbols, config.scores)];
  const d = decide(all, config.thresholds);
  stages.decide = env.now() - t4;
  return finish({ action: d.action, score: d.score, spam: d.spam, symbols: all, source, country, authResults });
}

/** What each way out of the scan decides; finish() adds the facts every verdict carries. */
type VerdictResult = Pick<Verdict, 'action' | 'score' | 'spam' | 'symbols' | 'source' | 'reason' | 'errorCode' | 'country' | 'authResults'>;

/**
 * Config `scores:` fixes a symbol's points, as Rspamd's scores.d. Early rules and auth symbols get theirs
 * where they are built; classifier symbols (BAYES_*, content rules) come from the workers and the cache
 * as the model scored them, so the override is applied here, on every verdict.
 */
function withScoreOverrides(symbols: SymbolHit[], scores: Record<string, number>): SymbolHit[] {
  let out: SymbolHit[] | undefined;
  for (let i = 0; i < symbols.length; i++) {
    const s = symbols[i] as SymbolHit;
    const fixed = scores[s.name];
    if (fixed === undefined || fixed === s.score) continue;
    out ??= symbols.slice();
    out[i] = { ...s, score: fixed };
  }
  return out ?? symbols;
}

function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
