// The auth stage: SPF, DKIM, DMARC and ARC (mailauth) plus the relay's country/ASN, beside the
// classifier. It never holds an answer: DNS has a per-lookup timeout and a budget per message, and
// whatever has not finished when the budget (or the scan deadline) ends is reported as temperror.
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { arc, dkimVerify, dmarc, spf } from 'mailauth';
import type { ARCData, ARCResult, DKIMVerifyResult, DMARCResult, DNSResolver, SPFResult } from 'mailauth';
import { type Caches, createCaches } from '../core/cache.ts';
import type { Config } from '../core/config.ts';
import type { Look } from '../core/look.ts';
import type { AuthStage } from '../core/scan.ts';
import type { SymbolHit } from '../core/verdict.ts';
import { type Geo, type GeoFacts, openGeo } from './geo.ts';
import { createDns, type Dns, type ResolveFn, wireResolver } from './resolver.ts';

export interface AuthStageOptions {
  /** The DNS wire; default: config.auth.dnsServers (or the system's resolvers). */
  resolve?: ResolveFn;
  /** The pipeline's caches (auth, domain, geo levels); the stage keeps its own when absent. */
  caches?: () => Caches | undefined;
  /** Relay country/ASN; null turns geo off; default: opened from config.auth. */
  geo?: Geo | null;
  /** Monotonic ms on the same clock as the scan deadline. */
  now?: () => number;
}

export interface AuthCheck {
  symbols: SymbolHit[];
  country?: string;
  /** Value of the Authentication-Results header (folded with CRLF + space between results). */
  authResults?: string;
}

export interface AuthStats {
  /** Whole-message results (a re-scan of the same bytes from the same relay). */
  messages: { hits: number; misses: number };
  /** SPF results by relay, HELO and envelope sender (repeat senders). */
  spf: { hits: number; misses: number };
}

export interface NodeAuthStage extends AuthStage {
  check(raw: Uint8Array, look: Look, deadline: number): Promise<AuthCheck>;
  readonly dns: Dns;
  /** What the auth cache level served, by kind (the level's own counters mix both). */
  readonly stats: AuthStats;
}

/** What one message's checks concluded, as kept in the auth cache. */
interface AuthOutcome {
  symbols: SymbolHit[];
  authResults: string;
  /** A part ended in temperror: not cached, the next try may do better. */
  temporary: boolean;
}

type Settled<T> = { ok: true; value: T } | { ok: false; timedOut: boolean; error: string };

const DESCRIPTIONS: Record<string, string> = {
  R_SPF_ALLOW: 'SPF allows the relay to send for the envelope sender',
  R_SPF_FAIL: 'SPF says the relay may not send for the envelope sender',
  R_SPF_SOFTFAIL: 'SPF soft-fails the relay (~all)',
  R_SPF_NEUTRAL: 'SPF is neutral about the relay (?all)',
  R_SPF_NA: 'the envelope sender has no SPF record',
  R_SPF_PERMFAIL: 'the SPF record is broken',
  R_SPF_TEMPFAIL: 'SPF could not be checked now (DNS slow or failing)',
  R_DKIM_ALLOW: 'a DKIM signature verifies',
  R_DKIM_REJECT: 'a DKIM signature does not verify',
  R_DKIM_NA: 'the message is not DKIM-signed',
  R_DKIM_PERMFAIL: 'a DKIM signature or key is unusable',
  R_DKIM_TEMPFAIL: 'DKIM could not be checked now (DNS slow or failing)',
  DMARC_POLICY_ALLOW: 'DMARC passes (aligned SPF or DKIM)',
  DMARC_POLICY_REJECT: 'DMARC fails and the domain asks to reject',
  DMARC_POLICY_QUARANTINE: 'DMARC fails and the domain asks to quarantine',
  DMARC_POLICY_SOFTFAIL: 'DMARC fails; the domain asks for no action (p=none)',
  DMARC_NA: 'the From domain publishes no DMARC policy',
  DMARC_PERMFAIL: 'the DMARC record is broken',
  DMARC_TEMPFAIL: 'DMARC could not be checked now (DNS slow or failing)',
  ARC_ALLOW: 'the ARC chain verifies',
  ARC_REJECT: 'the ARC chain does not verify',
  ARC_NA: 'no ARC chain',
  ARC_TEMPFAIL: 'ARC could not be checked now (DNS slow or failing)',
};

const SPF_SYMBOL: Record<string, string> = {
  pass: 'R_SPF_ALLOW',
  fail: 'R_SPF_FAIL',
  softfail: 'R_SPF_SOFTFAIL',
  neutral: 'R_SPF_NEUTRAL',
  none: 'R_SPF_NA',
  permerror: 'R_SPF_PERMFAIL',
  temperror: 'R_SPF_TEMPFAIL',
};

const DKIM_SYMBOL: Record<string, string> = {
  pass: 'R_DKIM_ALLOW',
  fail: 'R_DKIM_REJECT',
  none: 'R_DKIM_NA',
  neutral: 'R_DKIM_PERMFAIL',
  policy: 'R_DKIM_PERMFAIL',
  permerror: 'R_DKIM_PERMFAIL',
  temperror: 'R_DKIM_TEMPFAIL',
};

const ARC_SYMBOL: Record<string, string> = { pass: 'ARC_ALLOW', fail: 'ARC_REJECT', none: 'ARC_NA', temperror: 'ARC_TEMPFAIL' };

function dmarcSymbol(r: DMARCResult): string {
  switch (r.status.result) {
    case 'pass':
      return 'DMARC_POLICY_ALLOW';
    case 'fail':
      return r.policy === 'reject' ? 'DMARC_POLICY_REJECT' : r.policy === 'quarantine' ? 'DMARC_POLICY_QUARANTINE' : 'DMARC_POLICY_SOFTFAIL';
    case 'none':
      return 'DMARC_NA';
    case 'temperror':
      return 'DMARC_TEMPFAIL';
    default:
      return 'DMARC_PERMFAIL';
  }
}

function isTemp(result: string | undefined): boolean {
  return result === 'temperror' || result === 'temperr';
}

const ARC_NONE: ARCResult = { status: { result: 'none' }, i: 0 };

/** What mailauth's dkimVerify says of a message without signatures, from the quick look. */
function unsigned(look: Look): DKIMVerifyResult {
  return {
    headerFrom: look.fromAddress ? [look.fromAddress] : [],
    envelopeFrom: look.envelopeFrom || false,
    results: [{ signingDomain: '', status: { result: 'none', comment: 'message not signed' }, info: 'dkim=none (message not signed)' }],
  };
}

/** Waits for `p` until `cutoff`; a part still running then counts as timed out. */
async function settle<T>(p: Promise<T>, cutoff: Promise<'cutoff'>): Promise<Settled<T>> {
  try {
    const v = await Promise.race([p.then((value) => ({ value })), cutoff]);
    if (v === 'cutoff') return { ok: false, timedOut: true, error: 'the DNS budget ran out' };
    return { ok: true, value: v.value };
  } catch (e) {
    return { ok: false, timedOut: false, error: e instanceof Error ? e.message : String(e) };
  }
}

export function createAuthStage(config: Config, options: AuthStageOptions = {}): NodeAuthStage {
  const cfg = config.auth;
  const now = options.now ?? (() => performance.now());
  let own: Caches | undefined;
  const caches = (): Caches => options.caches?.() ?? (own ??= createCaches(config.cache));
  const dns = createDns({
    resolve: options.resolve ?? wireResolver(cfg.dnsServers, cfg.lookupTimeoutMs),
    lookupTimeoutMs: cfg.lookupTimeoutMs,
    cache: () => caches().domain,
    now,
  });
  const geo = options.geo === undefined ? (cfg.geo ? openGeo({ countryDb: cfg.countryDb, asnDb: cfg.asnDb, cache: () => caches().geo }) : null) : options.geo;
  const authservId = cfg.authservId ?? hostname();
  const stats: AuthStats = { messages: { hits: 0, misses: 0 }, spf: { hits: 0, misses: 0 } };
  const scoreCountries = new Map(Object.entries(cfg.scoreCountries).map(([k, v]) => [k.toUpperCase(), v]));
  const scoreAsns = new Map(Object.entries(cfg.scoreAsns).map(([k, v]) => [Number(k.replace(/^AS/i, '')), v]));

  const symbol = (name: string, options?: string[], base?: number): SymbolHit => ({
    name,
    score: config.scores[name] ?? base ?? cfg.scores[name] ?? 0,
    description: DESCRIPTIONS[name],
    ...(options && options.length > 0 ? { options } : {}),
  });

  const geoSymbols = (f: GeoFacts): SymbolHit[] => {
    const out: SymbolHit[] = [];
    if (f.country) {
      const s = symbol(`RELAY_COUNTRY_${f.country}`, [f.country], scoreCountries.get(f.country) ?? 0);
      out.push({ ...s, description: `the relay IP is in ${f.country}` });
    }
    if (f.asn !== undefined) {
      const s = symbol(`RELAY_ASN_${f.asn}`, [`AS${f.asn}`, ...(f.org ? [f.org] : [])], scoreAsns.get(f.asn) ?? 0);
      out.push({ ...s, description: `the relay IP is announced by AS${f.asn}` });
    }
    return out;
  };

  /** SPF depends on relay, HELO and envelope sender only, so repeat senders share one answer. */
  const checkSpf = async (look: Look, resolver: DNSResolver): Promise<SPFResult | null> => {
    if (!look.relayIp) return null;
    const helo = look.helo || `[${look.relayIp}]`;
    const key = `spf ${look.relayIp} ${helo.toLowerCase()} ${look.envelopeFrom}`;
    const hit = caches().auth.get(key) as SPFResult | undefined;
    if (hit) {
      stats.spf.hits++;
      return hit;
    }
    stats.spf.misses++;
    const r = await spf({ ip: look.relayIp, helo, sender: look.envelopeFrom, mta: authservId, resolver });
    if (!isTemp(r.status.result)) caches().auth.set(key, r);
    return r;
  };

  const run = async (raw: Uint8Array, look: Look, until: number): Promise<AuthOutcome> => {
    // mailauth's type says string arrays; the answers are whatever dns.resolve gives (MX objects too).
    const resolver = dns.forMessage(until) as DNSResolver;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const cutoff = new Promise<'cutoff'>((resolve) => {
      timer = setTimeout(() => resolve('cutoff'), Math.max(0, until - now()));
    });
    // mailauth's parse costs about a millisecond even for unsigned mail; without DKIM or ARC headers
    // its answer is known ("none"), so only signed mail pays for it.
    const signed = look.headers.has('dkim-signature') || look.headers.has('arc-seal') || look.headers.has('arc-message-signature');
    const dkimP = signed
      ? dkimVerify(Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength), { resolver, sender: look.envelopeFrom || undefined, minBitLength: cfg.minKeyBits })
      : Promise.resolve(unsigned(look));
    const spfP = checkSpf(look, resolver);
    const arcP = dkimP.then((d) => (signed && d.arc ? arc(d.arc as ARCData, { resolver, minBitLength: cfg.minKeyBits }) : ARC_NONE));
    const dmarcP = Promise.all([dkimP, spfP, arcP]).then(([d, s, a]) =>
      d.headerFrom?.length
        ? dmarc({
            headerFrom: d.headerFrom,
            spfDomains: s && s.status.result === 'pass' && s.domain ? [s.domain] : [],
            dkimDomains: d.results
              .filter((r) => r.status.result === 'pass')
              .map((r) => ({ id: r.id, domain: r.signingDomain, aligned: r.status.aligned, underSized: r.status.underSized })),
            arcResult: a ?? undefined,
            resolver,
          })
        : false,
    );
    const [d, s, a, m] = await Promise.all([settle(dkimP, cutoff), settle(spfP, cutoff), settle(arcP, cutoff), settle(dmarcP, cutoff)]);
    clearTimeout(timer);
    return describe(look, d, s, a, m);
  };

  const describe = (
    look: Look,
    d: Settled<DKIMVerifyResult>,
    s: Settled<SPFResult | null>,
    a: Settled<ARCResult | null>,
    m: Settled<DMARCResult | false>,
  ): AuthOutcome => {
    const symbols: SymbolHit[] = [];
    const parts: string[] = [];
    let temporary = false;
    const failed = (r: { ok: false; timedOut: boolean; error: string }, temp: string, perm: string, info: string) => {
      temporary ||= r.timedOut;
      symbols.push(symbol(r.timedOut ? temp : perm, [r.error]));
      parts.push(`${info}=${r.timedOut ? 'temperror' : 'permerror'} (${r.error.replace(/[()\r\n]/g, ' ')})`);
    };

    if (d.ok) {
      const seen = new Map<string, string[]>();
      for (const r of d.value.results) {
        // mailauth says "neutral" for a body that no longer matches its signature: that is a failed signature.
        const bodyChanged = r.status.result === 'neutral' && /body hash/i.test(r.status.comment ?? '');
        const name = bodyChanged ? 'R_DKIM_REJECT' : (DKIM_SYMBOL[r.status.result] ?? 'R_DKIM_PERMFAIL');
        temporary ||= isTemp(r.status.result);
        const list = seen.get(name) ?? [];
        if (r.signingDomain) list.push(r.signingDomain);
        seen.set(name, list);
        if (r.info) parts.push(r.info);
      }
      for (const [name, domains] of seen) symbols.push(symbol(name, domains));
    } else failed(d, 'R_DKIM_TEMPFAIL', 'R_DKIM_PERMFAIL', 'dkim');

    if (s.ok) {
      if (s.value) {
        temporary ||= isTemp(s.value.status.result);
        symbols.push(symbol(SPF_SYMBOL[s.value.status.result] ?? 'R_SPF_PERMFAIL', [s.value.domain, look.relayIp].filter(Boolean)));
        if (s.value.info) parts.push(s.value.info);
      }
    } else failed(s, 'R_SPF_TEMPFAIL', 'R_SPF_PERMFAIL', 'spf');

    if (a.ok) {
      if (a.value) {
        temporary ||= isTemp(a.value.status.result);
        symbols.push(symbol(ARC_SYMBOL[a.value.status.result] ?? 'ARC_REJECT'));
        if (a.value.info) parts.push(a.value.info);
      }
    } else failed(a, 'ARC_TEMPFAIL', 'ARC_REJECT', 'arc');

    if (m.ok) {
      if (m.value) {
        temporary ||= isTemp(m.value.status.result);
        symbols.push(symbol(dmarcSymbol(m.value), [m.value.domain, ...(m.value.policy ? [`p=${m.value.policy}`] : [])]));
        if (m.value.info) parts.push(m.value.info);
      }
    } else failed(m, 'DMARC_TEMPFAIL', 'DMARC_PERMFAIL', 'dmarc');

    const authResults = parts.length > 0 ? `${authservId};\r\n ${parts.join(';\r\n ')}` : `${authservId}; none`;
    return { symbols, authResults, temporary };
  };

  return {
    dns,
    stats,
    async check(raw, look, deadline) {
      if (!cfg.enabled) return { symbols: [] };
      const facts = geo && look.relayIp ? geo.lookup(look.relayIp) : {};
      const geoHits = geoSymbols(facts);
      // The whole result depends on these bytes and the SMTP facts, nothing else (DNS aside).
      const key = createHash('sha256')
        .update(`${look.relayIp}\0${look.helo}\0${look.envelopeFrom}\0`)
        .update(raw)
        .digest('base64');
      let outcome = caches().auth.get(key) as AuthOutcome | undefined;
      if (outcome) stats.messages.hits++;
      else {
        stats.messages.misses++;
        outcome = await run(raw, look, Math.min(deadline, now() + cfg.budgetMs));
        if (!outcome.temporary) caches().auth.set(key, outcome);
      }
      return { symbols: [...geoHits, ...outcome.symbols], country: facts.country, authResults: outcome.authResults };
    },
  };
}
