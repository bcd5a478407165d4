// Access to the public corpora in ../shared/corpus. Never copied into the repo; suites that need
// them skip with a clear message when the folder is absent.
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const corpusDir = process.env.ATLAS_CORPUS ?? path.resolve(fileURLToPath(new URL('../../../shared/corpus', import.meta.url)));
export const hasCorpus = existsSync(corpusDir);
export const noCorpusReason = `corpus not found at ${corpusDir} (set ATLAS_CORPUS); skipping corpus tests`;

export interface CorpusFile {
  source: string;
  label: 'ham' | 'spam';
  path: string;
}

/** Every labelled corpus message, sources and files in a stable order. */
export function corpusFiles(sources?: string[]): CorpusFile[] {
  if (!hasCorpus) return [];
  const out: CorpusFile[] = [];
  for (const source of readdirSync(corpusDir).sort()) {
    if (sources && !sources.includes(source)) continue;
    for (const label of ['ham', 'spam'] as const) {
      const dir = path.join(corpusDir, source, label);
      if (!existsSync(dir)) continue;
      for (const f of readdirSync(dir).sort()) if (f.endsWith('.eml')) out.push({ source, label, path: path.join(dir, f) });
    }
  }
  return out;
}
