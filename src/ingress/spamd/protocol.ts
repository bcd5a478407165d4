// SPAMC/1.x wire format: the request head spamc sends and the replies spamd answers with. Pure
// functions over strings and bytes; the socket handling lives in ../spamd.ts.
import type { ErrorCode } from '../../core/errors.ts';
import type { SymbolHit, Verdict } from '../../core/verdict.ts';

/** sysexits.h, as spamd names them in its status lines. */
export const SYSEXITS = {
  EX_OK: 0,
  EX_DATAERR: 65,
  EX_UNAVAILABLE: 69,
  EX_TEMPFAIL: 75,
  EX_PROTOCOL: 76,
  EX_NOPERM: 77,
  EX_TIMEOUT: 79,
} as const;
export type ExitName = keyof typeof SYSEXITS;

export const METHODS = ['CHECK', 'SYMBOLS', 'REPORT', 'REPORT_IFSPAM', 'PROCESS', 'HEADERS', 'PING', 'SKIP', 'TELL'] as const;
export type Method = (typeof METHODS)[number];

/** spamd reads at most 255 header lines before calling it a denial-of-service attempt. */
export const MAX_REQUEST_HEADERS = 255;

export interface RequestHead {
  method: Method;
  /** Protocol version as a number (1.5 for "SPAMC/1.5"); replies differ below 1.3. */
  version: number;
  contentLength?: number;
  user?: string;
  compress: boolean;
  messageClass?: 'spam' | 'ham';
  set: { local: boolean; remote: boolean };
  remove: { local: boolean; remote: boolean };
}

/** A request the door refuses: the status line to send, then the connection closes. */
export class SpamdReject extends Error {
  constructor(
    readonly exit: ExitName,
    readonly line: string,
  ) {
    super(line);
    this.name = 'SpamdReject';
  }
}

/** What a client's bytes look like in a log or an error line: printable ASCII only, bounded. */
export function printable(s: string, max = 120): string {
  const clean = s.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > max ? `${clean.slice(0, max)}...` : clean;
}

export const protocolError = (detail: string): SpamdReject =>
  new SpamdReject('EX_PROTOCOL', `SPAMD/1.0 ${SYSEXITS.EX_PROTOCOL} Bad header line: ${detail}\r\n`);
export const unavailable = (detail: string): SpamdReject =>
  new SpamdReject('EX_UNAVAILABLE', `SPAMD/1.0 ${SYSEXITS.EX_UNAVAILABLE} Service Unavailable: ${detail}\r\n`);
export const timedOut = (detail: string): SpamdReject => new SpamdReject('EX_TIMEOUT', `SPAMD/1.0 ${SYSEXITS.EX_TIMEOUT} Timeout: ${detail}\r\n`);
/** Errors spamd itself never sends (it has no size limit and never defers); same line shape, named by code. */
export const failure = (exit: ExitName, detail: string): SpamdReject => new SpamdReject(exit, `SPAMD/1.0 ${SYSEXITS[exit]} ${exit} ${printable(detail, 300)}\r\n`);

const REQUEST_LINE = /^([A-Z_]+) SPAMC\/(\d{1,3}\.\d{1,3})$/;

/** Parses the first line; throws SpamdReject for anything that is not a known method of SPAMC/1.x. */
export function parseRequestLine(line: string): { method: Method; version: number } {
  const m = REQUEST_LINE.exec(line);
  if (!m || !(METHODS as readonly string[]).includes(m[1] as string)) throw protocolError(printable(line));
  return { method: m[1] as Method, version: Number(m[2]) };
}

/**
 * Applies the header lines after the request line. Names are matched without regard to case (spamd wants
 * "Content-length" exactly; being lenient here costs nothing). Unknown headers are ignored, as the protocol says.
 */
export function parseHeaders(method: Method, version: number, lines: string[]): RequestHead {
  const head: RequestHead = {
    method,
    version,
    compress: false,
    set: { local: false, remote: false },
    remove: { local: false, remote: false },
  };
  if (lines.length > MAX_REQUEST_HEADERS) throw protocolError('(too many headers)');
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw protocolError("(header not in 'Name: value' format)");
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    switch (name) {
      case 'content-length':
        if (!/^\d{1,15}$/.test(value)) throw protocolError('(Content-Length contains non-numeric bytes)');
        head.contentLength = Number(value);
        break;
      case 'user':
        if (/[\x00-\x1f\x7f]/.test(value)) throw protocolError('(User header contains control chars)');
        head.user = value;
        break;
      case 'compress':
        if (value.toLowerCase() !== 'zlib') throw protocolError(`(compression type not supported: ${printable(value, 40)})`);
        head.compress = true;
        break;
      case 'message-class': {
        const cls = value.toLowerCase();
        if (cls !== 'spam' && cls !== 'ham') throw protocolError('(Message-class header contains invalid class)');
        head.messageClass = cls;
        break;
      }
      case 'set':
        head.set = { local: /local/i.test(value), remote: /remote/i.test(value) };
        break;
      case 'remove':
        head.remove = { local: /local/i.test(value), remote: /remote/i.test(value) };
        break;
      default:
        break;
    }
  }
  return head;
}

/** Every FilterError code answered with one sysexits code, in one place. */
export function exitForError(code: ErrorCode): ExitName {
  switch (code) {
    case 'EMALFORMED':
    case 'ETOOLARGE':
      // Something about this message: retrying will not help (Postfix's pipe bounces on 65).
      return 'EX_DATAERR';
    case 'EPROTOCOL':
      return 'EX_PROTOCOL';
    case 'EAUTH':
      return 'EX_NOPERM';
    case 'ETIMEOUT':
    case 'EOVERLOAD':
    case 'EWORKER':
    case 'ENEXTHOP':
    case 'ESTORE':
    case 'EINTERNAL':
    case 'ECONFIG':
    case 'ERULES':
    case 'EMODEL':
      // Nothing wrong with the message: the MTA must keep it and ask again (never a silent pass).
      return 'EX_TEMPFAIL';
  }
}

/** spamd's score as it prints it: one decimal, and a ham never shown at or above the threshold. */
export function scoreText(score: number, required: number, spam: boolean): string {
  const s = fixed1(score);
  const r = fixed1(required);
  if (spam || Number(s) < Number(r)) return s;
  return fixed1(Number(r) - 0.1);
}

function fixed1(n: number): string {
  const t = (Math.round(n * 10) / 10).toFixed(1);
  return t === '-0.0' ? '0.0' : t;
}

type Scored = Pick<Verdict, 'spam' | 'score' | 'required' | 'symbols'>;

export function spamHeaderLine(v: Scored, method: Method): string {
  const word = method === 'REPORT_IFSPAM' ? (v.spam ? 'Yes' : 'No') : v.spam ? 'True' : 'False';
  return `Spam: ${word} ; ${scoreText(v.score, v.required, v.spam)} / ${fixed1(v.required)}`;
}

/** Rule names hit, sorted and comma-separated, as spamd's SYMBOLS body. */
export function symbolList(symbols: readonly SymbolHit[]): string {
  return [...new Set(symbols.map((s) => s.name))].sort().join(',');
}

/** The score column of the report table: one decimal below 10 points, none from 10 up. */
function pts(score: number): string {
  return (Math.abs(score) >= 10 ? Math.round(score).toFixed(0) : fixed1(score)).padStart(4);
}

/**
 * The REPORT body: a short explanation, then the points table in SpamAssassin's column layout
 * (" pts rule name  description"), which tools that read spamd reports split on.
 */
export function reportText(v: Scored, hostname: string): string {
  const rows = [...v.symbols]
    .sort((a, b) => Math.abs(b.score) - Math.abs(a.score) || a.name.localeCompare(b.name))
    .map((s) => `${pts(s.score)} ${s.name.padEnd(22)} ${oneLine(s.description ?? s.name)}`);
  const verdict = v.spam ? 'judged this message to be spam' : 'judged this message not to be spam';
  return [
    `The atlas-email filter on "${hostname}" has ${verdict}.`,
    '',
    `Content analysis details:   (${fixed1(v.score)} points, ${fixed1(v.required)} required)`,
    '',
    ' pts rule name              description',
    '---- ---------------------- --------------------------------------------------',
    ...rows,
    '',
    '',
  ].join('\n');
}

function oneLine(s: string): string {
  return printable(s.replace(/\s+/g, ' ').trim(), 200);
}

/** Status line + headers + body for the checking methods (CHECK, SYMBOLS, REPORT, REPORT_IFSPAM). */
export function checkReply(v: Scored, method: Method, version: number, hostname: string): Buffer {
  const status = 'SPAMD/1.1 0 EX_OK\r\n';
  const spam = spamHeaderLine(v, method);
  if (method === 'CHECK') return Buffer.from(`${status}${spam}\r\n\r\n`, 'latin1');
  let body = '';
  if (method === 'SYMBOLS') body = symbolList(v.symbols) + (version < 1.3 ? '\r\n' : '');
  else if (method === 'REPORT' || (method === 'REPORT_IFSPAM' && v.spam)) body = reportText(v, hostname);
  const bodyBytes = Buffer.from(body, 'utf8');
  const head = version >= 1.3 ? `${status}Content-length: ${bodyBytes.length}\r\n${spam}\r\n\r\n` : `${status}${spam}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), bodyBytes]);
}

/** Status line + headers for PROCESS and HEADERS, followed by the (rewritten) message bytes. */
export function messageReply(v: Scored, method: Method, version: number, message: Buffer): Buffer {
  const out = method === 'HEADERS' ? headerBlock(message) : message;
  let head: string;
  if (version >= 1.3) head = `SPAMD/1.1 0 EX_OK\r\nContent-length: ${out.length}\r\n${spamHeaderLine(v, method)}\r\n\r\n`;
  else if (version >= 1.2) head = `SPAMD/1.1 0 EX_OK\r\nContent-length: ${out.length}\r\n\r\n`;
  else head = 'SPAMD/1.0 0 EX_OK\r\n';
  return Buffer.concat([Buffer.from(head, 'latin1'), out]);
}

/** The header block up to and including the empty line that ends it (the whole message if there is none). */
function headerBlock(message: Buffer): Buffer {
  for (let i = message.indexOf(10); i >= 0 && i < message.length; i = message.indexOf(10, i + 1)) {
    if (message[i + 1] === 10) return message.subarray(0, i + 2);
    if (message[i + 1] === 13 && message[i + 2] === 10) return message.subarray(0, i + 3);
  }
  return message;
}

/** TELL's answer: which of the asked actions were done. spamd ends it with an extra empty line; so do we. */
export function tellReply(didSet: string[], didRemove: string[]): Buffer {
  let hdr = '';
  if (didSet.length) hdr += `DidSet: ${didSet.join(',')}\r\n`;
  if (didRemove.length) hdr += `DidRemove: ${didRemove.join(',')}\r\n`;
  return Buffer.from(`SPAMD/1.1 0 EX_OK\r\n${hdr}\r\n\r\n`, 'latin1');
}

export const PONG = Buffer.from('SPAMD/1.5 0 PONG\r\n', 'latin1');
