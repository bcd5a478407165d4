// bench/auth: per-message cost of the auth stage (SPF, DKIM, DMARC, ARC, geo) on corpus messages, with a
// cold and a warm cache, and the cache hit rates of a replay where senders repeat.
// DNS is a real server on loopback (dns2) that answers for every corpus sender domain: an SPF record with
// one include, a DMARC record and a DKIM key; every message is re-signed with that key for its From
// domain, so each cold check does the real lookups and a real RSA verification.
// Usage: npm run bench:auth [-- --limit N | --all] [-- --replay N]
import { readFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { generateKeyPairSync } from 'node:crypto';
import os from 'node:os';
import dns2 from 'dns2';
import { dkimSign } from 'mailauth';
import { createAuthStage } from '../../dist/auth/stage.js';
import { createCaches } from '../../dist/core/cache.js';
import { defaultConfig } from '../../dist/core/config.js';
import { quickLook } from '../../dist/core/look.js';
import { parseCidr } from '../../dist/core/net.js';
import { hasFlag, numberFlag } from '../lib/args.mjs';
import { corpusFiles, requireCorpus } from '../lib/corpus.mjs';

const limit = hasFlag('all') ? Infinity : numberFlag('limit', 1000);
const replayCount = numberFlag('replay', 5000);
requireCorpus();

// Arrival order: every labelled message, shuffled with a fixed seed so runs compare.
const files = corpusFiles().map((f) => f.path);
let seed = 42;
const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
for (let i = files.length - 1; i > 0; i--) {
  const j = Math.floor(rand() * (i + 1));
  [files[i], files[j]] = [files[j], files[i]];
}

const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const privateKey = keys.privateKey.export({ type: 'pkcs8', format: 'pem' });
const publicKey = keys.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
const config = defaultConfig();
const trusted = config.trustedRelays.map((t) => parseCidr(t)).filter(Boolean);

// Sign each message for its From domain and keep the SMTP facts a door would pass in.
const messages = [];
const t0 = performance.now();
for (const file of files) {
  if (messages.length >= limit) break;
  const raw = readFileSync(file);
  if (raw.length === 0) continue;
  const look = quickLook(new Uint8Array(raw), {}, { trustedRelays: trusted });
  if (!look.fromDomain || !/^[a-z0-9.-]+\.[a-z]{2,}$/.test(look.fromDomain)) continue;
  const signed = await dkimSign(raw, { signatureData: [{ signingDomain: look.fromDomain, selector: 'bench', privateKey }] });
  if (signed.errors.length > 0) continue;
  const bytes = new Uint8Array(Buffer.concat([Buffer.from(signed.signatures), raw]));
  const ip = look.relayIp || '192.0.2.25';
  messages.push({ bytes, envelope: { ip, from: look.envelopeFrom || look.fromAddress, helo: '' } });
}
const signMs = performance.now() - t0;
const senders = new Set(messages.map((m) => m.envelope.from));
const domains = new Set(messages.map((m) => m.envelope.from.split('@')[1]));

// The loopback zone: any domain has SPF (with one include), DMARC and the bench DKIM key.
const { Packet } = dns2;
let queries = 0;
const txt = (v) => {
  const out = [];
  for (let i = 0; i < v.length; i += 255) out.push(v.slice(i, i + 255));
  return out;
};
const server = dns2.createServer({
  udp: true,
  tcp: true,
  handle: (request, send) => {
    queries++;
    const response = Packet.createResponseFromRequest(request);
    const q = request.questions[0];
    const name = q.name.toLowerCase();
    let data;
    if (q.type === Packet.TYPE.TXT) {
      if (name.startsWith('_dmarc.')) data = ['v=DMARC1; p=none'];
      else if (name.startsWith('bench._domainkey.')) data = txt(`v=DKIM1; k=rsa; p=${publicKey}`);
      else if (name.startsWith('_spf.')) data = ['v=spf1 ip4:192.0.2.0/24 ip4:10.0.0.0/8 -all'];
      else if (!name.includes('_')) data = [`v=spf1 include:_spf.${name} ~all`];
    }
    if (data) response.answers.push({ name: q.name, type: Packet.TYPE.TXT, class: Packet.CLASS.IN, ttl: 300, data });
    else response.header.rcode = Packet.RCODE.NXDOMAIN;
    send(response);
  },
});
const probe = createSocket('udp4');
await new Promise((r) => probe.bind(0, '127.0.0.1', r));
const port = probe.address().port;
await new Promise((r) => probe.close(r));
await server.listen({ udp: { port, address: '127.0.0.1' }, tcp: { port, address: '127.0.0.1' } });
config.auth.dnsServers = [`127.0.0.1:${port}`];
config.auth.authservId = 'bench.test';

/** Runs the stage over `list` in order, timing only check() (the quick look is the scan's, not ours). */
// Quick looks are made once, before any timing: the scan makes them anyway, and making them inside a
// pass would fill the young generation with garbage the stage's figures would then pay for.
const withLook = (m) => ({ ...m, look: quickLook(m.bytes, m.envelope, { trustedRelays: trusted }) });

async function pass(stage, list = messages) {
  const times = new Float64Array(list.length);
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < list.length; i++) {
    const t = process.hrtime.bigint();
    await stage.check(list[i].bytes, list[i].look, performance.now() + 10_000);
    times[i] = Number(process.hrtime.bigint() - t) / 1000;
  }
  const cpu = process.cpuUsage(cpu0);
  const sorted = [...times].sort((x, y) => x - y);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  const mean = times.reduce((x, y) => x + y, 0) / times.length;
  return { mean, median: at(0.5), p90: at(0.9), cpu: (cpu.user + cpu.system) / list.length };
}

// 1. Every corpus message once, caches empty at the start; then the same messages again (a re-scan:
//    Postfix retrying after a 4xx, or the milter and the content filter both asking).
for (let i = 0; i < messages.length; i++) messages[i] = withLook(messages[i]);
const caches = createCaches(config.cache);
const stage = createAuthStage(config, { caches: () => caches });
const q0 = queries;
const cold = await pass(stage);
const coldQueries = queries - q0;
const onceLevels = Object.fromEntries(['auth', 'domain', 'geo'].map((l) => [l, { hits: caches[l].hits, misses: caches[l].misses }]));
// The cold pass leaves mailauth's garbage behind; collect it first (when --expose-gc) so the warm
// passes time the stage, not an old-generation collection.
globalThis.gc?.();
const warmRuns = [];
for (let i = 0; i < 5; i++) warmRuns.push(await pass(stage));
const warm = warmRuns.reduce((best, r) => (r.mean < best.mean ? r : best));
const warmQueries = queries - q0 - coldQueries;

// 2. The replay where senders repeat: deliveries pick a sender domain with Zipf weights (a few senders
//    send most mail, as on a real MX), then one of that domain's messages; each delivery gets its own
//    Received line on top, so every delivery is new bytes (a message-cache miss) while its SPF, DKIM
//    key, DMARC record and relay country can come from the caches. Caches start empty.
const byDomain = new Map();
for (const m of messages) {
  const d = m.envelope.from.split('@')[1];
  if (!byDomain.has(d)) byDomain.set(d, []);
  byDomain.get(d).push(m);
}
const ranked = [...byDomain.keys()];
const weights = ranked.map((_, i) => 1 / (i + 1));
const total = weights.reduce((a, w) => a + w, 0);
const deliveries = [];
for (let n = 0; n < replayCount; n++) {
  let x = rand() * total;
  let i = 0;
  while (x > weights[i] && i < ranked.length - 1) x -= weights[i++];
  const pool = byDomain.get(ranked[i]);
  const m = pool[Math.floor(rand() * pool.length)];
  const hop = Buffer.from(`Received: from mx.bench.test ([${m.envelope.ip}]) by bench.test with ESMTP id D${n}; Mon, 23 Nov 2026 00:00:00 +0000\r\n`);
  deliveries.push(withLook({ bytes: new Uint8Array(Buffer.concat([hop, m.bytes])), envelope: m.envelope }));
}
const rc = createCaches(config.cache);
const replayStage = createAuthStage(config, { caches: () => rc });
const r0 = queries;
const replay = await pass(replayStage, deliveries);
const replayQueries = queries - r0;
const facts = {
  spf: replayStage.stats.spf,
  dns: { hits: replayStage.dns.stats.cached, misses: replayStage.dns.stats.queries },
  geo: { hits: rc.geo.hits, misses: rc.geo.misses },
};

await server.close();
const pct = (x) => (x.hits + x.misses === 0 ? '–' : `${((100 * x.hits) / (x.hits + x.misses)).toFixed(1)}%`);
const sum = (xs) => xs.reduce((a, x) => ({ hits: a.hits + x.hits, misses: a.misses + x.misses }), { hits: 0, misses: 0 });
const replayFacts = sum(Object.values(facts));
const replayLevels = sum(['auth', 'domain', 'geo'].map((l) => rc[l]));

console.log(`atlas-email bench/auth — ${messages.length} corpus messages (${senders.size} envelope senders, ${domains.size} From domains), re-signed in ${(signMs / 1000).toFixed(1)} s; replay of ${deliveries.length} deliveries`);
console.log(`node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, load average ${os.loadavg()[0].toFixed(1)}; DNS: dns2 on 127.0.0.1:${port}`);
const row = (run, r, q) => ({
  run,
  'mean µs': r.mean.toFixed(1),
  'median µs': r.median.toFixed(1),
  'p90 µs': r.p90.toFixed(1),
  'CPU µs/msg': r.cpu.toFixed(1),
  'DNS queries': q,
});
console.table([
  row('cold: each corpus message once, empty caches', cold, coldQueries),
  row('warm: the same messages again', warm, warmQueries),
  row('replay: new message, repeat senders (Zipf)', replay, replayQueries),
]);
console.log(`(wall time of check() per message, quick look excluded; CPU = this process's user+system time per message,`);
console.log(` which for cold/replay includes the loopback DNS server running in this process; warm = best of ${warmRuns.length} passes)`);
console.log('replay, facts answered from cache:');
console.table(Object.entries(facts).map(([kind, x]) => ({ kind, hits: x.hits, misses: x.misses, 'hit rate': pct(x) })));
console.log(`replay: facts ${pct(replayFacts)} from cache; cache levels auth+domain+geo ${pct(replayLevels)} (auth level counts each new message's miss too)`);
console.log(`each-message-once pass, cache levels: ${Object.entries(onceLevels).map(([l, x]) => `${l} ${pct(x)}`).join(', ')}`);
console.log(`targets: warm < 50 µs/msg → mean ${warm.mean < 50 ? 'met' : 'NOT met'}, median ${warm.median < 50 ? 'met' : 'NOT met'}, CPU ${warm.cpu < 50 ? 'met' : 'NOT met'}; replay hit rate ≥ 80% → ${replayFacts.hits / (replayFacts.hits + replayFacts.misses) >= 0.8 ? 'met' : 'NOT met'}`);
