// Relay country from the shipped DB-IP Lite data package, on addresses whose location is well known,
// and the geo symbols the auth stage derives from it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openGeo } from '../../src/auth/geo.ts';
import { createAuthStage } from '../../src/auth/stage.ts';
import { createCaches } from '../../src/core/cache.ts';
import { defaultConfig, resolveConfig } from '../../src/core/config.ts';
import { quickLook } from '../../src/core/look.ts';
import { isFilterError } from '../../src/core/errors.ts';
import { writeMmdb } from './mmdb-writer.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'atlas-geo-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const asnDb = path.join(dir, 'asn.mmdb');
writeFileSync(
  asnDb,
  writeMmdb(
    {
      '192.0.2.0/24': { autonomous_system_number: 64496, autonomous_system_organization: 'Example Transit' },
      '198.51.100.0/25': { autonomous_system_number: 64511, autonomous_system_organization: 'Example Hosting' },
    },
    'GeoLite2-ASN',
  ),
);
const countryDb = path.join(dir, 'country.mmdb');
writeFileSync(countryDb, writeMmdb({ '192.0.2.0/24': { country: { iso_code: 'de' } } }, 'GeoLite2-Country'));

describe('geo from the shipped MMDB', () => {
  const geo = openGeo();

  it('knows the country of well-known addresses', () => {
    expect(geo.lookup('193.0.6.139').country).toBe('NL'); // RIPE NCC, Amsterdam
    expect(geo.lookup('8.8.8.8').country).toBe('US'); // Google public DNS
    expect(geo.lookup('202.12.29.175').country).toBe('AU'); // APNIC, Brisbane
    expect(geo.lookup('81.2.69.160').country).toBe('GB');
  });

  it('has nothing for private, loopback and malformed addresses', () => {
    expect(geo.lookup('10.1.2.3')).toEqual({});
    expect(geo.lookup('127.0.0.1')).toEqual({});
    expect(geo.lookup('not an ip')).toEqual({});
  });

  it('keeps answers in the geo cache', () => {
    const caches = createCaches(defaultConfig().cache);
    const cached = openGeo({ cache: () => caches.geo });
    cached.lookup('193.0.6.139');
    cached.lookup('193.0.6.139');
    expect(caches.geo.misses).toBe(1);
    expect(caches.geo.hits).toBe(1);
  });

  it('names the file and option when a database cannot be read', () => {
    try {
      openGeo({ countryDb: '/nonexistent/country.mmdb' });
      expect.unreachable();
    } catch (e) {
      expect(isFilterError(e) && e.code).toBe('ECONFIG');
      expect((e as Error).message).toContain('/nonexistent/country.mmdb');
    }
  });
});

describe('geo from configured MMDB files', () => {
  it('reads AS numbers from a GeoLite2-ASN layout and countries from the MaxMind layout', () => {
    const geo = openGeo({ countryDb, asnDb });
    expect(geo.lookup('192.0.2.77')).toEqual({ country: 'DE', asn: 64496, org: 'Example Transit' });
    expect(geo.lookup('198.51.100.1')).toEqual({ asn: 64511, org: 'Example Hosting' });
    expect(geo.lookup('198.51.100.200')).toEqual({});
  });

  it('adds RELAY_ASN_N with the score from auth.scoreAsns', async () => {
    const config = resolveConfig({ auth: { asnDb, scoreAsns: { AS64496: 3 } } });
    const stage = createAuthStage(config, {
      resolve: async (name) => {
        throw Object.assign(new Error(`unexpected DNS lookup of ${name}`), { code: 'EREFUSED' });
      },
    });
    const raw = new TextEncoder().encode('From: a@example.com\r\nSubject: hi\r\n\r\nhi\r\n');
    const r = await stage.check(raw, quickLook(raw, { ip: '192.0.2.8', from: 'a@example.com' }), performance.now() + 2_000);
    expect(r.symbols.find((s) => s.name === 'RELAY_ASN_64496')).toMatchObject({ score: 3, options: ['AS64496', 'Example Transit'] });
    const other = await stage.check(raw, quickLook(raw, { ip: '198.51.100.9', from: 'a@example.com' }), performance.now() + 2_000);
    expect(other.symbols.find((s) => s.name === 'RELAY_ASN_64511')?.score).toBe(0);
  });
});

describe('geo symbols', () => {
  it('adds RELAY_COUNTRY_XX with the score from auth.scoreCountries', async () => {
    const config = resolveConfig({ auth: { enabled: true, scoreCountries: { nl: 1.5 } } });
    // No DNS in this test: the resolver fails loudly, so only geo facts and "none"/temperror results remain.
    const stage = createAuthStage(config, {
      resolve: async (name) => {
        throw Object.assign(new Error(`unexpected DNS lookup of ${name}`), { code: 'EREFUSED' });
      },
    });
    const raw = new TextEncoder().encode('From: a@example.com\r\nSubject: hi\r\n\r\nhi\r\n');
    const r = await stage.check(raw, quickLook(raw, { ip: '193.0.6.139', from: 'a@example.com' }), performance.now() + 2_000);
    expect(r.country).toBe('NL');
    expect(r.symbols.find((s) => s.name === 'RELAY_COUNTRY_NL')).toMatchObject({ score: 1.5, options: ['NL'] });
    const us = await stage.check(raw, quickLook(raw, { ip: '8.8.8.8', from: 'a@example.com' }), performance.now() + 2_000);
    expect(us.symbols.find((s) => s.name === 'RELAY_COUNTRY_US')?.score).toBe(0);
  });

  it('rejects country and ASN score keys that are not codes', () => {
    expect(() => resolveConfig({ auth: { scoreCountries: { Netherlands: 1 } } })).toThrow(/auth\.scoreCountries\.Netherlands/);
    expect(() => resolveConfig({ auth: { scoreAsns: { google: 1 } } })).toThrow(/auth\.scoreAsns\.google/);
    expect(() => resolveConfig({ auth: { scores: { R_SPF_FIAL: 1 } } })).toThrow(/auth\.scores\.R_SPF_FIAL/);
    expect(resolveConfig({ auth: { scoreAsns: { AS64496: 2, '64511': 1 } } }).auth.scoreAsns).toEqual({ AS64496: 2, '64511': 1 });
  });
});
