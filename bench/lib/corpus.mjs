// The corpus as the benchmarks see it: ../shared/corpus/<source>/{ham,spam}/*.eml, or ATLAS_CORPUS.
// One walk in one fixed order (source, then ham before spam, then file name), so every bench that
// strides or samples over it picks the same messages from run to run.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('../../', import.meta.url));
export const corpusDir = process.env.ATLAS_CORPUS ?? path.join(root, '../shared/corpus');

/** Benches that have nothing to measure without the corpus stop here, with exit code 2. */
export function requireCorpus() {
  if (existsSync(corpusDir)) return;
  console.error(`corpus not found at ${corpusDir}; set ATLAS_CORPUS`);
  process.exit(2);
}

/**
 * Every labelled corpus file as { source, label, path, size }; [] when there is no corpus. Empty files
 * are listed too, so that a bench which shuffles or strides over the list keeps picking the same files.
 */
export function corpusFiles() {
  const files = [];
  if (!existsSync(corpusDir)) return files;
  for (const source of readdirSync(corpusDir).sort()) {
    for (const label of ['ham', 'spam']) {
      const dir = path.join(corpusDir, source, label);
      if (!existsSync(dir)) continue;
      for (const name of readdirSync(dir).sort()) {
        if (!name.endsWith('.eml')) continue;
        const file = path.join(dir, name);
        files.push({ source, label, path: file, size: statSync(file).size });
      }
    }
  }
  return files;
}

/** The non-empty corpus files with their bytes as `raw` (scan() refuses empty input with EMALFORMED). */
export function loadCorpus() {
  return corpusFiles()
    .filter((f) => f.size > 0)
    .map((f) => ({ ...f, raw: new Uint8Array(readFileSync(f.path)) }));
}

/** At most `count` items at an even (fractional) stride, so every source and both classes keep their share. */
export function spread(items, count) {
  const stride = Math.max(1, items.length / count);
  const out = [];
  for (let i = 0; i < items.length && out.length < count; i += stride) out.push(items[Math.floor(i)]);
  return out;
}
