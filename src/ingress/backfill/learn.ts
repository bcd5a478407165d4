// The IMAP side of `atlas-email learn --imap URL --spam-folder Junk --ham-folder INBOX [--limit N]`,
// as SpamBayes' imapfilter and isbg train from folders: each folder is read read-only (EXAMINE, no
// \Seen), newest messages first when limited, in batches that fit the memory budget.
import { limits } from '../../core/limits.ts';
import { FilterError } from '../../core/errors.ts';
import { type Options, UsageError } from '../../cli/args.ts';
import { connect, imapError, requireFolders } from './imap.ts';
import { chunksWithin } from './sweep.ts';
import { type ImapAccount, parseImapUrl } from './url.ts';

export const imapLearnOptions: Options = {
  imap: { type: 'string' },
  'spam-folder': { type: 'string', multiple: true },
  'ham-folder': { type: 'string', multiple: true },
  limit: { type: 'string' },
  'password-env': { type: 'string' },
  tls: { type: 'boolean' },
  starttls: { type: 'boolean' },
};

export const imapLearnHelp = `  --imap URL         train from IMAP folders: imap://USER@HOST[:PORT] (imaps:// for TLS)
  --spam-folder F    an IMAP folder of spam (with --imap; may be repeated)
  --ham-folder F     an IMAP folder of ham (with --imap; may be repeated)
  --limit N          at most N messages per folder, the newest first (with --imap)
  --password-env VAR environment variable with the IMAP password (default: ATLAS_IMAP_PASSWORD)
  --tls, --starttls  IMAP transport security (default: plain, or TLS for imaps://)`;

export interface ImapMessage {
  raw: Uint8Array;
  name: string;
}

/** Shaped as learn's LabelledSource, so the command mixes IMAP folders with files. */
export interface ImapLabelledSource {
  label: 'spam' | 'ham';
  describe: string;
  messages: () => AsyncIterable<ImapMessage>;
}

export interface ImapLearnSettings {
  maxMessageBytes: number;
  memoryBudgetBytes: number;
}

const defaults: ImapLearnSettings = {
  maxMessageBytes: limits.maxMessageBytes,
  memoryBudgetBytes: 512 * 1024 * 1024 * limits.backfillSourceShare,
};

/** The sources named by --imap/--spam-folder/--ham-folder; none when --imap is absent. */
export function imapSources(
  values: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
  settings: ImapLearnSettings = defaults,
): ImapLabelledSource[] {
  const spam = (values['spam-folder'] as string[] | undefined) ?? [];
  const ham = (values['ham-folder'] as string[] | undefined) ?? [];
  if (values.imap === undefined) {
    if (spam.length || ham.length || values.limit !== undefined) throw new UsageError('--spam-folder, --ham-folder and --limit need --imap URL');
    return [];
  }
  if (spam.length + ham.length === 0) throw new UsageError('--imap needs at least one --spam-folder or --ham-folder');
  let account: ImapAccount;
  try {
    account = parseImapUrl(String(values.imap), { tls: Boolean(values.tls), starttls: Boolean(values.starttls) });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const limit = values.limit === undefined ? undefined : Number(values.limit);
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) throw new UsageError(`--limit must be a whole number above 0, got "${String(values.limit)}"`);
  const envName = (values['password-env'] as string | undefined) ?? 'ATLAS_IMAP_PASSWORD';
  const password = env[envName] || account.password;
  if (!password) throw new UsageError(`no IMAP password: set the environment variable ${envName} (or name another with --password-env)`);

  const source = (label: 'spam' | 'ham', folder: string): ImapLabelledSource => ({
    label,
    describe: `${account.key}/${folder}`,
    messages: () => readFolder({ account, password, folder, limit, ...settings }),
  });
  return [...spam.map((f) => source('spam', f)), ...ham.map((f) => source('ham', f))];
}

interface ReadFolder extends ImapLearnSettings {
  account: ImapAccount;
  password: string;
  folder: string;
  limit?: number;
}

/** Streams a folder's messages; only one budget-sized chunk of sources is held at a time. */
export async function* readFolder(o: ReadFolder): AsyncGenerator<ImapMessage> {
  const client = await connect({ account: o.account, password: o.password, maxLiteralBytes: o.maxMessageBytes });
  try {
    await requireFolders(client, [o.folder], o.account);
    const lock = await client.getMailboxLock(o.folder, { readOnly: true });
    try {
      const all = ((await client.search({ all: true }, { uid: true })) || []).sort((a, b) => a - b);
      // UIDs grow with arrival: the highest are the newest, what the user sorted most recently.
      const uids = o.limit !== undefined ? all.slice(-o.limit) : all;
      for (let i = 0; i < uids.length; i += limits.backfillBatchSize) {
        const batch = uids.slice(i, i + limits.backfillBatchSize);
        const sizes = new Map<number, number>();
        for await (const m of client.fetch(batch, { uid: true, size: true }, { uid: true })) sizes.set(m.uid, m.size ?? 0);
        const wanted = batch.filter((u) => (sizes.get(u) ?? Infinity) <= o.maxMessageBytes);
        for (const chunk of chunksWithin(wanted, sizes, o.memoryBudgetBytes)) {
          for await (const m of client.fetch(chunk, { uid: true, source: true }, { uid: true })) {
            if (m.source) yield { raw: new Uint8Array(m.source.buffer, m.source.byteOffset, m.source.byteLength), name: `${o.folder}#${m.uid}` };
          }
        }
      }
    } finally {
      lock.release();
    }
  } catch (e) {
    throw e instanceof FilterError ? e : imapError(e, o.account, o.folder);
  } finally {
    await client.logout().catch(() => client.close());
  }
}
