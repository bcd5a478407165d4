// The milter wire protocol (version 6, as Postfix and Sendmail speak it): length-prefixed packets,
// the command and reply letters, and the negotiation bits. Framing is bounded: a packet longer than
// MAX_PACKET is refused, so a stray HTTP request ("GET " = 1.2 GB) closes the connection instead of
// making us wait for a gigabyte.
import { FilterError } from '../../core/errors.ts';
import { limits } from '../../core/limits.ts';

export const MILTER_VERSION = 6;

export const MAX_PACKET = limits.milterMaxPacketBytes;

export const Cmd = {
  ABORT: 'A',
  BODY: 'B',
  CONNECT: 'C',
  MACRO: 'D',
  EOB: 'E',
  HELO: 'H',
  QUIT_NC: 'K',
  HEADER: 'L',
  MAIL: 'M',
  EOH: 'N',
  OPTNEG: 'O',
  QUIT: 'Q',
  RCPT: 'R',
  DATA: 'T',
  UNKNOWN: 'U',
} as const;

export const Reply = {
  ADDHEADER: 'h',
  CHGHEADER: 'm',
  QUARANTINE: 'q',
  ACCEPT: 'a',
  CONTINUE: 'c',
  REJECT: 'r',
  TEMPFAIL: 't',
  REPLYCODE: 'y',
  OPTNEG: 'O',
} as const;

/** SMFIF_*: what the milter may change. We ask only for what we use. */
export const Action = {
  ADDHDRS: 0x01,
  CHGBODY: 0x02,
  ADDRCPT: 0x04,
  DELRCPT: 0x08,
  CHGHDRS: 0x10,
  QUARANTINE: 0x20,
} as const;

/** SMFIP_*: events the MTA may skip, and events it need not wait a reply for. */
export const Proto = {
  NOCONNECT: 0x1,
  NOHELO: 0x2,
  NOMAIL: 0x4,
  NORCPT: 0x8,
  NOBODY: 0x10,
  NOHDRS: 0x20,
  NOEOH: 0x40,
  NR_HDR: 0x80,
  NOUNKNOWN: 0x100,
  NODATA: 0x200,
  SKIP: 0x400,
  RCPT_REJ: 0x800,
  NR_CONN: 0x1000,
  NR_HELO: 0x2000,
  NR_MAIL: 0x4000,
  NR_RCPT: 0x8000,
  NR_DATA: 0x10000,
  NR_UNKN: 0x20000,
  NR_EOH: 0x40000,
  NR_BODY: 0x80000,
  HDR_LEADSPC: 0x100000,
} as const;

/** We want: connection facts, envelope, headers, body. We never judge before end-of-body. */
export const WANTED_ACTIONS = Action.ADDHDRS | Action.CHGHDRS | Action.QUARANTINE;
/**
 * No reply is asked for headers and body chunks: Postfix streams those in a burst. Every event after
 * which Postfix waits on its SMTP client (connect, HELO, MAIL, RCPT, DATA) does get our "continue":
 * without it Postfix's small macro packet sat un-ACKed, and its next packets waited out the kernel's
 * delayed ACK behind Nagle — 40 ms per message, a quarter of Postfix's own throughput (bench/milter).
 */
export const WANTED_PROTOCOL = Proto.NOUNKNOWN | Proto.NR_UNKN | Proto.NR_HDR | Proto.NR_EOH | Proto.NR_BODY;

/** Which command each no-reply bit silences. */
export const NO_REPLY_BIT: Record<string, number> = {
  [Cmd.CONNECT]: Proto.NR_CONN,
  [Cmd.HELO]: Proto.NR_HELO,
  [Cmd.MAIL]: Proto.NR_MAIL,
  [Cmd.RCPT]: Proto.NR_RCPT,
  [Cmd.DATA]: Proto.NR_DATA,
  [Cmd.UNKNOWN]: Proto.NR_UNKN,
  [Cmd.HEADER]: Proto.NR_HDR,
  [Cmd.EOH]: Proto.NR_EOH,
  [Cmd.BODY]: Proto.NR_BODY,
};

export interface Packet {
  cmd: string;
  data: Buffer;
}

/** Splits a byte stream into packets; throws EPROTOCOL on a length that cannot be a milter packet. */
export class PacketReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Packet[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: Packet[] = [];
    while (this.buf.length >= 4) {
      const len = this.buf.readUInt32BE(0);
      if (len === 0 || len > MAX_PACKET) {
        throw new FilterError('EPROTOCOL', `milter packet length ${len} is out of range (1-${MAX_PACKET}); not a milter client?`);
      }
      if (this.buf.length < 4 + len) break;
      out.push({ cmd: String.fromCharCode(this.buf[4] as number), data: this.buf.subarray(5, 4 + len) });
      this.buf = this.buf.subarray(4 + len);
    }
    return out;
  }
}

export function packet(cmd: string, data: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(data.length + 1, 0);
  head[4] = cmd.charCodeAt(0);
  return Buffer.concat([head, data]);
}

/** NUL-terminated strings, as milter packs its arguments. */
export function cstrings(data: Buffer): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] === 0) {
      out.push(data.toString('latin1', start, i));
      start = i + 1;
    }
  }
  if (start < data.length) out.push(data.toString('latin1', start));
  return out;
}

export function cstr(...parts: string[]): Buffer {
  return Buffer.concat(parts.map((p) => Buffer.concat([Buffer.from(p, 'latin1'), Buffer.from([0])])));
}

export interface OptNeg {
  version: number;
  actions: number;
  protocol: number;
}

export function parseOptNeg(data: Buffer): OptNeg {
  if (data.length < 12) throw new FilterError('EPROTOCOL', `milter option negotiation is ${data.length} bytes, expected 12`);
  return { version: data.readUInt32BE(0), actions: data.readUInt32BE(4), protocol: data.readUInt32BE(8) };
}

export function optNegReply(o: OptNeg): Buffer {
  const d = Buffer.alloc(12);
  d.writeUInt32BE(o.version, 0);
  d.writeUInt32BE(o.actions, 4);
  d.writeUInt32BE(o.protocol, 8);
  return packet(Reply.OPTNEG, d);
}

export interface ConnectInfo {
  host: string;
  family: string;
  port: number;
  address: string;
}

export function parseConnect(data: Buffer): ConnectInfo {
  const nul = data.indexOf(0);
  const host = data.toString('latin1', 0, nul < 0 ? data.length : nul);
  if (nul < 0 || nul + 1 >= data.length) return { host, family: 'U', port: 0, address: '' };
  const family = String.fromCharCode(data[nul + 1] as number);
  if (family === 'U' || nul + 4 > data.length) return { host, family, port: 0, address: '' };
  const port = data.readUInt16BE(nul + 2);
  const address = cstrings(data.subarray(nul + 4))[0] ?? '';
  return { host, family, port, address };
}

/** Macro packet: the command letter they belong to, then name/value pairs. */
export function parseMacros(data: Buffer): { for: string; macros: Record<string, string> } {
  const forCmd = data.length ? String.fromCharCode(data[0] as number) : '';
  const list = cstrings(data.subarray(1));
  const macros: Record<string, string> = {};
  for (let i = 0; i + 1 < list.length; i += 2) macros[list[i] as string] = list[i + 1] as string;
  return { for: forCmd, macros };
}

/** A reply text safe for SMFIR_REPLYCODE: one line, no NUL, no % (the MTA formats it). */
export function replyText(code: string, text: string): Buffer {
  const clean = text.replace(/[\r\n\0]+/g, ' ').replace(/%/g, 'pct').slice(0, 400);
  return packet(Reply.REPLYCODE, cstr(`${code} ${clean}`));
}

export function addHeader(name: string, value: string): Buffer {
  return packet(Reply.ADDHEADER, cstr(name, value));
}

/** Deletes the index-th (1-based) header of that name: a change to an empty value. */
export function deleteHeader(name: string, index: number): Buffer {
  const i = Buffer.alloc(4);
  i.writeUInt32BE(index, 0);
  return packet(Reply.CHGHEADER, Buffer.concat([i, cstr(name, '')]));
}
