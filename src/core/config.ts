// Configuration: embedded defaults → a YAML file (parsed by the caller) → environment.
// Runtime-neutral: the caller reads the file and passes the environment in as a plain record.
import { FilterError } from './errors.ts';
import { limits } from './limits.ts';

export interface CacheLevelConfig {
  max: number;
  ttlMs: number;
}

export interface Config {
  thresholds: {
    /** Score at which mail is tagged as spam (SpamAssassin's required_score). */
    required: number;
    /** Score at which mail is rejected. */
    reject: number;
    /** Score at which mail is quarantined instead of delivered; null disables quarantine. */
    quarantine: number | null;
  };
  /** Per-symbol score overrides, as Rspamd's scores.d. */
  scores: Record<string, number>;
  cache: {
    enabled: boolean;
    sizeMultiplier: number;
    verdict: CacheLevelConfig;
    domain: CacheLevelConfig;
    geo: CacheLevelConfig;
    auth: CacheLevelConfig;
  };
  /** workerNice: nice steps below the main thread for classifier workers, 0–19 (Linux; limits.workerNice). */
  pool: { workers: number; queueLength: number; taskTimeoutMs: number; workerNice: number };
  log: {
    batchSize: number;
    flushMs: number;
    queueLength: number;
    /** serve deletes verdicts older than this many days, hourly; null keeps them all. */
    retainDays: number | null;
  };
  memoryLimitMb: number;
  rulesDir: string;
  modelFile: string;
  dbFile: string;
  maxMessageBytes: number;
  /** Relay IPs/CIDRs that are our own hops, skipped when looking for the real sender IP. */
  trustedRelays: string[];
  http: { host: string; port: number; token: string | null };
  smtp: {
    listen: string | null;
    nextHop: string | null;
    maxClients: number;
    socketTimeoutMs: number;
    rewriteSubject: string | null;
    quarantineDir: string;
  };
  milter: { listen: string | null; defaultAction: 'tempfail' | 'accept' };
  spamd: { listen: string | null; allowTell: boolean };
  /** Sender authentication (SPF, DKIM, DMARC, ARC) and the relay's country/ASN. */
  auth: AuthConfig;
}

export interface AuthConfig {
  enabled: boolean;
  /** authserv-id of the Authentication-Results header; null = this host's name. */
  authservId: string | null;
  /** DNS servers ("ip" or "ip:port"); empty = the system's resolvers. */
  dnsServers: string[];
  /** Per-lookup timeout and the DNS budget of one message, ms (never past the scan deadline). */
  lookupTimeoutMs: number;
  budgetMs: number;
  /** DKIM/ARC keys shorter than this fail, as mailauth's minBitLength. */
  minKeyBits: number;
  /** Relay country/ASN lookups. */
  geo: boolean;
  /** MMDB with country_code (or country.iso_code); null = the shipped DB-IP Lite country database. */
  countryDb: string | null;
  /** MMDB with autonomous_system_number (GeoLite2-ASN layout); null = no ASN lookups. */
  asnDb: string | null;
  /** Points of each authentication symbol (the global `scores` still overrides them). */
  scores: Record<string, number>;
  /** Country code (ISO 3166-1 alpha-2) → points added as RELAY_COUNTRY_XX. */
  scoreCountries: Record<string, number>;
  /** AS number ("64496" or "AS64496") → points added as RELAY_ASN_N. */
  scoreAsns: Record<string, number>;
}

const HOUR = 3_600_000;

export function defaultConfig(cores = 2): Config {
  return {
    thresholds: { required: 5, reject: 15, quarantine: null },
    scores: {},
    cache: {
      enabled: true,
      sizeMultiplier: 1,
      // Sizes and lifetimes carried over from the original system.
      verdict: { max: 50_000, ttlMs: 2 * HOUR },
      domain: { max: 20_000, ttlMs: 24 * HOUR },
      geo: { max: 10_000, ttlMs: 7 * 24 * HOUR },
      auth: { max: 5_000, ttlMs: 1 * HOUR },
    },
    pool: { workers: Math.max(1, cores), queueLength: limits.poolQueueLength, taskTimeoutMs: limits.classifyTimeoutMs, workerNice: limits.workerNice },
    log: { batchSize: limits.logBatchSize, flushMs: limits.logFlushMs, queueLength: limits.logQueueLength, retainDays: null },
    memoryLimitMb: 512,
    rulesDir: 'rules',
    modelFile: 'models/default.model',
    dbFile: 'data/atlas.db',
    maxMessageBytes: limits.maxMessageBytes,
    trustedRelays: ['127.0.0.0/8', '::1'],
    http: { host: '127.0.0.1', port: 8025, token: null },
    smtp: {
      listen: null,
      nextHop: null,
      maxClients: 100,
      socketTimeoutMs: limits.socketTimeoutMs,
      rewriteSubject: null,
      quarantineDir: 'data/quarantine',
    },
    milter: { listen: null, defaultAction: 'tempfail' },
    spamd: { listen: null, allowTell: false },
    auth: {
      enabled: true,
      authservId: null,
      dnsServers: [],
      lookupTimeoutMs: limits.dnsLookupTimeoutMs,
      budgetMs: limits.dnsBudgetMs,
      minKeyBits: 1024,
      geo: true,
      countryDb: null,
      asnDb: null,
      // Rspamd's default weights: authentication moves a verdict a little; a DMARC reject moves it most.
      scores: {
        R_SPF_ALLOW: -0.2,
        R_SPF_FAIL: 1,
        R_SPF_SOFTFAIL: 0,
        R_SPF_NEUTRAL: 0,
        R_SPF_NA: 0,
        R_SPF_PERMFAIL: 0,
        R_SPF_TEMPFAIL: 0,
        R_DKIM_ALLOW: -0.2,
        R_DKIM_REJECT: 1,
        R_DKIM_NA: 0,
        R_DKIM_PERMFAIL: 0,
        R_DKIM_TEMPFAIL: 0,
        DMARC_POLICY_ALLOW: -0.5,
        DMARC_POLICY_REJECT: 2,
        DMARC_POLICY_QUARANTINE: 1.5,
        DMARC_POLICY_SOFTFAIL: 0.1,
        DMARC_NA: 0,
        DMARC_PERMFAIL: 0,
        DMARC_TEMPFAIL: 0,
        ARC_ALLOW: -1,
        ARC_REJECT: 1,
        ARC_NA: 0,
        ARC_TEMPFAIL: 0,
      },
      scoreCountries: {},
      scoreAsns: {},
    },
  };
}

/** Maps whose keys are the user's (symbols, countries, ASNs): any key, numbers only. */
const NUMBER_MAPS = new Set(['scores', 'auth.scoreCountries', 'auth.scoreAsns']);

type Plain = Record<string, unknown>;

function isPlain(v: unknown): v is Plain {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(path: string, message: string): never {
  throw new FilterError('ECONFIG', `config option "${path}" ${message}`, { option: path });
}

/**
 * Merges `override` onto `base`, checking every leaf against the type of the default so that a typo
 * or a wrong type names the option instead of being silently ignored.
 */
function mergeChecked(base: Plain, override: Plain, prefix: string): Plain {
  const out: Plain = { ...base };
  for (const [key, value] of Object.entries(override)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (!(key in base)) fail(path, 'is not a known option');
    const def = base[key];
    if (NUMBER_MAPS.has(path)) {
      if (!isPlain(value)) fail(path, 'must be a mapping of name to number');
      for (const [sym, n] of Object.entries(value)) {
        if (typeof n !== 'number' || !Number.isFinite(n)) fail(`${path}.${sym}`, 'must be a number');
      }
      out[key] = { ...(def as Plain), ...value };
      continue;
    }
    if (isPlain(def)) {
      if (!isPlain(value)) fail(path, 'must be a mapping');
      out[key] = mergeChecked(def, value, path);
    } else if (Array.isArray(def)) {
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) fail(path, 'must be a list of strings');
      out[key] = value;
    } else if (def === null) {
      // Nullable options: a string or number (by meaning of the option) or null.
      if (value !== null && typeof value !== 'string' && typeof value !== 'number') fail(path, 'must be a string, a number or null');
      out[key] = value;
    } else if (typeof value !== typeof def) {
      fail(path, `must be a ${typeof def}, got ${value === null ? 'null' : typeof value}`);
    } else {
      out[key] = value;
    }
  }
  return out;
}

function validate(c: Config): Config {
  const t = c.thresholds;
  if (!Number.isFinite(t.required)) fail('thresholds.required', 'must be a finite number');
  if (!(t.reject > t.required)) fail('thresholds.reject', `must be greater than thresholds.required (${t.required})`);
  if (t.quarantine !== null) {
    if (typeof t.quarantine !== 'number') fail('thresholds.quarantine', 'must be a number or null');
    if (t.quarantine < t.required || t.quarantine > t.reject) fail('thresholds.quarantine', 'must lie between required and reject');
  }
  positiveInt('pool.workers', c.pool.workers);
  positiveInt('pool.queueLength', c.pool.queueLength);
  positiveInt('pool.taskTimeoutMs', c.pool.taskTimeoutMs);
  if (!Number.isInteger(c.pool.workerNice) || c.pool.workerNice < 0 || c.pool.workerNice > 19) fail('pool.workerNice', `must be a whole number from 0 to 19, got ${c.pool.workerNice}`);
  positiveInt('log.batchSize', c.log.batchSize);
  positiveInt('log.flushMs', c.log.flushMs);
  positiveInt('log.queueLength', c.log.queueLength);
  if (c.log.retainDays !== null) positiveInt('log.retainDays', c.log.retainDays);
  positiveInt('memoryLimitMb', c.memoryLimitMb);
  positiveInt('maxMessageBytes', c.maxMessageBytes);
  if (!(c.cache.sizeMultiplier > 0)) fail('cache.sizeMultiplier', 'must be greater than 0');
  for (const level of ['verdict', 'domain', 'geo', 'auth'] as const) {
    positiveInt(`cache.${level}.max`, c.cache[level].max);
    positiveInt(`cache.${level}.ttlMs`, c.cache[level].ttlMs);
  }
  if (!Number.isInteger(c.http.port) || c.http.port < 0 || c.http.port > 65535) fail('http.port', 'must be a port number (0-65535)');
  if (c.milter.defaultAction !== 'tempfail' && c.milter.defaultAction !== 'accept') fail('milter.defaultAction', 'must be "tempfail" or "accept"');
  positiveInt('auth.lookupTimeoutMs', c.auth.lookupTimeoutMs);
  positiveInt('auth.budgetMs', c.auth.budgetMs);
  positiveInt('auth.minKeyBits', c.auth.minKeyBits);
  for (const cc of Object.keys(c.auth.scoreCountries)) {
    if (!/^[A-Za-z]{2}$/.test(cc)) fail(`auth.scoreCountries.${cc}`, 'must be a two-letter country code');
  }
  for (const asn of Object.keys(c.auth.scoreAsns)) {
    if (!/^(AS)?\d{1,10}$/i.test(asn)) fail(`auth.scoreAsns.${asn}`, 'must be an AS number such as 64496 or AS64496');
  }
  return c;
}

function positiveInt(path: string, n: number): void {
  if (!Number.isInteger(n) || n <= 0) fail(path, `must be a positive whole number, got ${n}`);
}

function envInt(env: Record<string, string | undefined>, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new FilterError('ECONFIG', `environment variable ${name} must be a number, got "${raw}"`, { option: name });
  return n;
}

function envBool(env: Record<string, string | undefined>, name: string): boolean | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new FilterError('ECONFIG', `environment variable ${name} must be true or false, got "${raw}"`, { option: name });
}

/**
 * Builds the effective configuration.
 * @param file the parsed YAML config file (or undefined)
 * @param env  environment variables; the original system's tuning names keep their meaning
 */
export function resolveConfig(file: unknown, env: Record<string, string | undefined> = {}, cores = 2): Config {
  if (file !== undefined && file !== null && !isPlain(file)) fail('(root)', 'must be a mapping');
  const merged = mergeChecked(defaultConfig(cores) as unknown as Plain, (file ?? {}) as Plain, '') as unknown as Config;

  const workers = envInt(env, 'ATLAS_WORKER_COUNT');
  if (workers !== undefined) merged.pool.workers = workers;
  const batch = envInt(env, 'ATLAS_BULK_BATCH_SIZE');
  if (batch !== undefined) merged.log.batchSize = batch;
  const cacheEnabled = envBool(env, 'ATLAS_CACHE_ENABLED');
  if (cacheEnabled !== undefined) merged.cache.enabled = cacheEnabled;
  const mem = envInt(env, 'ATLAS_MEMORY_LIMIT_MB');
  if (mem !== undefined) merged.memoryLimitMb = mem;
  const mult = envInt(env, 'ATLAS_CACHE_SIZE_MULTIPLIER');
  if (mult !== undefined) merged.cache.sizeMultiplier = mult;
  if (env.ATLAS_API_TOKEN) merged.http.token = env.ATLAS_API_TOKEN;
  if (env.ATLAS_NEXT_HOP) merged.smtp.nextHop = env.ATLAS_NEXT_HOP;
  return validate(merged);
}

/** Parses "host:port" (or "[v6]:port") as used by every --listen style flag. */
export function parseHostPort(value: string, option: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value.trim());
  if (!m) throw new FilterError('ECONFIG', `${option} must be HOST:PORT, got "${value}"`, { option });
  const port = Number(m[3]);
  if (port > 65535) throw new FilterError('ECONFIG', `${option} port must be 0-65535, got ${port}`, { option });
  return { host: (m[1] ?? m[2]) as string, port };
}
