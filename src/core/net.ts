// IP address parsing and CIDR matching for relay IPs, allow/deny lists and trusted relays.

/** Parses IPv4 or IPv6 text into 16 bytes (IPv4 mapped as ::ffff:a.b.c.d); null when invalid. */
export function parseIp(text: string): Uint8Array | null {
  // A plain dotted quad, which is what the relay search and the rules pass nearly always, skips the
  // trim and the two replaces below; anything else that parseV4 refuses takes the general path.
  const c0 = text.charCodeAt(0);
  const quad = c0 >= 48 && c0 <= 57 && !text.includes(':') ? parseV4(text) : null;
  if (quad) return mappedV4(quad);
  const s = text.trim().replace(/^\[|\]$/g, '').replace(/^ipv6:/i, '');
  if (s.includes(':')) return parseV6(s);
  const v4 = parseV4(s);
  return v4 ? mappedV4(v4) : null;
}

function mappedV4(v4: Uint8Array): Uint8Array {
  const out = new Uint8Array(16);
  out[10] = 0xff;
  out[11] = 0xff;
  out.set(v4, 12);
  return out;
}

function parseV4(s: string): Uint8Array | null {
  // Hand-rolled: this runs for every Received header of every message, where a split and four
  // regex tests were a visible share of the quick look.
  const out = new Uint8Array(4);
  let part = 0;
  let digits = 0;
  let n = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 46;
    if (c >= 48 && c <= 57) {
      n = n * 10 + (c - 48);
      if (++digits > 3) return null;
    } else if (c === 46) {
      if (digits === 0 || n > 255 || part > 3) return null;
      out[part++] = n;
      n = 0;
      digits = 0;
    } else return null;
  }
  return part === 4 ? out : null;
}

function parseV6(s: string): Uint8Array | null {
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  let tail: Uint8Array | null = null;
  const lastColon = s.lastIndexOf(':');
  if (s.slice(lastColon + 1).includes('.')) {
    tail = parseV4(s.slice(lastColon + 1));
    if (!tail) return null;
    s = s.slice(0, lastColon) + ':0:0';
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const head = halves[0] ? (halves[0] as string).split(':') : [];
  const rest = halves.length === 2 && halves[1] ? (halves[1] as string).split(':') : [];
  const groups = halves.length === 2 ? head.length + rest.length : head.length;
  if (halves.length === 1 && groups !== 8) return null;
  if (halves.length === 2 && groups > 7) return null;
  const all = [...head, ...new Array(8 - groups).fill('0'), ...rest];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const g = all[i] as string;
    if (!/^[0-9a-f]{1,4}$/i.test(g)) return null;
    const n = parseInt(g, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  }
  if (tail) out.set(tail, 12);
  return out;
}

export interface Cidr {
  bytes: Uint8Array;
  bits: number;
  text: string;
}

/** Parses "a.b.c.d/n", "v6/n" or a bare address (a /32 or /128). */
export function parseCidr(text: string): Cidr | null {
  const [addr, len] = text.split('/');
  const bytes = parseIp(addr ?? '');
  if (!bytes) return null;
  const isV4 = !(addr as string).includes(':');
  let bits = 128;
  if (len !== undefined) {
    if (!/^\d{1,3}$/.test(len)) return null;
    const n = Number(len);
    if (n > (isV4 ? 32 : 128)) return null;
    bits = isV4 ? n + 96 : n;
  }
  return { bytes, bits, text };
}

export function cidrContains(cidr: Cidr, ip: Uint8Array): boolean {
  const full = cidr.bits >> 3;
  for (let i = 0; i < full; i++) if (cidr.bytes[i] !== ip[i]) return false;
  const rem = cidr.bits & 7;
  if (rem === 0) return true;
  const mask = (0xff << (8 - rem)) & 0xff;
  return ((cidr.bytes[full] as number) & mask) === ((ip[full] as number) & mask);
}

export function inAnyCidr(list: readonly Cidr[], ipText: string): boolean {
  const ip = parseIp(ipText);
  if (!ip) return false;
  return list.some((c) => cidrContains(c, ip));
}
