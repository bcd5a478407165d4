// The auth stage against a real DNS server on loopback serving a test zone, with messages signed by
// keys generated here. Pass, fail, softfail/quarantine, ARC, caching, and the temperror paths.
import { generateKeyPairSync } from 'node:crypto';
import { type ARCData, arc, dkimSign, dkimVerify, sealMessage } from 'mailauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuthStage } from '../../src/auth/stage.ts';
import { createCaches } from '../../src/core/cache.ts';
import { type Config, defaultConfig } from '../../src/core/config.ts';
import { quickLook } from '../../src/core/look.ts';
import { type Cidr, parseCidr } from '../../src/core/net.ts';
import { scan } from '../../src/core/scan.ts';
import type { SymbolHit } from '../../src/core/verdict.ts';
import { shippedRules } from '../helpers/env.ts';
import { deadAddress, startSilentServer, startZoneServer, txt, type ZoneServer } from '../integration/dns-server.ts';

const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const privateKey = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
const publicKey = (keys.publicKey.export({ type: 'spki', format: 'der' }) as Buffer).toString('base64');

let zone: ZoneServer;

beforeAll(async () => {
  zone = await startZoneServer({
    'good.example.com': { TXT: [['v=spf1 ip4:192.0.2.0/24 -all']] },
    'sel._domainkey.good.example.com': { TXT: [txt(`v=DKIM1; k=rsa; p=${publicKey}`)] },
    '_dmarc.good.example.com': { TXT: [['v=DMARC1; p=reject']] },
    'soft.example.org': { TXT: [['v=spf1 ip4:192.0.2.0/24 ~all']] },
    '_dmarc.soft.example.org': { TXT: [['v=DMARC1; p=quarantine']] },
    'relay.example.net': { TXT: [['v=spf1 -all']] },
    'arc._domainkey.relay.example.net': { TXT: [txt(`v=DKIM1; k=rsa; p=${publicKey}`)] },
  });
});

afterAll(async () => {
  await zone?.close();
});

function config(over: Partial<Config['auth']> = {}): Config {
  const c = defaultConfig();
  // Generous DNS limits by default: a loaded CI machine must not turn a pass test into temperror.
  c.auth = { ...c.auth, authservId: 'mx.test', geo: false, lookupTimeoutMs: 8_000, budgetMs: 15_000, ...over };
  return c;
}

function message(from: string, subject: string, body = 'Hello there.\r\nThe quarterly figures are attached.\r\n'): string {
  return `From: ${from}\r\nTo: bob@example.org\r\nSubject: ${subject}\r\nDate: Mon, 23 Nov 2026 00:00:00 +0000\r\nMessage-ID: <${subject.replace(/\W/g, '')}@test>\r\n\r\n${body}`;
}

/**
 * Signs for good.example.com. mailauth's signer writes an invalid signature about once in a hundred
 * (checked against an independent relaxed/relaxed verifier: the signature is wrong, not the verifier),
 * so a signature is checked offline with the test key and made again with another timestamp if bad.
 */
async function signed(from: string, subject: string): Promise<string> {
  const raw = message(from, subject);
  const key = async () => [[`v=DKIM1; k=rsa; p=${publicKey}`]];
  for (let attempt = 0; attempt < 5; attempt++) {
    const signTime = new Date(Date.now() - attempt * 1_000);
    const r = await dkimSign(raw, { signatureData: [{ signingDomain: 'good.example.com', selector: 'sel', privateKey, signTime }] });
    expect(r.errors).toEqual([]);
    const check = await dkimVerify(Buffer.from(r.signatures + raw), { resolver: key });
    if (check.results[0]?.status.result === 'pass') return r.signatures + raw;
  }
  throw new Error('mailauth could not produce a valid test signature in 5 attempts');
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const names = (symbols: SymbolHit[]): string[] => symbols.map((s) => s.name).sort();

async function check(stage: ReturnType<typeof createAuthStage>, raw: string, envelope: { ip?: string; from?: string; helo?: string }) {
  const bytes = enc(raw);
  return stage.check(bytes, quickLook(bytes, envelope), performance.now() + 20_000);
}

describe('auth stage against a loopback DNS server', () => {
  it('passes SPF, DKIM and DMARC for a signed message from an allowed relay', async () => {
    const stage = createAuthStage(config({ dnsServers: [zone.address] }));
    const raw = await signed('Alice <alice@good.example.com>', 'pass');
    const r = await check(stage, raw, { ip: '192.0.2.10', from: 'alice@good.example.com', helo: 'mail.good.example.com' });
    expect(names(r.symbols)).toEqual(['ARC_NA', 'DMARC_POLICY_ALLOW', 'R_DKIM_ALLOW', 'R_SPF_ALLOW']);
    const cfg = defaultConfig().auth.scores;
    expect(r.symbols.find((s) => s.name === 'DMARC_POLICY_ALLOW')?.score).toBe(cfg.DMARC_POLICY_ALLOW);
    expect(r.symbols.find((s) => s.name === 'R_DKIM_ALLOW')?.options).toEqual(['good.example.com']);
    expect(r.authResults).toMatch(/^mx\.test;\r\n /);
    expect(r.authResults).toContain('spf=pass');
    expect(r.authResults).toContain('dkim=pass header.i=@good.example.com header.s=sel');
    expect(r.authResults).toContain('dmarc=pass');
  });

  it('fails SPF, DKIM and DMARC (p=reject) for a tampered message from a foreign relay', async () => {
    const stage = createAuthStage(config({ dnsServers: [zone.address] }));
    const raw = (await signed('alice@good.example.com', 'tampered')).replace('quarterly figures', 'new bank account');
    const r = await check(stage, raw, { ip: '198.51.100.7', from: 'alice@good.example.com' });
    expect(names(r.symbols)).toEqual(['ARC_NA', 'DMARC_POLICY_REJECT', 'R_DKIM_REJECT', 'R_SPF_FAIL']);
    expect(r.symbols.find((s) => s.name === 'DMARC_POLICY_REJECT')?.score).toBe(2);
    expect(r.authResults).toContain('spf=fail');
    expect(r.authResults).toContain('dkim=neutral (body hash did not verify)');
    expect(r.authResults).toContain('dmarc=fail');
  });

  it('soft-fails SPF and applies p=quarantine to an unsigned message', async () => {
    const stage = createAuthStage(config({ dnsServers: [zone.address] }));
    const r = await check(stage, message('news@soft.example.org', 'soft'), { ip: '203.0.113.5', from: 'news@soft.example.org' });
    expect(names(r.symbols)).toEqual(['ARC_NA', 'DMARC_POLICY_QUARANTINE', 'R_DKIM_NA', 'R_SPF_SOFTFAIL']);
  });

  it('checks SPF for the first relay outside trustedRelays when the door gives no IP', async () => {
    const stage = createAuthStage(config({ dnsServers: [zone.address] }));
    const hops =
      'Received: from localhost (localhost [127.0.0.1]) by mx.test with ESMTP id A1; Mon, 23 Nov 2026 00:00:02 +0000\r\n' +
      'Received: from gw.partner.test (gw.partner.test [192.0.2.10]) by localhost with ESMTP id A0; Mon, 23 Nov 2026 00:00:01 +0000\r\n' +
      'Received: from out.elsewhere.test (out.elsewhere.test [198.51.100.7]) by gw.partner.test; Mon, 23 Nov 2026 00:00:00 +0000\r\n' +
      'Return-Path: <alice@good.example.com>\r\n';
    const bytes = enc(hops + message('alice@good.example.com', 'hops'));
    const trusted = (list: string[]): Cidr[] => list.map((t) => parseCidr(t) as Cidr);
    const viaDefault = await stage.check(bytes, quickLook(bytes, {}, { trustedRelays: trusted(defaultConfig().trustedRelays) }), performance.now() + 20_000);
    expect(viaDefault.symbols.find((s) => s.name === 'R_SPF_ALLOW')?.options).toEqual(['good.example.com', '192.0.2.10']);
    // With the partner's gateway declared as our own hop, the sender is the hop before it.
    const viaPartner = await stage.check(bytes, quickLook(bytes, {}, { trustedRelays: trusted(['127.0.0.0/8', '192.0.2.0/24']) }), performance.now() + 20_000);
    expect(viaPartner.symbols.find((s) => s.name === 'R_SPF_FAIL')?.options).toEqual(['good.example.com', '198.51.100.7']);
  });

  it('verifies an ARC chain sealed by a forwarder', async () => {
    const stage = createAuthStage(config({ dnsServers: [zone.address] }));
    const raw = await signed('alice@good.example.com', 'forwarded');
    // The same signer bug as in signed(): keep a seal that verifies offline with the test key.
    const key = async () => [[`v=DKIM1; k=rsa; p=${publicKey}`]];
    let sealed = '';
    for (let attempt = 0; attempt < 5 && !sealed; attempt++) {
      const seal = await sealMessage(Buffer.from(raw), {
        signingDomain: 'relay.example.net',
        selector: 'arc',
        privateKey,
        authResults: 'relay.example.net; dkim=pass header.d=good.example.com',
        cv: 'none',
        signTime: new Date(Date.now() - attempt * 1_000),
      } as Parameters<typeof sealMessage>[1]);
      const d = await dkimVerify(Buffer.concat([seal, Buffer.from(raw)]), { resolver: key });
      if (d.arc && (await arc(d.arc as ARCData, { resolver: key })).status.result === 'pass') sealed = seal.toString() + raw;
    }
    expect(sealed).not.toBe('');
    const r = await check(stage, sealed, { ip: '198.51.100.20', from: 'list@relay.example.net' });
    expect(names(r.symbols)).toContain('ARC_ALLOW');
    expect(names(r.symbols)).toContain('R_SPF_FAIL');
    expect(r.authResults).toContain('arc=pass');
  });

  it('answers a repeated message from the auth cache and a repeat sender from the SPF and DNS caches', async () => {
    const caches = createCaches(defaultConfig().cache);
    const stage = createAuthStage(config({ dnsServers: [zone.address] }), { caches: () => caches });
    const first = await signed('alice@good.example.com', 'cache one');
    const envelope = { ip: '192.0.2.10', from: 'alice@good.example.com', helo: 'mail.good.example.com' };
    const a = await check(stage, first, envelope);
    const seen = zone.queries.length;
    const b = await check(stage, first, envelope);
    expect(zone.queries.length).toBe(seen);
    expect(b).toEqual(a);
    expect(caches.auth.hits).toBeGreaterThan(0);

    const second = await signed('alice@good.example.com', 'cache two');
    const c = await check(stage, second, envelope);
    expect(names(c.symbols)).toEqual(names(a.symbols));
    expect(zone.queries.length).toBe(seen);
    expect(caches.domain.hits).toBeGreaterThan(0);
    expect(stage.dns.stats.cached).toBeGreaterThan(0);
  });

  it('reports temperror, within its budget, when the DNS server never answers', async () => {
    const silent = await startSilentServer();
    try {
      const stage = createAuthStage(config({ dnsServers: [silent.address], lookupTimeoutMs: 100, budgetMs: 1_000 }));
      const raw = await signed('alice@good.example.com', 'stalled');
      const r = await check(stage, raw, { ip: '192.0.2.10', from: 'alice@good.example.com' });
      // The server is silent forever: getting any answer at all means the timeouts ended the lookups.
      expect(names(r.symbols)).toEqual(['ARC_NA', 'DMARC_TEMPFAIL', 'R_DKIM_TEMPFAIL', 'R_SPF_TEMPFAIL']);
      expect(r.authResults).toContain('spf=temperror');
      expect(stage.dns.stats.timedOut).toBeGreaterThan(0);
    } finally {
      await silent.close();
    }
  });

  it('reports temperror when nothing listens on the DNS port', async () => {
    const stage = createAuthStage(config({ dnsServers: [await deadAddress()], lookupTimeoutMs: 300, budgetMs: 800 }));
    const r = await check(stage, message('alice@good.example.com', 'dead'), { ip: '192.0.2.10', from: 'alice@good.example.com' });
    expect(names(r.symbols)).toEqual(['ARC_NA', 'DMARC_TEMPFAIL', 'R_DKIM_NA', 'R_SPF_TEMPFAIL']);
  });

  it('keeps the parts that finished when one lookup stalls, and does not cache the temporary result', async () => {
    const caches = createCaches(defaultConfig().cache);
    const stage = createAuthStage(config({ dnsServers: [zone.address], lookupTimeoutMs: 200, budgetMs: 600 }), { caches: () => caches });
    const raw = await signed('alice@good.example.com', 'partial');
    const envelope = { ip: '192.0.2.10', from: 'alice@good.example.com' };
    zone.stall.add('_dmarc.good.example.com');
    try {
      const r = await check(stage, raw, envelope);
      expect(names(r.symbols)).toEqual(['ARC_NA', 'DMARC_TEMPFAIL', 'R_DKIM_ALLOW', 'R_SPF_ALLOW']);
    } finally {
      zone.stall.delete('_dmarc.good.example.com');
    }
    const again = await check(stage, raw, envelope);
    expect(names(again.symbols)).toEqual(['ARC_NA', 'DMARC_POLICY_ALLOW', 'R_DKIM_ALLOW', 'R_SPF_ALLOW']);
  });

  it('never works past the scan deadline: an already spent deadline gives temperror without a query', async () => {
    const stage = createAuthStage(config({ dnsServers: [zone.address] }));
    const bytes = enc(message('someone@good.example.com', 'late'));
    const before = zone.queries.length;
    const r = await stage.check(bytes, quickLook(bytes, { ip: '192.0.2.99', from: 'someone@good.example.com' }), performance.now() - 1);
    // An unsigned message needs no DNS to be "not signed"; everything that needs DNS is temperror.
    expect(names(r.symbols)).toEqual(['ARC_NA', 'DMARC_TEMPFAIL', 'R_DKIM_NA', 'R_SPF_TEMPFAIL']);
    expect(zone.queries.length).toBe(before);
    const signedRaw = enc(await signed('someone@good.example.com', 'late signed'));
    const late = await stage.check(signedRaw, quickLook(signedRaw, { ip: '192.0.2.99', from: 'someone@good.example.com' }), performance.now() - 1);
    // DKIM needs its key: temperror. ARC has no chain to check, so it may finish as "none" first.
    expect(names(late.symbols)).toEqual(expect.arrayContaining(['DMARC_TEMPFAIL', 'R_DKIM_TEMPFAIL', 'R_SPF_TEMPFAIL']));
    expect(names(late.symbols).filter((n) => n.startsWith('ARC_'))).toEqual([expect.stringMatching(/^ARC_(NA|TEMPFAIL)$/)]);
    expect(zone.queries.length).toBe(before);
  });

  it('lets config.scores override an auth symbol, and does nothing when disabled', async () => {
    const c = config({ dnsServers: [zone.address] });
    c.scores = { R_SPF_FAIL: 4 };
    const r = await check(createAuthStage(c), message('x@good.example.com', 'override'), { ip: '198.51.100.1', from: 'x@good.example.com' });
    expect(r.symbols.find((s) => s.name === 'R_SPF_FAIL')?.score).toBe(4);
    const off = await check(createAuthStage(config({ enabled: false, dnsServers: [zone.address] })), message('x@good.example.com', 'off'), { ip: '198.51.100.1' });
    expect(off).toEqual({ symbols: [] });
  });
});

describe('scan() with the auth stage', () => {
  it('puts auth symbols into the score and Authentication-Results into the verdict', async () => {
    const c = config({ dnsServers: [zone.address] });
    const caches = createCaches(c.cache);
    const rules = shippedRules();
    const env = { config: c, rules: () => rules, caches, now: () => performance.now(), auth: createAuthStage(c, { caches: () => caches }) };
    const raw = (await signed('alice@good.example.com', 'scan tampered')).replace('quarterly', 'urgent');
    const v = await scan({ raw: enc(raw), envelope: { ip: '198.51.100.7', from: 'alice@good.example.com' } }, env);
    expect(v.symbols.map((s) => s.name)).toEqual(expect.arrayContaining(['R_SPF_FAIL', 'R_DKIM_REJECT', 'DMARC_POLICY_REJECT']));
    expect(v.score).toBeGreaterThanOrEqual(4);
    expect(v.authResults).toContain('dmarc=fail');
  });

  it('answers with a verdict, not a tempfail, when DNS is dead', async () => {
    const silent = await startSilentServer();
    try {
      const c = config({ dnsServers: [silent.address], lookupTimeoutMs: 100, budgetMs: 300 });
      const caches = createCaches(c.cache);
      const rules = shippedRules();
      const env = { config: c, rules: () => rules, caches, now: () => performance.now(), auth: createAuthStage(c, { caches: () => caches }) };
      const v = await scan({ raw: enc(message('alice@good.example.com', 'dead dns')), envelope: { ip: '192.0.2.10', from: 'alice@good.example.com' } }, env);
      expect(v.action).not.toBe('tempfail');
      expect(v.symbols.map((s) => s.name)).toContain('R_SPF_TEMPFAIL');
      expect(v.authResults).toContain('dmarc=temperror');
    } finally {
      await silent.close();
    }
  });
});
