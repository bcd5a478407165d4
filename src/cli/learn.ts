// `atlas-email learn`: adds labelled messages to the model file (incremental: the existing model is
// loaded and trained further) and saves it atomically, so a running filter never reads half a file.
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { emptyModel, loadModel, type Model, prepare, serializeModel } from '../core/classify.ts';
import { FilterError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import { TRAIN_EPOCHS, trainBatch } from '../core/model.ts';
import type { Features } from '../core/tokens.ts';
import { EXIT, type Options, parseCommand, UsageError } from './args.ts';
import { loadConfig } from './config-file.ts';
import { type MailItem, readMailSource } from './mailsource.ts';
import { imapLearnHelp, imapLearnOptions, imapSources } from '../ingress/backfill/learn.ts';

export const learnHelp = `Usage: atlas-email learn --spam PATH --ham PATH [--model FILE]
       atlas-email learn --imap URL --spam-folder Junk --ham-folder INBOX [--limit N]

Trains the statistical model on labelled messages and saves it. Incremental: an existing model
file is loaded and trained further; it is replaced atomically (temp file + rename).

  PATH is a folder of .eml files (searched recursively; Maildir cur/ and new/ too) or an mbox
  file. --spam and --ham may each be given more than once; at least one of them is needed.

Options:
  --spam PATH      messages that are spam
  --ham PATH       messages that are not spam
  --model FILE     model file to update (default: config modelFile, the shipped models/default.model)
  --new            start from an empty model instead of the existing file
  --epochs N       passes over the given messages (default 5)
  --config FILE    YAML config file (default: embedded defaults, or $ATLAS_CONFIG)
  -q, --quiet      no progress on stderr
  -h, --help       this help

IMAP folders (read-only; the newest first with --limit):
${imapLearnHelp}

Exit codes:
  0   model saved      64  usage error      66  a PATH is missing
  65  no message could be read      74  the model could not be written
  77  the IMAP server refused the login (EAUTH)
  78  the existing model file is invalid (EMODEL) or bad config`;

/** Where labelled messages come from; IMAP sources can be added here beside the file ones. */
export interface LabelledSource {
  label: 'spam' | 'ham';
  describe: string;
  messages: () => Iterable<MailItem> | AsyncIterable<MailItem>;
}

export const learnOptions: Options = {
  spam: { type: 'string', multiple: true },
  ham: { type: 'string', multiple: true },
  model: { type: 'string' },
  new: { type: 'boolean' },
  epochs: { type: 'string' },
  config: { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  ...imapLearnOptions,
};

/** The file sources named by --spam/--ham, in the order spam then ham. */
export function fileSources(values: Record<string, unknown>): LabelledSource[] {
  const out: LabelledSource[] = [];
  for (const label of ['spam', 'ham'] as const) {
    for (const p of (values[label] as string[] | undefined) ?? []) {
      if (!existsSync(p)) throw Object.assign(new Error(`no such file or folder: ${p}`), { code: 'ENOENT' });
      out.push({ label, describe: p, messages: () => readMailSource(p) });
    }
  }
  return out;
}

export function readModelFile(file: string): Model | null {
  if (!existsSync(file)) return null;
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new FilterError('EMODEL', `cannot read model file ${file}: ${(e as Error).message}`);
  }
  try {
    return loadModel(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (e) {
    if (e instanceof FilterError) throw new FilterError('EMODEL', `${file}: ${e.message}`, { file });
    throw e;
  }
}

/** Returns the bytes it wrote, so a caller that also hands the model to the pool serializes it once. */
export function writeModelFile(file: string, model: Model): Uint8Array {
  const tmp = path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.${process.pid}.tmp`);
  const bytes = serializeModel(model);
  try {
    writeFileSync(tmp, bytes);
    renameSync(tmp, file);
    return bytes;
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new FilterError('ESTORE', `cannot write model file ${file}: ${(e as Error).message}`, { file });
  }
}

export async function learnCommand(argv: string[]): Promise<number> {
  const args = parseCommand(argv, learnOptions, learnHelp, false);
  if (!args) return EXIT.OK;
  const sources: LabelledSource[] = [...fileSources(args.values), ...imapSources(args.values)];
  if (sources.length === 0) throw new UsageError('give at least one --spam PATH or --ham PATH, or --imap URL with --spam-folder/--ham-folder');
  const epochs = args.values.epochs === undefined ? TRAIN_EPOCHS : Number(args.values.epochs);
  if (!Number.isInteger(epochs) || epochs < 1 || epochs > 50) throw new UsageError(`--epochs must be a whole number from 1 to 50, got "${String(args.values.epochs)}"`);
  const config = loadConfig(args.values.config as string | undefined);
  const file = (args.values.model as string | undefined) ?? config.modelFile;
  const quiet = args.values.quiet === true;
  const say = (m: string) => {
    if (!quiet) process.stderr.write(m);
  };

  const model = (args.values.new ? null : readModelFile(file)) ?? emptyModel();
  const before = { spam: model.spamDocs, ham: model.hamDocs };
  const batch: { features: Features; label: 'spam' | 'ham' }[] = [];
  let skipped = 0;
  for (const src of sources) {
    let n = 0;
    for await (const item of src.messages()) {
      if (item.raw.length === 0 || item.raw.length > limits.maxMessageBytes) {
        skipped++;
        say(`learn: skipped ${item.name} (${item.raw.length} bytes)\n`);
        continue;
      }
      batch.push({ features: prepare(item.raw).features, label: src.label });
      if (++n % 500 === 0 && process.stderr.isTTY) say(`learn: ${src.label} ${src.describe}: ${n} read\r`);
    }
    say(`learn: ${src.label} ${src.describe}: ${n} messages\n`);
  }
  if (batch.length === 0) throw new FilterError('EMALFORMED', 'no message could be read from the given paths');
  say(`learn: training on ${batch.length} messages (${epochs} passes)\n`);
  trainBatch(model, batch, epochs);
  writeModelFile(file, model);
  say(
    `learn: saved ${file}: spam ${before.spam} → ${model.spamDocs}, ham ${before.ham} → ${model.hamDocs}` +
      (skipped ? `, ${skipped} skipped` : '') +
      '\n',
  );
  return EXIT.OK;
}
