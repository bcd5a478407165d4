// Reads messages for learn and eval from a folder of .eml files (Maildir cur/ and new/ too) or an
// mbox file. Node-only; yields raw bytes, one message at a time.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

export interface MailItem {
  raw: Uint8Array;
  /** Where the message came from, for progress and error lines (file, or mbox file#n). */
  name: string;
}

/**
 * The source name shown in eval's table: the parent of a ham/ or spam/ folder (corpus layout
 * <source>/{ham,spam}), else the folder's own name, or the mbox file's name without extension.
 */
export function sourceName(p: string): string {
  const abs = path.resolve(p);
  const base = path.basename(abs);
  if (/^(ham|spam)$/i.test(base)) return path.basename(path.dirname(abs));
  return base.replace(/\.(mbox|mbx|eml)$/i, '');
}

function listFolder(dir: string, out: string[], depth: number): void {
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (entry.name.startsWith('.')) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (depth < 4) listFolder(full, out, depth + 1);
    } else if (entry.isFile() && (/\.(eml|msg)$/i.test(entry.name) || /(^|[/\\])(cur|new)$/.test(dir))) {
      out.push(full);
    }
  }
}

/** Messages under `p`: every .eml in a folder (sorted, recursive), or every message of an mbox file. */
export function* readMailSource(p: string): Generator<MailItem> {
  let st;
  try {
    st = statSync(p);
  } catch {
    throw Object.assign(new Error(`no such file or folder: ${p}`), { code: 'ENOENT' });
  }
  if (st.isDirectory()) {
    const files: string[] = [];
    listFolder(p, files, 0);
    for (const f of files) {
      const buf = readFileSync(f);
      yield { raw: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), name: f };
    }
    return;
  }
  const buf = readFileSync(p);
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  if (!startsWithFrom(bytes, 0)) {
    // A single message file.
    yield { raw: bytes, name: p };
    return;
  }
  let n = 0;
  for (const raw of splitMbox(bytes)) yield { raw, name: `${p}#${++n}` };
}

function startsWithFrom(b: Uint8Array, i: number): boolean {
  return b[i] === 0x46 && b[i + 1] === 0x72 && b[i + 2] === 0x6f && b[i + 3] === 0x6d && b[i + 4] === 0x20;
}

/**
 * Splits an mbox on "From " lines that start the file or follow a blank line, drops the envelope line
 * and undoes one level of ">From " quoting (mboxrd; harmless on mboxo, whose quoting cannot be undone).
 */
export function* splitMbox(b: Uint8Array): Generator<Uint8Array> {
  const starts: number[] = [];
  for (let i = 0; i < b.length; i++) {
    if (startsWithFrom(b, i) && (i === 0 || (b[i - 1] === 10 && (b[i - 2] === 10 || (b[i - 2] === 13 && b[i - 3] === 10))))) starts.push(i);
    const nl = b.indexOf(10, i);
    if (nl < 0) break;
    i = nl;
  }
  for (let k = 0; k < starts.length; k++) {
    const from = starts[k] as number;
    const bodyStart = b.indexOf(10, from) + 1 || b.length;
    let end = k + 1 < starts.length ? (starts[k + 1] as number) : b.length;
    // The blank line before the next "From " belongs to the mbox, not the message.
    if (end < b.length && b[end - 1] === 10) end -= b[end - 2] === 13 ? 2 : 1;
    yield unquoteFrom(b.subarray(bodyStart, end));
  }
}

function unquoteFrom(m: Uint8Array): Uint8Array {
  // Fast path: most messages have no quoted From line at all.
  let found = false;
  for (let i = 0; i < m.length; i++) {
    if (m[i] === 0x3e && (i === 0 || m[i - 1] === 10)) {
      let j = i;
      while (m[j] === 0x3e) j++;
      if (startsWithFrom(m, j)) {
        found = true;
        break;
      }
    }
  }
  if (!found) return m;
  const out = new Uint8Array(m.length);
  let n = 0;
  for (let i = 0; i < m.length; i++) {
    if (m[i] === 0x3e && (i === 0 || m[i - 1] === 10)) {
      let j = i;
      while (m[j] === 0x3e) j++;
      if (startsWithFrom(m, j)) continue;
    }
    out[n++] = m[i] as number;
  }
  return out.subarray(0, n);
}
