// The statistical model: per-feature spam/ham document counts in a hashed table (no token text is
// kept), a naive Bayes score over them, and the binary file format.
// Runtime-neutral: bytes in, bytes out.
import { FilterError } from './errors.ts';

/** File magic "ATLSBAYS" then a u32 format version; any other version is refused. */
const MAGIC = [0x41, 0x54, 0x4c, 0x53, 0x42, 0x41, 0x59, 0x53];
export const MODEL_VERSION = 1;
/** 2^20 buckets: collisions stay rare for the few hundred thousand features of a mail corpus. */
export const DEFAULT_BITS = 20;

export interface Model {
  bits: number;
  spamDocs: number;
  hamDocs: number;
  spam: Uint32Array;
  ham: Uint32Array;
}

export function emptyModel(bits = DEFAULT_BITS): Model {
  const n = 1 << bits;
  return { bits, spamDocs: 0, hamDocs: 0, spam: new Uint32Array(n), ham: new Uint32Array(n) };
}

/** Adds one message's distinct features. */
export function addFeatures(model: Model, features: Uint32Array, label: 'spam' | 'ham'): void {
  const mask = (1 << model.bits) - 1;
  const table = label === 'spam' ? model.spam : model.ham;
  for (let i = 0; i < features.length; i++) {
    const b = (features[i] as number) & mask;
    if (table[b] !== 0xffffffff) table[b]++;
  }
  if (label === 'spam') model.spamDocs++;
  else model.hamDocs++;
}

/**
 * Spam probability with Robinson's per-feature estimate and Fisher's chi-square combining
 * (as SpamBayes): robust to many weak features, and says 0.5 when it knows nothing.
 */
export function spamProbability(model: Model, features: Uint32Array): number {
  if (model.spamDocs === 0 || model.hamDocs === 0) return 0.5;
  const mask = (1 << model.bits) - 1;
  const s = 0.45;
  const x = 0.5;
  let lnSpam = 0;
  let lnHam = 0;
  let n = 0;
  for (let i = 0; i < features.length; i++) {
    const b = (features[i] as number) & mask;
    const sc = model.spam[b] as number;
    const hc = model.ham[b] as number;
    const total = sc + hc;
    if (total === 0) continue;
    const sr = sc / model.spamDocs;
    const hr = hc / model.hamDocs;
    const p = sr / (sr + hr);
    const f = (s * x + total * p) / (s + total);
    if (Math.abs(f - 0.5) < 0.1) continue;
    lnSpam += Math.log(1 - f);
    lnHam += Math.log(f);
    n++;
  }
  if (n === 0) return 0.5;
  const S = 1 - chi2Q(-2 * lnSpam, 2 * n);
  const H = 1 - chi2Q(-2 * lnHam, 2 * n);
  return (S - H + 1) / 2;
}

/** Upper tail of the chi-square distribution with even degrees of freedom. */
function chi2Q(x2: number, v: number): number {
  const m = x2 / 2;
  let sum = Math.exp(-m);
  let term = sum;
  for (let i = 1; i < v / 2; i++) {
    term *= m / i;
    sum += term;
  }
  return Math.min(sum, 1);
}

export function serializeModel(model: Model): Uint8Array {
  const n = 1 << model.bits;
  const body: number[] = [];
  let last = 0;
  let nonZero = 0;
  for (let i = 0; i < n; i++) {
    const sc = model.spam[i] as number;
    const hc = model.ham[i] as number;
    if (sc === 0 && hc === 0) continue;
    varint(body, i - last);
    varint(body, sc);
    varint(body, hc);
    last = i;
    nonZero++;
  }
  const head = new Uint8Array(8 + 4 + 4 + 8 + 8 + 4);
  head.set(MAGIC, 0);
  const dv = new DataView(head.buffer);
  dv.setUint32(8, MODEL_VERSION, true);
  dv.setUint32(12, model.bits, true);
  dv.setFloat64(16, model.spamDocs, true);
  dv.setFloat64(24, model.hamDocs, true);
  dv.setUint32(32, nonZero, true);
  const out = new Uint8Array(head.length + body.length);
  out.set(head, 0);
  out.set(body, head.length);
  return out;
}

export function loadModel(bytes: Uint8Array): Model {
  if (bytes.length < 36 || MAGIC.some((b, i) => bytes[i] !== b)) throw new FilterError('EMODEL', 'not an atlas-email model file (bad magic)');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint32(8, true);
  if (version !== MODEL_VERSION) throw new FilterError('EMODEL', `model format version ${version} is not supported (this build reads ${MODEL_VERSION})`, { version });
  const bits = dv.getUint32(12, true);
  if (bits < 8 || bits > 26) throw new FilterError('EMODEL', `model table size 2^${bits} is out of range`);
  const model = emptyModel(bits);
  model.spamDocs = dv.getFloat64(16, true);
  model.hamDocs = dv.getFloat64(24, true);
  const nonZero = dv.getUint32(32, true);
  const r = { pos: 36 };
  let idx = 0;
  for (let k = 0; k < nonZero; k++) {
    idx += readVarint(bytes, r);
    const sc = readVarint(bytes, r);
    const hc = readVarint(bytes, r);
    if (idx >= model.spam.length) throw new FilterError('EMODEL', 'model file is corrupt (bucket out of range)');
    model.spam[idx] = sc;
    model.ham[idx] = hc;
  }
  return model;
}

function varint(out: number[], n: number): void {
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
}

function readVarint(bytes: Uint8Array, r: { pos: number }): number {
  let n = 0;
  let mul = 1;
  for (let i = 0; i < 5; i++) {
    if (r.pos >= bytes.length) throw new FilterError('EMODEL', 'model file is truncated');
    const b = bytes[r.pos++] as number;
    n += (b & 0x7f) * mul;
    if (b < 0x80) return n;
    mul *= 128;
  }
  throw new FilterError('EMODEL', 'model file is corrupt (bad number)');
}
