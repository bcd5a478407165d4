// Finds a quarantined message by its Message-ID, for "mark as spam/ham" on the history page. Reads the
// quarantine's <id>.json records (written by quarantine.ts); an admin action, so a folder scan is fine.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { QuarantineRecord } from './quarantine.ts';

export async function findQuarantined(dir: string, messageId: string): Promise<Uint8Array | null> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return null;
  }
  for (const name of names) {
    if (!name.endsWith('.json')) continue;
    try {
      const rec = JSON.parse(await readFile(path.join(dir, name), 'utf8')) as QuarantineRecord;
      if (rec.verdict?.messageId === messageId) return new Uint8Array(await readFile(path.join(dir, `${rec.id}.eml`)));
    } catch {
      // A record being written or removed right now: skip it.
    }
  }
  return null;
}
