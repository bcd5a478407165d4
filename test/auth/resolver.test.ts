// The budgeted, cached resolver, on the real loopback DNS server and on servers that never answer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDns, wireResolver } from '../../src/auth/resolver.ts';
import { createCaches } from '../../src/core/cache.ts';
import { defaultConfig } from '../../src/core/config.ts';
import { startSilentServer, startZoneServer, type ZoneServer } from '../integration/dns-server.ts';

let zone: ZoneServer;
const now = () => performance.now();

beforeAll(async () => {
  zone = await startZoneServer({
    'a.example.com': { TXT: [['v=spf1 -all']], A: ['192.0.2.1'], MX: [{ exchange: 'mx.a.example.com', priority: 10 }] },
  });
});
afterAll(async () => {
  await zone?.close();
});

const codeOf = async (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => 'resolved',
    (e: { code?: string }) => e.code,
  );

describe('resolver', () => {
  it('answers in the shapes of dns.resolve, and caches positive and negative answers', async () => {
    const caches = createCaches(defaultConfig().cache);
    const dns = createDns({ resolve: wireResolver([zone.address], 5_000), lookupTimeoutMs: 5_000, cache: () => caches.domain, now });
    const lookup = dns.forMessage(now() + 20_000);
    expect(await lookup('a.example.com', 'TXT')).toEqual([['v=spf1 -all']]);
    expect(await lookup('a.example.com', 'A')).toEqual(['192.0.2.1']);
    expect(await lookup('a.example.com', 'MX')).toEqual([{ exchange: 'mx.a.example.com', priority: 10 }]);
    expect(await codeOf(lookup('missing.example.com', 'TXT'))).toBe('ENOTFOUND');
    const asked = zone.queries.length;
    expect(await lookup('A.example.com.', 'txt')).toEqual([['v=spf1 -all']]);
    expect(await codeOf(lookup('missing.example.com', 'TXT'))).toBe('ENOTFOUND');
    expect(zone.queries.length).toBe(asked);
    expect(dns.stats).toMatchObject({ queries: 4, cached: 2, timedOut: 0 });
    // A name that cannot exist (a From domain with a stray ">") does not exist, rather than "try later".
    expect(await codeOf(lookup('_dmarc.a.example.com>', 'TXT'))).toBe('ENOTFOUND');
    expect(await codeOf(lookup('_dmarc.a.example.com>', 'TXT'))).toBe('ENOTFOUND');
    expect(dns.stats).toMatchObject({ queries: 5, cached: 3 });
  });

  it('ends a lookup at its timeout, and every lookup once the message budget is spent', async () => {
    const silent = await startSilentServer();
    try {
      const dns = createDns({ resolve: wireResolver([silent.address], 5_000), lookupTimeoutMs: 100, now });
      // The per-lookup timeout ends a lookup well inside a long budget.
      const lookup = dns.forMessage(now() + 60_000);
      expect(await codeOf(lookup('a.example.com', 'TXT'))).toBe('ETIMEOUT');
      expect(dns.stats.queries).toBe(1);
      // A spent budget answers at once, without asking the server.
      const late = dns.forMessage(now() - 1);
      expect(await codeOf(late('b.example.com', 'TXT'))).toBe('ETIMEOUT');
      expect(dns.stats.queries).toBe(1);
      expect(dns.stats.timedOut).toBe(2);
    } finally {
      await silent.close();
    }
  });

  it('does not cache temporary failures, and shares one query between concurrent askers', async () => {
    const caches = createCaches(defaultConfig().cache);
    let calls = 0;
    let fail = true;
    const dns = createDns({
      resolve: async () => {
        calls++;
        await new Promise((r) => setTimeout(r, 20));
        if (fail) throw Object.assign(new Error('servfail'), { code: 'ESERVFAIL' });
        return [['ok']];
      },
      lookupTimeoutMs: 1_000,
      cache: () => caches.domain,
      now,
    });
    const lookup = dns.forMessage(now() + 2_000);
    const codes = await Promise.all([codeOf(lookup('x.example.com', 'TXT')), codeOf(lookup('x.example.com', 'TXT'))]);
    expect(codes).toEqual(['ESERVFAIL', 'ESERVFAIL']);
    expect(calls).toBe(1);
    fail = false;
    expect(await lookup('x.example.com', 'TXT')).toEqual([['ok']]);
    expect(calls).toBe(2);
  });
});
