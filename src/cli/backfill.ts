// `atlas-email backfill`: sweeps IMAP folders through the same pipeline as every other door, acts on
// the spam it finds, and resumes from its checkpoint when run again.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { limits } from '../core/limits.ts';
import { type Ledger, memoryLedger, openLedger, readCheckpoints } from '../ingress/backfill/checkpoint.ts';
import { connect } from '../ingress/backfill/imap.ts';
import { boundHeaps, createHeapGuard } from '../ingress/backfill/memory.ts';
import { createProgress, formatSummary } from '../ingress/backfill/progress.ts';
import { BACKFILL_ACTIONS, type BackfillAction, sweep } from '../ingress/backfill/sweep.ts';
import { type ImapAccount, parseImapUrl } from '../ingress/backfill/url.ts';
import { LogWriter } from '../store/writer.ts';
import { toRow } from '../store/row.ts';
import { EXIT, intFlag, parseCommand, UsageError, type Parsed } from './args.ts';
import { loadConfig } from './config-file.ts';
import { createPipeline } from './pipeline.ts';
import { createRuntime } from './runtime.ts';

export const DEFAULT_PASSWORD_ENV = 'ATLAS_IMAP_PASSWORD';

export const backfillHelp = `Usage: atlas-email backfill imap://USER@HOST[:PORT] [options]

Sweeps mail already in IMAP folders through the filter. Each folder is read in batches of UIDs (never
the whole folder at once); each batch is scanned, acted on, logged, and checkpointed, so a second run
continues where the first stopped and never acts on a message twice. A changed UIDVALIDITY restarts
that folder.

Options:
  --password-env VAR   environment variable holding the password (default: ${DEFAULT_PASSWORD_ENV})
  --tls                TLS from the first byte (default port 993; same as imaps://)
  --starttls           plain connection upgraded with STARTTLS (refuses servers without it)
  --folders LIST       comma-separated folders to sweep (default: INBOX)
  --since DATE         only messages received on or after DATE (YYYY-MM-DD)
  --action ACTION      what to do with spam: none (default: scan and log only), tag ($Junk keyword on
                       spam, $NotJunk on ham), flag (\\Flagged), move (to the --junk folder)
  --junk FOLDER        the folder spam is moved to (default: Junk)
  --concurrency N      messages scanned at once (default: sixteen per worker, at least 16)
  --batch N            UIDs per batch and checkpoint (default: ${limits.backfillBatchSize}; the memory budget
                       may make a fetch smaller)
  --dry-run            scan and report what the next run would do (from the saved checkpoints);
                       change nothing on the server or on disk
  --db FILE            SQLite file for checkpoints and the verdict log (default: config dbFile)
  --rules DIR          rule folder (default: the shipped rules/)
  --model FILE         model file (default: the shipped model)
  --config FILE        YAML config file (default: embedded defaults, or $ATLAS_CONFIG)
  -h, --help           this help

Memory: message sources held at once stay within ${limits.backfillSourceShare * 100}% of ATLAS_MEMORY_LIMIT_MB
(config memoryLimitMb); messages over maxMessageBytes are skipped and counted, never downloaded.
A dropped connection or a throttling server is retried with back-off from the last checkpoint.

Progress: a bar on a terminal, a log line every few seconds otherwise (stderr); a summary at the end.

Exit codes:
  0   every folder swept (per-message errors are counted in the summary)
  64  usage error     75  the server stayed unreachable     77  login refused (EAUTH)
  78  bad config, or a folder that does not exist (ECONFIG)  74  the database failed (ESTORE)`;

export async function backfillCommand(argv: string[]): Promise<number> {
  const args = parseCommand(
    argv,
    {
      'password-env': { type: 'string' },
      tls: { type: 'boolean' },
      starttls: { type: 'boolean' },
      folders: { type: 'string' },
      since: { type: 'string' },
      action: { type: 'string' },
      junk: { type: 'string' },
      concurrency: { type: 'string' },
      batch: { type: 'string' },
      'dry-run': { type: 'boolean' },
      db: { type: 'string' },
      rules: { type: 'string' },
      model: { type: 'string' },
      config: { type: 'string' },
    },
    backfillHelp,
  );
  if (!args) return EXIT.OK;
  const v = args.values;
  if (args.positionals.length !== 1) throw new UsageError('give exactly one IMAP URL: imap://USER@HOST:PORT');
  const account = accountFrom(args.positionals[0], v);
  const password = passwordFor(account, v);
  const folders = listFlag(v.folders, ['INBOX'], '--folders');
  const action = (v.action ?? 'none') as BackfillAction;
  if (!BACKFILL_ACTIONS.includes(action)) throw new UsageError(`--action must be one of ${BACKFILL_ACTIONS.join(', ')}, got "${String(v.action)}"`);
  const since = v.since === undefined ? undefined : dateFlag(v.since as string);
  const dryRun = Boolean(v['dry-run']);

  const config = loadConfig(v.config as string | undefined);
  if (v.rules) config.rulesDir = v.rules as string;
  if (v.model) config.modelFile = v.model as string;
  // Enough in flight that the pool finds messages waiting and sends them to a worker in batches (one
  // postMessage per batch instead of per message), and that the workers stay busy while this thread
  // parses IMAP responses, writes the ledger or collects garbage between batches.
  const concurrency = intFlag(v, 'concurrency') ?? Math.max(16, config.pool.workers * 16);
  const batchSize = intFlag(v, 'batch') ?? limits.backfillBatchSize;
  if (concurrency < 1) throw new UsageError('--concurrency must be at least 1');
  if (batchSize < 1) throw new UsageError('--batch must be at least 1');
  const dbFile = path.resolve((v.db as string | undefined) ?? config.dbFile);

  let writer: LogWriter | undefined;
  let ledger: Ledger;
  if (dryRun) ledger = memoryLedger(readCheckpoints(dbFile, account.key));
  else {
    mkdirSync(path.dirname(dbFile), { recursive: true });
    writer = new LogWriter({ file: dbFile });
    ledger = openLedger(writer.open());
  }
  // Old mail's SPF/DKIM would be judged against today's DNS (rotated keys, changed records): wrong
  // answers, slowly. The sweep uses the content stages only.
  config.auth.enabled = false;
  boundHeaps();
  const runtime = await createRuntime(config, { classify: true, log: false });
  const pipeline = createPipeline(config, { classifier: runtime.classifier });
  const progress = createProgress({
    write: (t) => process.stderr.write(t),
    tty: Boolean(process.stderr.isTTY),
    columns: process.stderr.columns,
    now: () => performance.now(),
  });
  // A sixteenth of the memory budget (32 MB by default) of heap growth between full collections.
  const heap = createHeapGuard(Math.floor((config.memoryLimitMb * 1024 * 1024) / 16));
  const started = performance.now();
  const cpuAtStart = process.resourceUsage().userCPUTime + process.resourceUsage().systemCPUTime;
  try {
    const result = await sweep({
      account,
      connect: () => connect({ account, password, maxLiteralBytes: config.maxMessageBytes }),
      folders,
      since,
      action,
      junkFolder: (v.junk as string | undefined) ?? 'Junk',
      concurrency,
      dryRun,
      batchSize,
      memoryBudgetBytes: Math.floor(config.memoryLimitMb * 1024 * 1024 * limits.backfillSourceShare),
      maxMessageBytes: config.maxMessageBytes,
      ledger,
      // Verdicts go to the log with the batch that holds them, never ahead of it: see sweep.ts.
      // No verdict cache: each message of a folder is scanned once, so the cache would only grow
      // with the folder (up to its 50k entries) and make memory depend on the folder's size.
      scan: (raw) => pipeline.scan({ raw, noCache: true }),
      recordVerdicts: writer ? (verdicts) => (writer as LogWriter).write(verdicts.map((x) => toRow(x, Date.now()))) : undefined,
      progress,
      afterBatch: () => heap.check(),
      retry: { attempts: limits.backfillReconnectAttempts, baseMs: limits.backfillBackoffBaseMs, maxMs: limits.backfillBackoffMaxMs },
    });
    // Whole-process figures, worker threads included: what the memory budget bounds, and the CPU a
    // message costs (on a shared machine wall time says more about the neighbours).
    const usage = process.resourceUsage();
    const figures = { peakRssBytes: usage.maxRSS * 1024, cpuMs: (usage.userCPUTime + usage.systemCPUTime - cpuAtStart) / 1000 };
    process.stderr.write(formatSummary(result.tally, performance.now() - started, dryRun, figures) + '\n');
    return EXIT.OK;
  } finally {
    ledger.close();
    writer?.close();
    await pipeline.close();
    await runtime.close();
  }
}

function accountFrom(url: string, v: Parsed['values']): ImapAccount {
  try {
    return parseImapUrl(url, { tls: Boolean(v.tls), starttls: Boolean(v.starttls) });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function passwordFor(account: ImapAccount, v: Parsed['values']): string {
  const name = (v['password-env'] as string | undefined) ?? DEFAULT_PASSWORD_ENV;
  const fromEnv = process.env[name];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  if (account.password !== undefined) return account.password;
  throw new UsageError(`no password: set the environment variable ${name} (or name another with --password-env)`);
}

export function listFlag(value: unknown, fallback: string[], flag: string): string[] {
  if (value === undefined) return fallback;
  const list = String(value)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (list.length === 0) throw new UsageError(`${flag} names no folder`);
  return list;
}

function dateFlag(text: string): Date {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  const d = m ? new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) : undefined;
  if (!d || Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== text) throw new UsageError(`--since must be a date as YYYY-MM-DD, got "${text}"`);
  return d;
}
