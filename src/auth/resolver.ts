// DNS for the authentication checks: every answer goes through the domain cache, every lookup has its
// own timeout, and each message gets a budget that ends its lookups — a slow or dead DNS server turns
// into `temperror` results instead of a held answer.
import { Resolver } from 'node:dns/promises';
import type { LevelCache } from '../core/cache.ts';

/** The shape mailauth expects: dns.promises.resolve(name, rrtype). */
export type ResolveFn = (name: string, rrtype: string) => Promise<unknown>;

/** What the domain cache keeps: the answer, or the "no such name/data" code (negative caching). */
type CachedAnswer = { answer: unknown } | { code: 'ENOTFOUND' | 'ENODATA' };

export interface DnsStats {
  /** Lookups that went to the wire. */
  queries: number;
  /** Lookups answered from the domain cache. */
  cached: number;
  /** Lookups ended by the per-lookup timeout or the message budget. */
  timedOut: number;
}

export interface DnsOptions {
  /** The wire: a real resolver in production, a test zone's server in tests. */
  resolve: ResolveFn;
  lookupTimeoutMs: number;
  /** The domain cache level; answers are kept by name and type. */
  cache?: () => LevelCache<{}> | undefined;
  /** Monotonic ms, the same clock as the scan deadline. */
  now: () => number;
}

export interface Dns {
  /** A resolver for one message whose lookups all end by `until` (monotonic ms). */
  forMessage(until: number): ResolveFn;
  readonly stats: DnsStats;
}

/** A resolver on the given servers ("ip" or "ip:port"; empty = the system's), one try per lookup. */
export function wireResolver(servers: readonly string[], lookupTimeoutMs: number): ResolveFn {
  const r = new Resolver({ timeout: lookupTimeoutMs, tries: 1 });
  if (servers.length > 0) r.setServers(servers as string[]);
  return (name, rrtype) => r.resolve(name, rrtype);
}

export function dnsError(code: string, name: string, rrtype: string, message = `${rrtype} ${name}: ${code}`): Error {
  return Object.assign(new Error(message), { code, hostname: name });
}

function isNegative(code: unknown): code is 'ENOTFOUND' | 'ENODATA' {
  return code === 'ENOTFOUND' || code === 'ENODATA';
}

/**
 * Codes that say the name itself is unusable (a From of "a@b.example>" gives "_dmarc.b.example>"). Such a
 * name cannot exist, so it answers "no such name" — otherwise mailauth reports temperror and the message
 * is re-checked on every scan.
 */
const MALFORMED_NAME = new Set(['EBADNAME', 'EBADQUERY', 'EBADSTR']);

/** Rejects with ETIMEOUT after `ms` unless `p` settles first; the timer never outlives the race. */
function within<T>(p: Promise<T>, ms: number, name: string, rrtype: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(dnsError('ETIMEOUT', name, rrtype, `${rrtype} ${name}: no answer within ${Math.round(ms)} ms`)), Math.max(0, ms));
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

export function createDns(options: DnsOptions): Dns {
  const stats: DnsStats = { queries: 0, cached: 0, timedOut: 0 };
  // Lookups in flight, shared: concurrent messages from one sender ask once.
  const inflight = new Map<string, Promise<unknown>>();

  const wire = (key: string, name: string, rrtype: string): Promise<unknown> => {
    let p = inflight.get(key);
    if (p) return p;
    stats.queries++;
    let started: Promise<unknown>;
    try {
      started = Promise.resolve(options.resolve(name, rrtype));
    } catch (e) {
      started = Promise.reject(e);
    }
    // Bounded on its own so a resolver that never answers cannot pin the in-flight entry.
    p = within(started, options.lookupTimeoutMs, name, rrtype).then(
      (answer) => {
        inflight.delete(key);
        options.cache?.()?.set(key, { answer } satisfies CachedAnswer);
        return answer;
      },
      (err: unknown) => {
        inflight.delete(key);
        const code = (err as { code?: unknown }).code;
        if (MALFORMED_NAME.has(code as string)) {
          options.cache?.()?.set(key, { code: 'ENOTFOUND' } satisfies CachedAnswer);
          throw dnsError('ENOTFOUND', name, rrtype, `${rrtype} ${name}: not a valid DNS name`);
        }
        if (isNegative(code)) options.cache?.()?.set(key, { code } satisfies CachedAnswer);
        throw err;
      },
    );
    inflight.set(key, p);
    return p;
  };

  return {
    stats,
    forMessage(until) {
      return async (name, rrtype) => {
        const key = `${rrtype.toUpperCase()} ${name.toLowerCase().replace(/\.$/, '')}`;
        const hit = options.cache?.()?.get(key) as CachedAnswer | undefined;
        if (hit) {
          stats.cached++;
          if ('code' in hit) throw dnsError(hit.code, name, rrtype);
          return hit.answer;
        }
        const left = until - options.now();
        if (left <= 0) {
          stats.timedOut++;
          throw dnsError('ETIMEOUT', name, rrtype, `${rrtype} ${name}: the DNS budget of this message is spent`);
        }
        try {
          return await within(wire(key, name, rrtype), Math.min(left, options.lookupTimeoutMs), name, rrtype);
        } catch (e) {
          if ((e as { code?: unknown }).code === 'ETIMEOUT') {
            stats.timedOut++;
          }
          throw e;
        }
      };
    },
  };
}
