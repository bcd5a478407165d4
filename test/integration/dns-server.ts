// A real authoritative DNS server on loopback (dns2, UDP and TCP on one port) serving a test zone, plus
// the two broken servers the temperror paths need: one that never answers and a port where nothing listens.
import { createSocket } from 'node:dgram';
import { createServer as createTcpServer } from 'node:net';
import dns2 from 'dns2';

const { Packet } = dns2;

/** Name (lower case, no trailing dot) → record type → answers. TXT answers are lists of strings. */
export type Zone = Record<string, { TXT?: string[][]; A?: string[]; AAAA?: string[]; MX?: { exchange: string; priority: number }[] }>;

export interface ZoneServer {
  /** "127.0.0.1:port", for Resolver.setServers and config.auth.dnsServers. */
  address: string;
  port: number;
  zone: Zone;
  /** Queries seen, "TYPE name". */
  queries: string[];
  /** Names whose queries are dropped (the server stalls on them). */
  stall: Set<string>;
  close(): Promise<void>;
}

/** Splits a long TXT value into 255-byte character-strings, as zone files do for DKIM keys. */
export function txt(value: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < value.length; i += 255) out.push(value.slice(i, i + 255));
  return out;
}

/** A port free for both UDP and TCP on 127.0.0.1 (the resolver uses the same number for both). */
async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const udp = createSocket('udp4');
    const port = await new Promise<number>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, '127.0.0.1', () => resolve(udp.address().port));
    });
    const tcpFree = await new Promise<boolean>((resolve) => {
      const tcp = createTcpServer();
      tcp.once('error', () => resolve(false));
      tcp.listen(port, '127.0.0.1', () => tcp.close(() => resolve(true)));
    });
    await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (tcpFree) return port;
  }
  throw new Error('no free UDP+TCP port on 127.0.0.1');
}

const TYPE_NAMES: Record<number, string> = { 1: 'A', 15: 'MX', 16: 'TXT', 28: 'AAAA' };

export async function startZoneServer(zone: Zone): Promise<ZoneServer> {
  const queries: string[] = [];
  const stall = new Set<string>();
  const server = dns2.createServer({
    udp: true,
    tcp: true,
    handle: (request, send) => {
      const response = Packet.createResponseFromRequest(request);
      const q = request.questions[0];
      if (!q) return void send(response);
      const name = q.name.toLowerCase().replace(/\.$/, '');
      const type = TYPE_NAMES[q.type] ?? String(q.type);
      queries.push(`${type} ${name}`);
      if (stall.has(name)) return; // never answers: the client's timeout has to save it
      const node = zone[name];
      if (!node) {
        response.header.rcode = Packet.RCODE.NXDOMAIN;
        return void send(response);
      }
      const base = { name: q.name, class: Packet.CLASS.IN, ttl: 60 };
      if (type === 'TXT') for (const data of node.TXT ?? []) response.answers.push({ ...base, type: Packet.TYPE.TXT, data } as never);
      if (type === 'A') for (const address of node.A ?? []) response.answers.push({ ...base, type: Packet.TYPE.A, address } as never);
      if (type === 'AAAA') for (const address of node.AAAA ?? []) response.answers.push({ ...base, type: Packet.TYPE.AAAA, address } as never);
      if (type === 'MX') for (const mx of node.MX ?? []) response.answers.push({ ...base, type: Packet.TYPE.MX, ...mx } as never);
      send(response);
    },
  });
  const port = await freePort();
  await server.listen({ udp: { port, address: '127.0.0.1' }, tcp: { port, address: '127.0.0.1' } });
  return {
    address: `127.0.0.1:${port}`,
    port,
    zone,
    queries,
    stall,
    close: async () => {
      await server.close();
    },
  };
}

/** A UDP server that reads every query and answers none. */
export async function startSilentServer(): Promise<{ address: string; close(): Promise<void> }> {
  const sock = createSocket('udp4');
  sock.on('message', () => {});
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', () => resolve()));
  return {
    address: `127.0.0.1:${sock.address().port}`,
    close: () => new Promise<void>((resolve) => sock.close(() => resolve())),
  };
}

/** A loopback port where nothing listens (bound once, then released). */
export async function deadAddress(): Promise<string> {
  const port = await freePort();
  return `127.0.0.1:${port}`;
}
