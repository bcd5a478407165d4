// Quarantine store: a message the verdict says to hold is written to a folder — <id>.eml with the tagged
// message and <id>.json with its envelope and verdict — instead of being delivered. The door answers 250
// only after both files are on disk (fsync'd, then renamed into place), because from that moment Postfix
// forgets the message.
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { FilterError } from '../../core/errors.ts';
import type { Envelope } from '../../core/look.ts';
import type { Verdict } from '../../core/verdict.ts';

export interface QuarantineRecord {
  id: string;
  receivedAt: string;
  envelope: Envelope;
  verdict: Pick<Verdict, 'action' | 'score' | 'required' | 'symbols' | 'messageId' | 'reason'>;
}

export interface QuarantineStore {
  readonly dir: string;
  /** Stores the message and returns its id. Throws FilterError('ESTORE') when the disk refuses. */
  put(raw: Uint8Array, envelope: Envelope, verdict: Verdict): Promise<string>;
}

async function writeDurably(file: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${file}.tmp`;
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
}

export function createQuarantineStore(dir: string): QuarantineStore {
  let ready: Promise<unknown> | null = null;
  return {
    dir,
    async put(raw, envelope, verdict) {
      // Sortable by time, unique without coordination between processes.
      const id = `${new Date().toISOString().replace(/[-:.]/g, '')}-${randomBytes(6).toString('hex')}`;
      const base = path.join(dir, id);
      const record: QuarantineRecord = {
        id,
        receivedAt: new Date().toISOString(),
        envelope,
        verdict: {
          action: verdict.action,
          score: verdict.score,
          required: verdict.required,
          symbols: verdict.symbols,
          messageId: verdict.messageId,
          reason: verdict.reason,
        },
      };
      try {
        ready ??= mkdir(dir, { recursive: true, mode: 0o700 });
        await ready;
        // The envelope goes first: an .eml without its .json beside it would be a message nobody can release.
        await writeDurably(`${base}.json`, JSON.stringify(record, null, 2) + '\n');
        await writeDurably(`${base}.eml`, raw);
      } catch (e) {
        ready = null;
        await unlink(`${base}.json`).catch(() => undefined);
        throw new FilterError('ESTORE', `cannot write to the quarantine ${dir}: ${(e as Error).message}`, { dir }, { cause: e });
      }
      return id;
    },
  };
}
