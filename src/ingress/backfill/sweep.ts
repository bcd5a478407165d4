// The IMAP sweep: for each folder, UID SEARCH for what the checkpoint has not covered, then batches of
// UIDs — sizes first, sources in chunks that fit the memory budget, scan, record, act, checkpoint.
// Only one batch's sources are ever held, so memory stays flat however large the folder is.
import { FilterError, toFilterError } from '../../core/errors.ts';
import type { Verdict } from '../../core/verdict.ts';
import type { FolderKey, Ledger, LedgerRow, Outcome } from './checkpoint.ts';
import { backoffMs, type Client, imapError, isRetryable, requireFolders } from './imap.ts';
import { emptyTally, type Progress, type Tally } from './progress.ts';
import type { ImapAccount } from './url.ts';

export type BackfillAction = 'none' | 'tag' | 'flag' | 'move';
export const BACKFILL_ACTIONS: readonly BackfillAction[] = ['none', 'tag', 'flag', 'move'];

export const JUNK_KEYWORD = '$Junk';
export const NOT_JUNK_KEYWORD = '$NotJunk';

export interface SweepOptions {
  account: ImapAccount;
  /** Opens an authenticated connection (a new one after each drop). */
  connect: () => Promise<Client>;
  folders: string[];
  since?: Date;
  action: BackfillAction;
  junkFolder: string;
  /** Scans in flight at once (the classifier pool works on them in parallel). */
  concurrency: number;
  dryRun: boolean;
  /** UIDs per batch: one checkpoint commit each. */
  batchSize: number;
  /** Bytes of message sources held at once. */
  memoryBudgetBytes: number;
  /** Messages above this are skipped and counted, never downloaded. */
  maxMessageBytes: number;
  ledger: Ledger;
  scan: (raw: Uint8Array) => Promise<Verdict>;
  /**
   * Writes a batch's verdicts to the verdict log, synchronously, inside the ledger's transaction: a
   * run killed at any point logs every message exactly once. Not called on a dry run.
   */
  recordVerdicts?: (verdicts: Verdict[]) => void;
  progress: Progress;
  /** Runs after each committed batch (the heap guard). */
  afterBatch?: () => void;
  retry: { attempts: number; baseMs: number; maxMs: number };
  sleep?: (ms: number) => Promise<void>;
}

export interface SweepResult {
  tally: Tally;
  folders: { folder: string; uidValidity: string; lastUid: number }[];
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function sweep(o: SweepOptions): Promise<SweepResult> {
  const tally = emptyTally();
  const sleep = o.sleep ?? defaultSleep;
  const done: SweepResult['folders'] = [];
  // Two sessions: one reads (EXAMINE: it never changes anything), one acts, so the server moves or
  // flags one batch while it sends the next instead of one after the other.
  const conns: Partial<Record<'reader' | 'actor', Client>> = {};
  let failures = 0;
  let foldersChecked = false;

  const open = async (role: 'reader' | 'actor'): Promise<Client> => {
    const c = conns[role];
    if (c?.usable) return c;
    c?.close();
    delete conns[role];
    return (conns[role] = await o.connect());
  };
  const closeAll = () => {
    for (const role of ['reader', 'actor'] as const) {
      conns[role]?.close();
      delete conns[role];
    }
  };

  try {
    for (let f = 0; f < o.folders.length; ) {
      const folder = o.folders[f];
      // Mail already in the Junk folder stays there: moving it onto itself would only churn UIDs.
      const fo = o.action === 'move' && folder === o.junkFolder ? { ...o, action: 'none' as const } : o;
      try {
        const reader = await open('reader');
        if (!foldersChecked) {
          await requireFolders(reader, o.action === 'move' ? [...o.folders, o.junkFolder] : o.folders, o.account);
          foldersChecked = true;
        }
        // Even with --action none: decisions an interrupted run left pending may still need applying.
        const actor = fo.dryRun ? undefined : await open('actor');
        done.push(
          await sweepFolder(reader, actor, folder, fo, tally, () => {
            failures = 0;
          }),
        );
        f++;
      } catch (e) {
        const err = imapError(e, o.account, folder);
        if (!isRetryable(err) || failures >= o.retry.attempts) {
          if (isRetryable(err)) err.message += ` (gave up after ${failures} reconnect${failures === 1 ? '' : 's'})`;
          throw err;
        }
        failures++;
        tally.reconnects++;
        const wait = backoffMs(failures, o.retry.baseMs, o.retry.maxMs, err.details.throttleMs as number | undefined);
        o.progress.note(`backfill: ${err.message}; reconnecting in ${wait} ms (attempt ${failures}/${o.retry.attempts}), resuming from the checkpoint`);
        closeAll();
        await sleep(wait);
      }
    }
  } finally {
    await Promise.all(
      Object.values(conns).map((c) => (c.usable ? c.logout().catch(() => c.close()) : Promise.resolve(c.close()))),
    );
    o.progress.finish();
  }
  return { tally, folders: done };
}

async function sweepFolder(
  client: Client,
  actor: Client | undefined,
  folder: string,
  o: SweepOptions,
  tally: Tally,
  madeProgress: () => void,
): Promise<SweepResult['folders'][number]> {
  // The reading session only EXAMINEs: fetching never sets \Seen, and a dry run changes not even \Recent.
  const lock = await client.getMailboxLock(folder, { readOnly: true });
  const actorLock = actor ? await actor.getMailboxLock(folder) : undefined;
  try {
    const box = client.mailbox;
    if (!box) throw new FilterError('EPROTOCOL', `no mailbox selected after opening "${folder}"`);
    const key: FolderKey = { account: o.account.key, folder, uidValidity: String(box.uidValidity) };
    if (actor && String(actor.mailbox ? actor.mailbox.uidValidity : '') !== key.uidValidity) {
      // UIDs would name different messages in the two sessions: start both again.
      throw new FilterError('ENEXTHOP', `the UIDVALIDITY of "${folder}" changed between two sessions`, { folder });
    }
    const cp = o.ledger.get(key.account, folder);
    let lastUid = 0;
    if (!cp || cp.uidValidity !== key.uidValidity) {
      if (cp) o.progress.note(`backfill: ${folder}: UIDVALIDITY changed (${cp.uidValidity} → ${key.uidValidity}); sweeping the folder again`);
      o.ledger.restart(key);
    } else {
      lastUid = cp.lastUid;
    }

    // Decisions a killed run wrote but may not have applied: apply them (idempotently), not rescan.
    const pending = o.ledger.pending(key);
    if (pending.length > 0) {
      if (actor) await applyActions(actor, pending, o);
      const uids = pending.map((r) => r.uid);
      lastUid = Math.max(lastUid, ...uids);
      o.ledger.commit(key, uids, lastUid);
      tally.resumed += pending.length;
      o.progress.note(`backfill: ${folder}: applied ${pending.length} decision${pending.length === 1 ? '' : 's'} left by an interrupted run`);
    }

    const found = await client.search(o.since ? { uid: `${lastUid + 1}:*`, since: o.since } : { uid: `${lastUid + 1}:*` }, { uid: true });
    // "N:*" always matches the highest UID, even below N: drop what the checkpoint already covers.
    const uids = (found || []).filter((u) => u > lastUid).sort((a, b) => a - b);
    o.progress.folder(folder, uids.length);

    // The reader moves on to the next batch as soon as this batch's sources are all in, not when their
    // scans end: the workers never drain at a batch boundary (sizes round trip, ledger writes, moves).
    // One gate bounds the scans in flight and the bytes held across both batches; the next batch's
    // rows reach the ledger only after this batch's commit, and a third starts only after that.
    const gate = new Gate(o.concurrency, o.memoryBudgetBytes);
    const batchAt = (i: number) => uids.slice(i, i + o.batchSize);
    let ahead = uids.length > 0 ? startBatch(client, batchAt(0), o, gate) : undefined;
    for (let i = 0; i < uids.length; i += o.batchSize) {
      const batch = batchAt(i);
      const cur = ahead as Started;
      await cur.fetched;
      ahead = i + o.batchSize < uids.length ? startBatch(client, batchAt(i + o.batchSize), o, gate) : undefined;
      const { rows, verdicts } = await unwrap(cur.result);
      count(tally, rows);
      const record = o.recordVerdicts;
      o.ledger.addPending(key, rows, record && !o.dryRun && verdicts.size > 0 ? () => record([...verdicts.values()]) : undefined);
      if (actor) await applyActions(actor, rows, o);
      lastUid = batch[batch.length - 1];
      o.ledger.commit(
        key,
        rows.map((r) => r.uid),
        lastUid,
      );
      madeProgress();
      o.afterBatch?.();
      o.progress.advance(batch.length, tally);
    }
    return { folder, uidValidity: key.uidValidity, lastUid };
  } finally {
    actorLock?.release();
    lock.release();
  }
}

interface Scanned {
  rows: LedgerRow[];
  verdicts: Map<number, Verdict>;
}

type Settled<T> = Promise<{ ok: true; value: T } | { ok: false; error: unknown }>;

/** Holds a batch fetched ahead without an unhandled rejection while the current batch is acted on. */
function settle<T>(p: Promise<T>): Settled<T> {
  return p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

async function unwrap<T>(p: Settled<T>): Promise<T> {
  const r = await p;
  if (!r.ok) throw r.error;
  return r.value;
}

/**
 * Scans in flight and the bytes of the chunks they were fetched in, shared by the batches that
 * overlap: at most `maxScans` scans, and chunks summing to at most `maxBytes` (one chunk alone always
 * fits, so a message larger than the budget still goes through).
 */
export class Gate {
  scans = 0;
  bytes = 0;
  private waiting: (() => void)[] = [];

  constructor(
    readonly maxScans: number,
    readonly maxBytes: number,
  ) {}

  async takeScan(): Promise<void> {
    while (this.scans >= this.maxScans) await this.wait();
    this.scans++;
  }

  async takeBytes(n: number): Promise<void> {
    while (this.bytes > 0 && this.bytes + n > this.maxBytes) await this.wait();
    this.bytes += n;
  }

  release(scans: number, bytes: number): void {
    this.scans -= scans;
    this.bytes -= bytes;
    // Two waiters at most (one fetch loop per batch in flight): wake both, each checks again.
    const w = this.waiting;
    this.waiting = [];
    for (const f of w) f();
  }

  private wait(): Promise<void> {
    return new Promise((r) => this.waiting.push(r));
  }
}

interface Started {
  /** Settles when the reading session is done with the batch's first pass (its sources are all in). */
  fetched: Promise<void>;
  result: Settled<Scanned>;
}

function startBatch(client: Client, batch: number[], o: SweepOptions, gate: Gate): Started {
  let fetched: () => void = () => {};
  const done = new Promise<void>((r) => (fetched = r));
  const result = settle(scanBatch(client, batch, o, gate, () => fetched()));
  // A failed batch frees the reader too: the caller learns of the failure from `result`.
  void result.then(() => fetched());
  return { fetched: done, result };
}

/** Sizes first (cheap), then the sources of what fits the budget, scanned as they arrive. */
async function scanBatch(client: Client, batch: number[], o: SweepOptions, gate: Gate, fetched: () => void): Promise<Scanned> {
  const sizes = new Map<number, number>();
  for await (const m of client.fetch(batch, { uid: true, size: true }, { uid: true })) sizes.set(m.uid, m.size ?? 0);

  const rows: LedgerRow[] = [];
  const verdicts = new Map<number, Verdict>();
  const wanted: number[] = [];
  for (const uid of batch) {
    const size = sizes.get(uid);
    if (size === undefined) continue; // expunged by someone else since the search
    if (size > o.maxMessageBytes) {
      rows.push({ uid, messageId: null, verdict: 'ETOOLARGE', score: null, spam: false, outcome: 'too-large' });
    } else wanted.push(uid);
  }

  const first = await scanChunks(client, wanted, sizes, o, gate);
  fetched();
  await first.scanned;
  // A message the pool could not judge in time (overloaded, timed out, a worker replaced) is fetched
  // and scanned once more, one at a time: the sweep never comes back for it. (Its FETCH waits behind
  // the next batch's on the reading session; that one's scans free the gate, so both finish.)
  const again = first.rows.filter((r) => r.outcome === 'error' && RETRY_ONCE.has(r.verdict)).map((r) => r.uid);
  let second: Scanned | undefined;
  if (again.length > 0) {
    const retry = await scanChunks(client, again, sizes, o, new Gate(1, o.memoryBudgetBytes));
    await retry.scanned;
    second = retry;
  }
  const retried = new Set(again);
  for (const r of first.rows) if (!retried.has(r.uid)) rows.push(r);
  for (const [uid, v] of first.verdicts) if (!retried.has(uid)) verdicts.set(uid, v);
  if (second) {
    rows.push(...second.rows);
    for (const [uid, v] of second.verdicts) verdicts.set(uid, v);
  }
  rows.sort((a, b) => a.uid - b.uid);
  return { rows, verdicts };
}

/** Verdict codes of a scan that failed for a passing reason (see scanOne). */
const RETRY_ONCE: ReadonlySet<string> = new Set(['ETIMEOUT', 'EOVERLOAD', 'EWORKER', 'tempfail']);

/**
 * Fetches the sources of `uids` in budget-sized chunks and scans each as it arrives. Resolves once the
 * last FETCH is through (the reading session is free again); `scanned` settles when the scans have.
 */
async function scanChunks(
  client: Client,
  uids: number[],
  sizes: ReadonlyMap<number, number>,
  o: SweepOptions,
  gate: Gate,
): Promise<Scanned & { scanned: Promise<void> }> {
  const rows: LedgerRow[] = [];
  const verdicts = new Map<number, Verdict>();
  const all: Promise<void>[] = [];
  for (const chunk of chunksWithin(uids, sizes, o.memoryBudgetBytes)) {
    let bytes = 0;
    for (const uid of chunk) bytes += sizes.get(uid) ?? 0;
    // The chunk's bytes stay taken until its last scan ends: sources held at once stay within budget.
    await gate.takeBytes(bytes);
    const inChunk: Promise<void>[] = [];
    const seen = new Set<number>();
    try {
      for await (const m of client.fetch(chunk, { uid: true, source: true }, { uid: true })) {
        if (!m.source) continue;
        const uid = m.uid;
        seen.add(uid);
        const raw = new Uint8Array(m.source.buffer, m.source.byteOffset, m.source.byteLength);
        await gate.takeScan();
        inChunk.push(
          scanOne(uid, raw, o).then(({ row, verdict }) => {
            gate.release(1, 0);
            rows.push(row);
            if (verdict) verdicts.set(uid, verdict);
          }),
        );
      }
    } finally {
      // scanOne never rejects; on a failed FETCH the bytes come back once the started scans end.
      all.push(Promise.all(inChunk).then(() => gate.release(0, bytes)));
    }
    for (const uid of chunk) {
      if (!seen.has(uid)) rows.push({ uid, messageId: null, verdict: 'EPROTOCOL', score: null, spam: false, outcome: 'error' });
    }
  }
  return { rows, verdicts, scanned: Promise.all(all).then(() => {}) };
}

async function scanOne(uid: number, raw: Uint8Array, o: SweepOptions): Promise<{ row: LedgerRow; verdict?: Verdict }> {
  try {
    const v = await o.scan(raw);
    if (v.action === 'tempfail') {
      return { row: { uid, messageId: v.messageId || null, verdict: v.errorCode ?? 'tempfail', score: v.score, spam: false, outcome: 'error' }, verdict: v };
    }
    return { row: { uid, messageId: v.messageId || null, verdict: v.action, score: v.score, spam: v.spam, outcome: outcomeOf(v.spam, o.action) }, verdict: v };
  } catch (e) {
    const err = toFilterError(e);
    return { row: { uid, messageId: null, verdict: err.code, score: null, spam: false, outcome: err.code === 'ETOOLARGE' ? 'too-large' : 'error' } };
  }
}

export function outcomeOf(spam: boolean, action: BackfillAction): Outcome {
  switch (action) {
    case 'none':
      return 'kept';
    case 'tag':
      return 'tagged';
    case 'flag':
      return spam ? 'flagged' : 'kept';
    case 'move':
      return spam ? 'moved' : 'kept';
  }
}

/** One command per kind of change for the whole batch; every one of them is safe to repeat. */
async function applyActions(client: Client, rows: readonly LedgerRow[], o: SweepOptions): Promise<void> {
  const pick = (outcome: Outcome, spam?: boolean) => rows.filter((r) => r.outcome === outcome && (spam === undefined || r.spam === spam)).map((r) => r.uid);
  const moved = pick('moved');
  // UID MOVE of UIDs already moved by an interrupted run matches nothing and changes nothing.
  if (moved.length > 0) await client.messageMove(moved, o.junkFolder, { uid: true });
  const flagged = pick('flagged');
  if (flagged.length > 0) await client.messageFlagsAdd(flagged, ['\\Flagged'], { uid: true });
  const taggedSpam = pick('tagged', true);
  if (taggedSpam.length > 0) {
    await client.messageFlagsAdd(taggedSpam, [JUNK_KEYWORD], { uid: true });
    await client.messageFlagsRemove(taggedSpam, [NOT_JUNK_KEYWORD], { uid: true });
  }
  const taggedHam = pick('tagged', false);
  if (taggedHam.length > 0) {
    await client.messageFlagsAdd(taggedHam, [NOT_JUNK_KEYWORD], { uid: true });
    await client.messageFlagsRemove(taggedHam, [JUNK_KEYWORD], { uid: true });
  }
}

function count(t: Tally, rows: readonly LedgerRow[]): void {
  for (const r of rows) {
    if (r.outcome === 'too-large') {
      t.tooLarge++;
      continue;
    }
    if (r.outcome === 'error') {
      t.errors++;
      continue;
    }
    t.scanned++;
    if (r.spam) t.spam++;
    else t.ham++;
    if (r.outcome === 'moved') t.moved++;
    else if (r.outcome === 'tagged') t.tagged++;
    else if (r.outcome === 'flagged') t.flagged++;
  }
}

/**
 * Splits UIDs into runs whose summed sizes stay within the budget (a run holds at least one
 * message, so one message larger than the budget still goes through alone).
 */
export function chunksWithin(uids: readonly number[], sizes: ReadonlyMap<number, number>, budgetBytes: number): number[][] {
  const out: number[][] = [];
  let cur: number[] = [];
  let bytes = 0;
  for (const uid of uids) {
    const s = sizes.get(uid) ?? 0;
    if (cur.length > 0 && bytes + s > budgetBytes) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(uid);
    bytes += s;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}
