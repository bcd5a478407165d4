// Writes a small IPv4 MMDB file (MaxMind DB format 2.0, 24-bit records) for tests: no npm package
// ships open ASN data in MMDB form, so the ASN path is tested on a database built here from the spec
// (https://maxmind.github.io/MaxMind-DB/).

type Value = string | number | Value[] | { [key: string]: Value };

function uintBytes(n: number): number[] {
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v % 256);
  return out;
}

function control(type: number, size: number): number[] {
  if (size >= 29) throw new Error('test MMDB writer: values of 29 or more bytes/entries are not needed here');
  return type <= 7 ? [(type << 5) | size] : [size, type - 7];
}

function encode(v: Value): number[] {
  if (typeof v === 'string') {
    const b = [...Buffer.from(v, 'utf8')];
    if (b.length < 29) return [...control(2, b.length), ...b];
    if (b.length >= 29 + 256) throw new Error('test MMDB writer: string too long');
    return [(2 << 5) | 29, b.length - 29, ...b];
  }
  if (typeof v === 'number') {
    const b = uintBytes(v);
    return [...control(6, b.length), ...b]; // uint32
  }
  if (Array.isArray(v)) return [...control(11, v.length), ...v.flatMap(encode)];
  const entries = Object.entries(v);
  return [...control(7, entries.length), ...entries.flatMap(([k, x]) => [...encode(k), ...encode(x)])];
}

type Child = { node: number } | { data: number } | null;

/** networks: "a.b.c.d/len" → record. */
export function writeMmdb(networks: Record<string, Record<string, Value>>, databaseType: string): Buffer {
  const data: number[] = [];
  const nodes: [Child, Child][] = [[null, null]];
  for (const [cidr, record] of Object.entries(networks)) {
    const [addr, lenText] = cidr.split('/');
    const len = Number(lenText);
    const ip = (addr as string).split('.').reduce((a, o) => a * 256 + Number(o), 0);
    const offset = data.length;
    data.push(...encode(record));
    let node = 0;
    for (let bit = 0; bit < len; bit++) {
      const side = Math.floor(ip / 2 ** (31 - bit)) % 2;
      const pair = nodes[node] as [Child, Child];
      if (bit === len - 1) {
        pair[side] = { data: offset };
        break;
      }
      const next = pair[side];
      if (next && 'node' in next) node = next.node;
      else {
        nodes.push([null, null]);
        pair[side] = { node: nodes.length - 1 };
        node = nodes.length - 1;
      }
    }
  }
  const count = nodes.length;
  const recordValue = (c: Child): number => (c === null ? count : 'node' in c ? c.node : count + 16 + c.data);
  const tree = nodes.flatMap(([l, r]) => [recordValue(l), recordValue(r)].flatMap((v) => [(v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff]));
  const metadata = encode({
    node_count: count,
    record_size: 24,
    ip_version: 4,
    database_type: databaseType,
    languages: ['en'],
    binary_format_major_version: 2,
    binary_format_minor_version: 0,
    build_epoch: 1_700_000_000,
    description: { en: 'atlas-email test data' },
  });
  return Buffer.from([...tree, ...new Array(16).fill(0), ...data, 0xab, 0xcd, 0xef, ...Buffer.from('MaxMind.com'), ...metadata]);
}
