// Turns the analysed message into hashed features: words and word pairs of subject and body, link
// domains, and tokens from selected headers, each with a prefix naming where it came from. Only the
// 32-bit hashes leave this module, so the model never holds message text. Runtime-neutral.
import type { Content } from './content.ts';
import { baseDomain } from './content.ts';
import { limits } from './limits.ts';
import { header, headerText } from './parse.ts';

export interface TokenOptions {
  /** Add pairs of neighbouring words. Off: with this model they measured no better than words alone (bench/README.md). */
  bigrams: boolean;
  /** Add tokens from selected headers. */
  headers: boolean;
  /**
   * Add relay domains and /16 networks from the first Received headers. On: within noise in
   * cross-validation, but the shipped model catches more of the unseen phishing-pot with them.
   */
  received: boolean;
  /** Add the shapes of header values that mass mailers give away (MIME boundary, Message-ID, Date zone). */
  shapes: boolean;
  /** Add whether the From domain is the one the Message-ID, Return-Path, links and relays name (needs `headers`). */
  alignment: boolean;
}

export const defaultTokenOptions: TokenOptions = { bigrams: false, headers: true, received: true, shapes: true, alignment: true };

/** FNV-1a over a prefix and a string, the prefix keeping the same word in different places apart. */
function hash(prefix: number, s: string): number {
  let h = Math.imul(0x811c9dc5 ^ prefix, 0x01000193);
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return finish(h);
}

/** A final avalanche so that the low bits used as the table index are well mixed. */
function finish(h: number): number {
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return h >>> 0;
}

// One prefix code per place a token can come from.
const P = {
  body: 1, bodyPair: 2, subject: 3, subjectPair: 4, urlHost: 5, urlBase: 6, fromDomain: 7, fromName: 8,
  replyDomain: 9, mailer: 10, headerName: 11, contentType: 12, attachType: 13, attachExt: 14,
  defect: 16, received: 17, messageIdDomain: 18, longWord: 19, toCount: 20, shape: 21, align: 22, rule: 23,
} as const;

/**
 * The distinct feature hashes of one message: an open-addressing set over a table reused between
 * messages (generation stamps instead of clearing), so tokenizing allocates almost nothing.
 */
const SLOTS = 1 << 16; // > 3 x limits.maxTokens: probes stay short
const keys = new Uint32Array(SLOTS);
const stamps = new Uint32Array(SLOTS);
let generation = 0;

class Sink {
  readonly list: number[] = [];
  private readonly gen: number;
  constructor() {
    generation = (generation + 1) >>> 0;
    if (generation === 0) {
      stamps.fill(0);
      generation = 1;
    }
    this.gen = generation;
  }
  add(prefix: number, s: string): void {
    this.addHash(hash(prefix, s));
  }
  addHash(h: number): void {
    if (this.list.length >= limits.maxTokens) return;
    let slot = h & (SLOTS - 1);
    while (stamps[slot] === this.gen) {
      if (keys[slot] === h) return;
      slot = (slot + 1) & (SLOTS - 1);
    }
    stamps[slot] = this.gen;
    keys[slot] = h;
    this.list.push(h);
  }
  get full(): boolean {
    return this.list.length >= limits.maxTokens;
  }
}

// a-z, 0-9 and $ (prices): a table, as this test runs once per character of every message.
const ASCII_WORD = new Uint8Array(128);
for (let c = 97; c <= 122; c++) ASCII_WORD[c] = 1;
for (let c = 48; c <= 57; c++) ASCII_WORD[c] = 1;
ASCII_WORD[36] = 1;

function isWordChar(c: number): boolean {
  if (c < 128) return ASCII_WORD[c] === 1;
  return c >= 0xc0 && c !== 0xd7 && c !== 0xf7 && !(c >= 0x2000 && c <= 0x2bff) && !(c >= 0x3000 && c <= 0x303f) && c !== 0xfeff;
}

function isCjk(c: number): boolean {
  return (c >= 0x2e80 && c <= 0x9fff) || (c >= 0xac00 && c <= 0xd7af) || (c >= 0xf900 && c <= 0xfaff) || (c >= 0xff66 && c <= 0xff9f);
}

/**
 * Splits text into lower-cased words, hashing as it goes (no substring per word). Long runs (CJK
 * sentences, base64 junk) become one shape token each.
 */
function words(text: string, sink: Sink, uni: number, pair: number | 0): void {
  const s = (text.length > limits.maxTokenTextChars ? text.slice(0, limits.maxTokenTextChars) : text).toLowerCase();
  const seed = Math.imul(0x811c9dc5 ^ uni, 0x01000193);
  let prev = 0;
  let i = 0;
  const n = s.length;
  while (i < n && !sink.full) {
    while (i < n && !isWordChar(s.charCodeAt(i))) i++;
    if (i < n && s.charCodeAt(i) >= 0x2e80 && isCjk(s.charCodeAt(i))) {
      // Chinese, Japanese and Korean run words together: each pair of neighbouring characters is a token.
      let prevC = 0;
      while (i < n && isCjk(s.charCodeAt(i))) {
        const c = s.charCodeAt(i++);
        if (prevC) sink.addHash(finish(Math.imul(Math.imul(seed ^ prevC, 0x01000193) ^ c, 0x01000193)));
        prevC = c;
      }
      prev = 0;
      continue;
    }
    const start = i;
    let h = seed;
    while (i < n) {
      const c = s.charCodeAt(i);
      // Keep inner apostrophes, dots and hyphens (don't, u.s.a, e-mail, 3.5).
      if ((c < 128 ? ASCII_WORD[c] === 1 : isWordChar(c) && !isCjk(c)) || ((c === 39 || c === 46 || c === 45 || c === 0x2019) && i + 1 < n && isWordChar(s.charCodeAt(i + 1)))) {
        h = Math.imul(h ^ c, 0x01000193);
        i++;
      } else break;
    }
    const len = i - start;
    if (len === 0) continue;
    if (len > 20) {
      sink.add(P.longWord, `${s.charCodeAt(start) < 128 ? 'a' : 'u'}${Math.min(len >> 3, 12)}`);
      prev = 0;
      continue;
    }
    if (len === 1 && s.charCodeAt(start) < 0x2e80) continue;
    sink.addHash(finish(h));
    if (pair && prev) sink.addHash(finish(Math.imul(Math.imul(prev ^ pair, 0x01000193) ^ h, 0x01000193)));
    prev = h;
  }
}

function addrDomain(v: string): string {
  const m = /@([a-z0-9.-]+)/i.exec(v);
  return m ? (m[1] as string).toLowerCase().replace(/\.$/, '') : '';
}

/** A message's distinct feature hashes: first those from its content, then those from its headers. */
export interface Features {
  hashes: Uint32Array;
  /** How many of `hashes`, from the start, come from the content (subject, body, links, shape). */
  content: number;
}

/**
 * `rules` are the names of the content rules that fired (contentSymbols): each is a token of the
 * content group, so the model learns how much a rule says instead of it adding fixed points. Measured
 * over seven fold splits at one calibration: 888 spam missed instead of 981 with the rules' fixed
 * points, 956 with both (bench/README.md, Session 3).
 */
export function features(c: Content, opts: TokenOptions = defaultTokenOptions, rules: readonly string[] = []): Features {
  const sink = new Sink();
  // Always present: the model's bias term.
  sink.add(P.shape, '*');
  const pair = opts.bigrams;
  words(c.subject, sink, P.subject, pair ? P.subjectPair : 0);
  if (!c.subject.trim()) sink.add(P.shape, 'no-subject');
  words(c.text, sink, P.body, pair ? P.bodyPair : 0);
  const hosts = new Set<string>();
  for (const l of c.links) if (l.host) hosts.add(l.host);
  const bases = new Set<string>();
  for (const host of hosts) {
    sink.add(P.urlHost, host);
    const base = baseDomain(host);
    bases.add(base);
    sink.add(P.urlBase, base);
  }
  if (c.hasHtml && !c.hasPlain) sink.add(P.shape, 'html-only');
  if (c.hiddenChars > 0) sink.add(P.shape, 'hidden');
  if (c.mismatched.length > 0) sink.add(P.shape, 'link-mismatch');
  sink.add(P.shape, `links${Math.min(c.links.length, 20) >> 2}`);
  sink.add(P.shape, `images${Math.min(c.images, 10)}`);
  // Decoded once: both the alignment and the header tokens start from it.
  const from = opts.headers ? headerText(header(c.parsed.headers, 'from') ?? '') : '';
  if (opts.headers && opts.alignment) alignmentFeatures(c, addrDomain(from), bases, sink);
  for (const r of rules) sink.add(P.rule, r);
  const content = sink.list.length;
  if (opts.headers) headerFeatures(c, from, sink, opts);
  return { hashes: Uint32Array.from(sink.list), content };
}

/**
 * Whether the sender's domain (From) is the one the rest of the message names: the Message-ID, the
 * Return-Path, the links, the relays, the List-Unsubscribe. A real newsletter is sent, linked and
 * unsubscribed from its own domain; forged or rented bulk mail mostly is not. Counted with the
 * content (one vote with the words; in the header group they measured no better). Measured: eval's
 * cross-validation misses 90 spam instead of 106 at the same 4 false positives, seven fold splits at one
 * calibration miss 6% fewer, and the shipped model catches 75% of the unseen phishing-pot instead of 58%
 * (bench/README.md, bench/classify/splits.mjs).
 */
function alignmentFeatures(c: Content, fd: string, bases: ReadonlySet<string>, sink: Sink): void {
  const hs = c.parsed.headers;
  if (!fd) {
    sink.add(P.align, 'no-from');
    return;
  }
  const from = baseDomain(fd);
  const same = (v: string | undefined): string => {
    if (v === undefined) return '-';
    const d = addrDomain(v);
    return !d ? '-' : baseDomain(d) === from ? 'y' : 'n';
  };
  sink.add(P.align, 'mid:' + same(header(hs, 'message-id')));
  sink.add(P.align, 'return-path:' + same(header(hs, 'return-path')));
  sink.add(P.align, 'links:' + (bases.size === 0 ? '-' : !bases.has(from) ? 'none' : bases.size === 1 ? 'all' : 'some'));
  // Relay names are nearly always lower case already: lower-case a header only when the plain search misses.
  const relayed = hs.some((h) => h.name === 'received' && (h.value.includes(from) || (/[A-Z]/.test(h.value) && h.value.toLowerCase().includes(from))));
  sink.add(P.align, 'received:' + (relayed ? 'y' : 'n'));
  const unsub = header(hs, 'list-unsubscribe');
  sink.add(P.align, 'unsubscribe:' + (unsub === undefined ? '-' : unsub.toLowerCase().includes(from) ? 'y' : 'n'));
}

function headerFeatures(c: Content, from: string, sink: Sink, opts: TokenOptions): void {
  const hs = c.parsed.headers;
  const fd = addrDomain(from);
  if (fd) {
    sink.add(P.fromDomain, fd);
    sink.add(P.fromDomain, baseDomain(fd));
  } else sink.add(P.fromDomain, '(none)');
  const name = /^\s*"?([^<"]*)"?\s*</.exec(from);
  if (name) words(name[1] as string, sink, P.fromName, 0);
  const reply = header(hs, 'reply-to');
  if (reply) {
    const rd = addrDomain(reply);
    sink.add(P.replyDomain, rd && baseDomain(rd) === baseDomain(fd) ? 'same' : rd || '(none)');
  }
  const mailer = header(hs, 'x-mailer') ?? header(hs, 'user-agent');
  if (mailer) words(mailer, sink, P.mailer, 0);
  const mid = header(hs, 'message-id');
  sink.add(P.messageIdDomain, mid ? addrDomain(mid) || '(odd)' : '(none)');
  const ct = (header(hs, 'content-type') ?? 'none').split(';')[0]!.trim().toLowerCase();
  sink.add(P.contentType, ct);
  let received = 0;
  const seen = new Set<string>();
  for (const h of hs) {
    if (h.name === 'received') {
      received++;
      if (opts.received && received <= 6) {
        for (const m of h.value.matchAll(/\b(?:from|by)\s+([a-z0-9.-]+\.[a-z]{2,})/gi)) sink.add(P.received, baseDomain((m[1] as string).toLowerCase()));
        const ip = /\[(\d{1,3}\.\d{1,3})\.\d{1,3}\.\d{1,3}\]/.exec(h.value);
        if (ip) sink.add(P.received, ip[1] as string);
      }
    }
    // Which headers a message carries says much about the software that wrote it.
    if (!seen.has(h.name) && seen.size < 100) {
      seen.add(h.name);
      sink.add(P.headerName, h.name);
    }
  }
  sink.add(P.shape, `received${Math.min(received, 12)}`);
  const to = header(hs, 'to') ?? '';
  sink.add(P.toCount, String(Math.min((to.match(/@/g) ?? []).length, 6)));
  for (const p of c.parsed.parts) if (p.html) sink.add(P.shape, 'has-html');
  for (const a of c.parsed.attachments.slice(0, 20)) {
    sink.add(P.attachType, a.type);
    const dot = a.name.lastIndexOf('.');
    if (dot >= 0) sink.add(P.attachExt, a.name.slice(dot + 1, dot + 8));
  }
  for (const d of c.parsed.defects) sink.add(P.defect, d);
  if (opts.shapes) shapeFeatures(c, sink);
}

/** Digits to 9, letters to a, runs collapsed: "----=_NextPart_000_0012_01C2" → "-=_a_9_9_9a9". */
function shape(v: string): string {
  return v.slice(0, 80).replace(/[0-9]+/g, '9').replace(/[a-z]+/gi, 'a');
}

function shapeFeatures(c: Content, sink: Sink): void {
  const hs = c.parsed.headers;
  const ct = header(hs, 'content-type');
  if (ct) {
    const b = /boundary\s*=\s*"?([^";]+)/i.exec(ct);
    if (b) sink.add(P.shape, 'boundary:' + shape(b[1] as string));
    const cs = /charset\s*=\s*"?([^";\s]+)/i.exec(ct);
    if (cs) sink.add(P.shape, 'charset:' + (cs[1] as string).toLowerCase());
  }
  const mid = header(hs, 'message-id');
  if (mid) sink.add(P.shape, 'mid:' + shape(mid.split('@')[0] as string));
  const date = header(hs, 'date');
  if (date) {
    const zone = /([+-]\d{4}|\b[A-Z]{2,4})\s*(?:\([^)]*\))?\s*$/.exec(date);
    sink.add(P.shape, 'zone:' + (zone ? zone[1] : '?'));
  } else sink.add(P.shape, 'no-date');
  const order = hs.slice(0, 4).map((h) => h.name).join(',');
  sink.add(P.shape, 'order:' + order);
}
