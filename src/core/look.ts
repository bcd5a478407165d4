// Quick look: the facts an early verdict needs, read from the header block only.
// Cheap by design — no MIME parse, no body decoding beyond hashing — because it runs for every
// message before anything else and is most of the cost of a cache hit.
import { Hasher } from './hash.ts';
import { limits } from './limits.ts';
import { type Cidr, cidrContains, parseIp } from './net.ts';

/** What the door knows from the protocol (SMTP envelope, XFORWARD, HTTP headers, milter macros). */
export interface Envelope {
  ip?: string;
  helo?: string;
  from?: string;
  rcpt?: string[];
  queueId?: string;
}

export interface Look {
  /** Lowercased header name → raw values in order (unfolded, not decoded). */
  headers: HeaderIndex;
  headerCount: number;
  /** Byte offset where the body starts (after the blank line), or the length when there is none. */
  bodyOffset: number;
  /** True when no blank line separates headers from body. */
  noSeparator: boolean;
  envelopeFrom: string;
  from: string;
  /** Address part of From, lowercased. */
  fromAddress: string;
  returnPath: string;
  /** The sender used for lists: envelope sender, else From address; lowercased. */
  sender: string;
  senderDomain: string;
  fromDomain: string;
  subject: string;
  messageId: string;
  date: string;
  listId: string;
  listUnsubscribe: string;
  relayIp: string;
  helo: string;
  recipients: string[];
  queueId?: string;
  contentKey: string;
  size: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** Finds the end of the header block: index of the blank line, and where the body starts. */
function findHeaderEnd(buf: Uint8Array, max: number): { end: number; body: number } | null {
  const n = Math.min(buf.length, max);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  // Four bytes at a time: a word without a 0x0A byte (the "has zero byte" bit trick on w ^ 0x0A0A0A0A)
  // is skipped whole; headers are mostly such words, so this beats both a byte loop and indexOf calls.
  // In a word with a newline, the trick's mask flags every 0x0A byte (and may flag bytes above the
  // first one falsely, hence the check), so only flagged bytes are looked at.
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const x = dv.getUint32(i, true) ^ 0x0a0a0a0a;
    let m = (x - 0x01010101) & ~x & 0x80808080;
    while (m !== 0) {
      const j = i + ((31 - Math.clz32(m & -m)) >> 3);
      m &= m - 1;
      if (buf[j] !== 10) continue;
      const next = buf[j + 1];
      if (next === 10) return { end: j, body: j + 2 };
      if (next === 13 && buf[j + 2] === 10) return { end: j, body: j + 3 };
    }
  }
  for (; i < n; i++) {
    if (buf[i] !== 10) continue;
    const next = buf[i + 1];
    if (next === 10) return { end: i, body: i + 2 };
    if (next === 13 && buf[i + 2] === 10) return { end: i, body: i + 3 };
  }
  return null;
}

/**
 * The header block, indexed by position. Names and values are not cut out while indexing: a message
 * has forty-odd headers and the early path asks for about fifteen names, so a slice, a toLowerCase
 * and a Map entry per header cost more (bench/early) than comparing the asked-for name against each
 * header's name in place. Values are cut out and unfolded only when asked for, and kept.
 */
export class HeaderIndex {
  /** Per field: name start, name end (trailing blanks trimmed), value start, value end, in `text`. */
  private readonly spans: number[] = [];
  private values: Map<string, string[]> | undefined;
  readonly count: number;

  constructor(private readonly text: string) {
    let count = 0;
    let pos = 0;
    // An mbox "From " envelope line before the headers is not a header.
    if (text.startsWith('From ')) pos = text.indexOf('\n') + 1 || text.length;
    const len = text.length;
    let open = -1; // span slot of the field whose continuation lines we are reading
    while (pos < len) {
      let nl = text.indexOf('\n', pos);
      if (nl < 0) nl = len;
      const c0 = text.charCodeAt(pos);
      if (c0 === 32 || c0 === 9) {
        if (open >= 0) this.spans[open + 3] = nl;
      } else {
        open = -1;
        if (count >= limits.maxHeaderCount) break;
        const colon = text.indexOf(':', pos);
        if (colon > pos && colon < nl) {
          let nameEnd = colon;
          while (nameEnd > pos && (text.charCodeAt(nameEnd - 1) === 32 || text.charCodeAt(nameEnd - 1) === 9)) nameEnd--;
          // A name with spaces inside is junk ("Dear friend: ..." in a headerless message): ignored.
          let i = pos;
          while (i < nameEnd && text.charCodeAt(i) !== 32 && text.charCodeAt(i) !== 9) i++;
          if (nameEnd > pos && i === nameEnd) {
            open = this.spans.length;
            this.spans.push(pos, nameEnd, colon + 1, nl);
            count++;
          }
        }
      }
      pos = nl + 1;
    }
    this.count = count;
  }

  /** Slot of the first field at or after `from` named `name` (lowercased), or -1. */
  private find(name: string, from: number): number {
    const spans = this.spans;
    const text = this.text;
    const n = name.length;
    for (let s = from; s < spans.length; s += 4) {
      const start = spans[s] as number;
      if ((spans[s + 1] as number) - start !== n) continue;
      let i = 0;
      for (; i < n; i++) {
        let c = text.charCodeAt(start + i);
        if (c >= 65 && c <= 90) c += 32;
        if (c !== name.charCodeAt(i)) break;
      }
      if (i === n) return s;
    }
    return -1;
  }

  has(name: string): boolean {
    return this.find(name, 0) >= 0;
  }

  /** Unfolded, trimmed values of a header (lowercased name) in order, bounded in length. */
  get(name: string): string[] | undefined {
    const cached = this.values?.get(name);
    if (cached) return cached;
    let slot = this.find(name, 0);
    if (slot < 0) return undefined;
    const out: string[] = [];
    for (; slot >= 0; slot = this.find(name, slot + 4)) out.push(this.valueAt(slot));
    (this.values ??= new Map()).set(name, out);
    return out;
  }

  /** The first value of a header, as get(name)?.[0], without cutting out the others. */
  first(name: string): string | undefined {
    const cached = this.values?.get(name);
    if (cached) return cached[0];
    const slot = this.find(name, 0);
    return slot < 0 ? undefined : this.valueAt(slot);
  }

  /** Visits the values of a header in order until `visit` returns true; cuts out only those visited. */
  some(name: string, visit: (value: string) => boolean): boolean {
    for (let slot = this.find(name, 0); slot >= 0; slot = this.find(name, slot + 4)) if (visit(this.valueAt(slot))) return true;
    return false;
  }

  private valueAt(slot: number): string {
    const max = limits.maxHeaderValueBytes;
    const start = this.spans[slot + 2] as number;
    const end = Math.min(this.spans[slot + 3] as number, start + max * 4);
    let v = this.text.slice(start, end);
    if (v.indexOf('\n') >= 0) v = v.replace(/\r?\n[ \t]*/g, ' ');
    v = v.trim();
    return v.length > max ? v.slice(0, max) : v;
  }

  /** Lowercased names in order of first appearance. */
  names(): IterableIterator<string> {
    const seen = new Set<string>();
    for (let s = 0; s < this.spans.length; s += 4) seen.add(this.text.slice(this.spans[s], this.spans[s + 1]).toLowerCase());
    return seen.values();
  }
}

/** Decodes RFC 2047 encoded words (=?charset?B|Q?...?=); unknown charsets fall back to UTF-8. */
export function decodeWords(value: string): string {
  if (!value.includes('=?')) return value;
  return value
    .replace(/(=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=)\s+(?==\?)/g, '$1')
    .replace(/=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=/g, (_m, charset: string, enc: string, text: string) => {
      let bytes: Uint8Array;
      try {
        if (enc === 'B' || enc === 'b') {
          const bin = atob(text.replace(/[^A-Za-z0-9+/]/g, '').padEnd(Math.ceil(text.length / 4) * 4, '='));
          bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
        } else {
          const s = text.replace(/_/g, ' ');
          const out: number[] = [];
          for (let i = 0; i < s.length; i++) {
            const c = s[i] as string;
            if (c === '=' && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 1, i + 3))) {
              out.push(parseInt(s.slice(i + 1, i + 3), 16));
              i += 2;
            } else out.push(c.charCodeAt(0) & 0xff);
          }
          bytes = Uint8Array.from(out);
        }
        return decodeCharset(bytes, charset);
      } catch {
        return text;
      }
    });
}

export function decodeCharset(bytes: Uint8Array, charset: string): string {
  const cs = charset.toLowerCase().replace(/\*.*$/, '');
  try {
    return new TextDecoder(cs, { fatal: false }).decode(bytes);
  } catch {
    return utf8.decode(bytes);
  }
}

/** Extracts the address from "Name <a@b>" or a bare address; lowercased; '' when there is none. */
export function addressOf(value: string): string {
  const angle = /<([^<>]*)>/.exec(value);
  const raw = angle ? angle[1] : value.replace(/\(.*?\)/g, '');
  const m = /[^\s<>"',;:]+@[^\s<>"',;:]+/.exec(raw ?? '');
  if (m) return m[0].toLowerCase();
  return (raw ?? '').trim().toLowerCase() === '' ? '' : angle ? (angle[1] ?? '').trim().toLowerCase() : '';
}

export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at >= 0 ? address.slice(at + 1).replace(/[>.\s]+$/, '').toLowerCase() : '';
}

const RECEIVED_IP = /\[((?:\d{1,3}\.){3}\d{1,3}|(?:IPv6:)?[0-9a-fA-F:.]*:[0-9a-fA-F:.]*)\]/;

/**
 * The relay IP: the caller's envelope IP when given (the MTA saw the connection), else the IP in the
 * first Received: header, top-down, whose sending host is not one of our trusted relays.
 */
function relayFromReceived(headers: HeaderIndex, trusted: readonly Cidr[]): string {
  // One Received value at a time: the answer is nearly always in the first, and cutting out and
  // unfolding the whole chain cost more than the search (bench/early).
  let relay = '';
  headers.some('received', (r) => {
    const fromPart = /\bfrom\b([\s\S]*?)(?:\bby\b|$)/i.exec(r);
    const m = RECEIVED_IP.exec(fromPart ? (fromPart[1] as string) : r);
    if (!m) return false;
    const ip = (m[1] as string).replace(/^IPv6:/i, '');
    const bytes = parseIp(ip);
    if (!bytes || trusted.some((c) => cidrContains(c, bytes))) return false;
    relay = ip;
    return true;
  });
  return relay;
}

export interface LookOptions {
  trustedRelays?: readonly Cidr[];
}

export function quickLook(raw: Uint8Array, envelope: Envelope = {}, options: LookOptions = {}): Look {
  const sep = findHeaderEnd(raw, limits.maxHeaderBytes);
  const headerEnd = sep ? sep.end : Math.min(raw.length, limits.maxHeaderBytes);
  const bodyOffset = sep ? sep.body : raw.length;
  const headers = new HeaderIndex(utf8.decode(raw.subarray(0, headerEnd)));
  const count = headers.count;

  const first = (name: string): string => headers.first(name) ?? '';
  const from = decodeWords(first('from'));
  const fromAddress = addressOf(from);
  const returnPath = addressOf(first('return-path'));
  const envelopeFrom = envelope.from !== undefined ? addressOf(envelope.from) || envelope.from.toLowerCase() : returnPath;
  const sender = envelopeFrom || fromAddress;
  const subject = decodeWords(first('subject'));
  const relayIp = envelope.ip || relayFromReceived(headers, options.trustedRelays ?? []);

  // The cache key covers what the classifier looks at: the body bytes and the headers that change
  // its answer. Message-ID, Date and Received are left out on purpose, so a campaign resent to many
  // recipients hits the cache. The body is hashed as it is (no whitespace folding): folding would
  // cost a byte-at-a-time loop on every message, and a CRLF/LF twin only costs one extra miss.
  const h = new Hasher().string(fromAddress).string(subject.trim().toLowerCase()).string(first('content-type').toLowerCase());
  h.bytes(raw, bodyOffset, raw.length);

  return {
    headers,
    headerCount: count,
    bodyOffset,
    noSeparator: !sep,
    envelopeFrom,
    from,
    fromAddress,
    returnPath,
    sender,
    senderDomain: domainOf(sender),
    fromDomain: domainOf(fromAddress),
    subject,
    messageId: first('message-id').trim(),
    date: first('date'),
    listId: first('list-id'),
    listUnsubscribe: first('list-unsubscribe'),
    relayIp,
    helo: envelope.helo ?? '',
    recipients: envelope.rcpt ?? [],
    queueId: envelope.queueId,
    contentKey: h.digest(),
    size: raw.length,
  };
}
