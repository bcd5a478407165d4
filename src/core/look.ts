// Quick look: the facts an early verdict needs, read from the header block only.
// Cheap by design — no MIME parse, no body decoding beyond hashing — because it runs for every
// message before anything else and is most of the cost of a cache hit.
import { Hasher } from './hash.ts';
import { limits } from './limits.ts';
import { type Cidr, inAnyCidr, parseIp } from './net.ts';

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
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const x = dv.getUint32(i, true) ^ 0x0a0a0a0a;
    if (((x - 0x01010101) & ~x & 0x80808080) === 0) continue;
    for (let j = i; j < i + 4; j++) {
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
 * The header block, indexed by lowercased name. Values are cut out and unfolded only when asked for:
 * most of a message's forty-odd headers (Received chains, DKIM signatures) are never read on the early
 * path, and building their strings was most of the quick look's cost.
 */
export class HeaderIndex {
  private readonly fields = new Map<string, number[]>();
  /** value start and end offsets in `text`, two per field */
  private readonly spans: number[] = [];
  private readonly values = new Map<string, string[]>();
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
        if (open >= 0) this.spans[open + 1] = nl;
      } else {
        open = -1;
        if (count >= limits.maxHeaderCount) break;
        const colon = text.indexOf(':', pos);
        if (colon > pos && colon < nl) {
          let nameEnd = colon;
          while (nameEnd > pos && (text.charCodeAt(nameEnd - 1) === 32 || text.charCodeAt(nameEnd - 1) === 9)) nameEnd--;
          const key = text.slice(pos, nameEnd);
          // A name with spaces inside is junk ("Dear friend: ..." in a headerless message): ignored.
          if (key.length > 0 && key.indexOf(' ') < 0 && key.indexOf('\t') < 0) {
            const name = key.toLowerCase();
            open = this.spans.length;
            this.spans.push(colon + 1, nl);
            const list = this.fields.get(name);
            if (list) list.push(open);
            else this.fields.set(name, [open]);
            count++;
          }
        }
      }
      pos = nl + 1;
    }
    this.count = count;
  }

  has(name: string): boolean {
    return this.fields.has(name);
  }

  /** Unfolded, trimmed values of a header (lowercased name) in order, bounded in length. */
  get(name: string): string[] | undefined {
    const cached = this.values.get(name);
    if (cached) return cached;
    const slots = this.fields.get(name);
    if (!slots) return undefined;
    const max = limits.maxHeaderValueBytes;
    const out = slots.map((i) => {
      const start = this.spans[i] as number;
      const end = Math.min(this.spans[i + 1] as number, start + max * 4);
      let v = this.text.slice(start, end);
      if (v.indexOf('\n') >= 0) v = v.replace(/\r?\n[ \t]*/g, ' ');
      v = v.trim();
      return v.length > max ? v.slice(0, max) : v;
    });
    this.values.set(name, out);
    return out;
  }

  names(): IterableIterator<string> {
    return this.fields.keys();
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
function relayFromReceived(received: readonly string[], trusted: readonly Cidr[]): string {
  for (const r of received) {
    const fromPart = /\bfrom\b([\s\S]*?)(?:\bby\b|$)/i.exec(r);
    const m = RECEIVED_IP.exec(fromPart ? (fromPart[1] as string) : r);
    if (!m) continue;
    const ip = (m[1] as string).replace(/^IPv6:/i, '');
    if (!parseIp(ip)) continue;
    if (inAnyCidr(trusted, ip)) continue;
    return ip;
  }
  return '';
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

  const first = (name: string): string => headers.get(name)?.[0] ?? '';
  const from = decodeWords(first('from'));
  const fromAddress = addressOf(from);
  const returnPath = addressOf(first('return-path'));
  const envelopeFrom = envelope.from !== undefined ? addressOf(envelope.from) || envelope.from.toLowerCase() : returnPath;
  const sender = envelopeFrom || fromAddress;
  const subject = decodeWords(first('subject'));
  const relayIp = envelope.ip || relayFromReceived(headers.get('received') ?? [], options.trustedRelays ?? []);

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
