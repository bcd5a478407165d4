// Full MIME parse for classification: headers, the text of plain and HTML parts, and the shape of the
// message (parts, attachments). Hand-written rather than mailparser or postal-mime because it only
// extracts what the model needs, works on one latin1 view of the bytes (string offsets equal byte
// offsets), and measured several times faster (bench/README.md). Runtime-neutral; never throws:
// anything it cannot read is skipped and counted as a defect.
import { limits } from './limits.ts';

export interface Header {
  /** Lower-cased name. */
  name: string;
  /** Unfolded raw value (latin1 view; RFC 2047 words not decoded, see decodeWords). */
  value: string;
}

export interface TextPart {
  html: boolean;
  text: string;
}

export interface ParsedMessage {
  headers: Header[];
  /** Decoded Subject. */
  subject: string;
  parts: TextPart[];
  /** Attachment and other non-text parts: content types and file names, lower-cased. */
  attachments: { type: string; name: string }[];
  /** Number of MIME parts seen (multipart containers included). */
  partCount: number;
  /** Things that were wrong or cut (broken encoding, too deep, too many parts, unknown charset). */
  defects: string[];
}

const latin1 = new TextDecoder('latin1');
type Decoder = InstanceType<typeof TextDecoder>;

// WHATWG "latin1" is windows-1252: bytes 0x80-0x9f become other code points. This table turns a
// character of the latin1 view back into its byte.
const BYTE_OF = new Uint8Array(0x2123);
{
  const all = new Uint8Array(256);
  for (let i = 0; i < 256; i++) all[i] = i;
  const view = latin1.decode(all);
  for (let i = 0; i < 256; i++) BYTE_OF[view.charCodeAt(i)] = i;
}
function byteOf(c: number): number {
  return c < 0x2123 ? (BYTE_OF[c] as number) : 0x3f;
}
const decoders = new Map<string, Decoder | null>();

/** A decoder for the charset, or null when the runtime does not know it (then we fall back). */
function decoderFor(charset: string): Decoder | null {
  let d = decoders.get(charset);
  if (d === undefined) {
    try {
      d = new TextDecoder(charset);
    } catch {
      d = null;
    }
    // Charset names come from the message: bound the cache so hostile names cannot grow it.
    if (decoders.size < 256) decoders.set(charset, d);
  }
  return d;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * For text with no usable charset label (none, "us-ascii" on 8-bit bytes, one the runtime does not
 * know): UTF-8 when the bytes are valid UTF-8, else windows-1252, the two that unlabelled mail uses.
 */
function guessDecode(bytes: Uint8Array): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return latin1.decode(bytes);
  }
}

export function decodeBytes(bytes: Uint8Array, charset: string, defects?: string[]): string {
  if (!charset || charset === 'us-ascii' || charset === 'ascii') return guessDecode(bytes);
  const d = decoderFor(charset);
  if (d) return d.decode(bytes);
  defects?.push('charset');
  return guessDecode(bytes);
}

/** Unfolds and splits a header block (latin1 string) into headers, bounded by limits. */
export function parseHeaders(block: string): Header[] {
  const out: Header[] = [];
  const end = Math.min(block.length, limits.maxHeaderBytes);
  let i = 0;
  let cur: Header | null = null;
  while (i < end && out.length < limits.maxHeaderCount) {
    let nl = block.indexOf('\n', i);
    if (nl < 0 || nl > end) nl = end;
    let line = block.slice(i, nl);
    if (line.endsWith('\r')) line = line.slice(0, -1);
    i = nl + 1;
    if ((line.startsWith(' ') || line.startsWith('\t')) && cur) {
      if (cur.value.length < limits.maxHeaderValueBytes) cur.value += ' ' + line.trim();
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) {
      cur = null;
      continue;
    }
    cur = { name: line.slice(0, colon).trim().toLowerCase(), value: line.slice(colon + 1).trim() };
    out.push(cur);
  }
  return out;
}

export function header(headers: readonly Header[], name: string): string | undefined {
  for (const h of headers) if (h.name === name) return h.value;
  return undefined;
}

/** Reads a parameter such as charset or boundary from a structured header value. */
export function param(value: string, name: string): string {
  const re = new RegExp(`(?:^|;)\\s*${name}\\*?=\\s*(?:"([^"]*)"|([^;\\s]*))`, 'i');
  const m = re.exec(value);
  if (!m) return '';
  let v = m[1] ?? m[2] ?? '';
  // RFC 2231 extended value: charset'lang'percent-encoded; the name is what matters here.
  const q = v.indexOf("''");
  if (q >= 0 && /\*=/.test(m[0])) v = safeUri(v.slice(q + 2));
  return v;
}

function safeUri(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Decodes RFC 2047 encoded words (=?charset?B|Q?...?=); anything malformed stays as is. */
export function decodeWords(value: string): string {
  if (!value.includes('=?')) return value;
  return value
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?([^?\s]{1,40})\?([bBqQ])\?([^?\s]*)\?=/g, (whole, cs: string, enc: string, data: string) => {
      const bytes = enc === 'b' || enc === 'B' ? base64Bytes(data) : qpBytes(data.replace(/_/g, ' '), false);
      const star = cs.indexOf('*');
      const d = decoderFor((star >= 0 ? cs.slice(0, star) : cs).toLowerCase());
      return d ? d.decode(bytes) : whole;
    });
}

/** A header value as text: raw 8-bit bytes read as UTF-8 (what senders mean today), then RFC 2047 words. */
export function headerText(value: string): string {
  let v = value;
  if (/[^\x00-\x7f]/.test(v)) {
    const bytes = new Uint8Array(v.length);
    for (let i = 0; i < v.length; i++) bytes[i] = byteOf(v.charCodeAt(i));
    v = decoderFor('utf-8')!.decode(bytes);
  }
  return decodeWords(v);
}

const B64 = new Int16Array(256).fill(-1);
for (let i = 0; i < 64; i++) B64['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.charCodeAt(i)] = i;
B64['-'.charCodeAt(0)] = 62;
B64['_'.charCodeAt(0)] = 63;

/** Lenient base64: skips anything outside the alphabet (line breaks, junk), stops at padding. */
export function base64Bytes(s: string, start = 0, end = s.length): Uint8Array {
  const out = new Uint8Array(Math.ceil(((end - start) * 3) / 4) + 3);
  let n = 0;
  let acc = 0;
  let bits = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 61) {
      // '=' ends this base64 run; some broken senders concatenate runs, so skip padding and continue.
      bits = 0;
      acc = 0;
      continue;
    }
    const v = c < 256 ? (B64[c] as number) : -1;
    if (v < 0) continue;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (acc >> bits) & 0xff;
    }
  }
  return out.subarray(0, n);
}

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/** Quoted-printable to bytes; a broken escape is kept literally. */
export function qpBytes(s: string, body = true, start = 0, end = s.length): Uint8Array {
  const out = new Uint8Array(end - start);
  let n = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 61 && i + 1 < end) {
      const a = s.charCodeAt(i + 1);
      if (body && (a === 10 || a === 13)) {
        // Soft line break.
        i += a === 13 && s.charCodeAt(i + 2) === 10 ? 2 : 1;
        continue;
      }
      const h = i + 2 < end ? hexVal(a) : -1;
      const l = h >= 0 ? hexVal(s.charCodeAt(i + 2)) : -1;
      if (l >= 0) {
        out[n++] = (h << 4) | l;
        i += 2;
        continue;
      }
    }
    out[n++] = c < 128 ? c : byteOf(c);
  }
  return out.subarray(0, n);
}

interface Ctx {
  raw: Uint8Array;
  s: string;
  msg: ParsedMessage;
  textBytes: number;
}

/** Finds the blank line ending a header block starting at `start`; returns [headerEnd, bodyStart]. */
function splitHead(s: string, start: number, end: number): [number, number] {
  let i = start;
  // A part with no headers starts with its blank line.
  if (s.charCodeAt(i) === 10) return [i, i + 1];
  if (s.charCodeAt(i) === 13 && s.charCodeAt(i + 1) === 10) return [i, i + 2];
  for (;;) {
    const nl = s.indexOf('\n', i);
    if (nl < 0 || nl >= end) return [end, end];
    const next = s.charCodeAt(nl + 1);
    if (next === 10) return [nl, nl + 2];
    if (next === 13 && s.charCodeAt(nl + 2) === 10) return [nl, nl + 3];
    i = nl + 1;
  }
}

/**
 * Next delimiter line: "--boundary" at the start of a line, followed by "--", white space or the line
 * end (so boundary "b1" does not match "--b10").
 */
function findDelimiter(s: string, delim: string, from: number, end: number): number {
  let pos = s.indexOf(delim, from);
  while (pos >= 0 && pos < end) {
    const c = s.charCodeAt(pos + delim.length);
    const startsLine = pos === 0 || s.charCodeAt(pos - 1) === 10;
    if (startsLine && (c === 13 || c === 10 || c === 32 || c === 9 || Number.isNaN(c) || (c === 45 && s.charCodeAt(pos + delim.length + 1) === 45))) return pos;
    pos = s.indexOf(delim, pos + delim.length);
  }
  return -1;
}

function parsePart(ctx: Ctx, start: number, end: number, depth: number, defaultType: string): void {
  const { msg, s } = ctx;
  if (msg.partCount >= limits.maxMimeParts) {
    if (!msg.defects.includes('parts')) msg.defects.push('parts');
    return;
  }
  msg.partCount++;
  const [hEnd, bStart] = splitHead(s, start, end);
  const headers = depth === 0 ? msg.headers : parseHeaders(s.slice(start, hEnd));
  const ctRaw = header(headers, 'content-type') ?? defaultType;
  const semi = ctRaw.indexOf(';');
  const type = (semi >= 0 ? ctRaw.slice(0, semi) : ctRaw).trim().toLowerCase() || 'text/plain';
  const cte = (header(headers, 'content-transfer-encoding') ?? '').trim().toLowerCase();
  const disposition = (header(headers, 'content-disposition') ?? '').toLowerCase();

  if (type.startsWith('multipart/')) {
    const boundary = param(ctRaw, 'boundary');
    if (!boundary) {
      msg.defects.push('boundary');
      return;
    }
    if (depth >= limits.maxMimeDepth) {
      if (!msg.defects.includes('depth')) msg.defects.push('depth');
      return;
    }
    const sub = type === 'multipart/digest' ? 'message/rfc822' : 'text/plain';
    const delim = '--' + boundary;
    const find = (from: number) => findDelimiter(s, delim, from, end);
    let pos = find(bStart);
    while (pos >= 0) {
      // Past the part limit the rest is not parsed, so it need not be walked either.
      if (msg.partCount >= limits.maxMimeParts) {
        if (!msg.defects.includes('parts')) msg.defects.push('parts');
        return;
      }
      const after = pos + delim.length;
      if (s.startsWith('--', after)) return;
      const lineEnd = s.indexOf('\n', after);
      if (lineEnd < 0 || lineEnd >= end) return;
      const partStart = lineEnd + 1;
      const next = find(partStart);
      const partEnd = next < 0 || next >= end ? end : next;
      // The line break before the delimiter belongs to the delimiter.
      let pe = partEnd;
      if (pe > partStart && s.charCodeAt(pe - 1) === 10) pe--;
      if (pe > partStart && s.charCodeAt(pe - 1) === 13) pe--;
      parsePart(ctx, partStart, pe, depth + 1, sub);
      if (next < 0 || next >= end) {
        msg.defects.push('unterminated');
        return;
      }
      pos = next;
    }
    return;
  }

  if (type === 'message/rfc822' || type === 'message/global') {
    if (depth >= limits.maxMimeDepth) {
      if (!msg.defects.includes('depth')) msg.defects.push('depth');
      return;
    }
    if (cte === 'base64' || cte === 'quoted-printable') {
      // An encoded inner message: counts as an attachment, not worth decoding for text.
      msg.attachments.push({ type, name: '' });
      return;
    }
    // The inner message's headers stay with its part; the outer headers are the message's.
    parsePart(ctx, bStart, end, depth + 1, 'text/plain');
    return;
  }

  const name = (param(disposition, 'filename') || param(ctRaw, 'name')).toLowerCase();
  const isText = type === 'text/plain' || type === 'text/html' || type === 'text/enriched' || type === 'text';
  if (!isText || disposition.startsWith('attachment')) {
    msg.attachments.push({ type, name: decodeWords(name) });
    if (!isText) return;
  }
  const budget = limits.maxTextBytes - ctx.textBytes;
  if (budget <= 0) {
    if (!msg.defects.includes('text')) msg.defects.push('text');
    return;
  }
  const charset = param(ctRaw, 'charset').toLowerCase().replace(/^"|"$/g, '');
  let bytes: Uint8Array;
  const stop = Math.min(end, bStart + budget * 2);
  if (cte === 'base64') bytes = base64Bytes(s, bStart, stop);
  else if (cte === 'quoted-printable') bytes = qpBytes(s, true, bStart, stop);
  else bytes = ctx.raw.subarray(bStart, Math.min(end, bStart + budget));
  if (bytes.length > budget) bytes = bytes.subarray(0, budget);
  ctx.textBytes += bytes.length;
  let text = decodeBytes(bytes, charset, msg.defects);
  if (text.includes('\0')) text = text.replace(/\0/g, ' ');
  msg.parts.push({ html: type === 'text/html', text });
}

export function parseMessage(raw: Uint8Array): ParsedMessage {
  const msg: ParsedMessage = { headers: [], subject: '', parts: [], attachments: [], partCount: 0, defects: [] };
  const s = latin1.decode(raw);
  let start = 0;
  // An mbox "From " envelope line is not a header.
  if (s.startsWith('From ')) start = s.indexOf('\n') + 1 || s.length;
  const [hEnd] = splitHead(s, start, s.length);
  msg.headers = parseHeaders(s.slice(start, hEnd));
  msg.subject = headerText(header(msg.headers, 'subject') ?? '');
  const ctx: Ctx = { raw, s, msg, textBytes: 0 };
  parsePart(ctx, start, s.length, 0, 'text/plain');
  return msg;
}
