import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type FolderKey, type Ledger, type LedgerRow, memoryLedger, openLedger, readCheckpoints } from '../../src/ingress/backfill/checkpoint.ts';

const key: FolderKey = { account: 'test@h:1', folder: 'INBOX', uidValidity: '4000000000' };
const row = (uid: number, spam = false): LedgerRow => ({
  uid,
  messageId: `<${uid}@x>`,
  verdict: spam ? 'tag' : 'accept',
  score: spam ? 7 : 0,
  spam,
  outcome: spam ? 'moved' : 'kept',
});

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'atlas-ledger-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function contract(name: string, make: () => Ledger) {
  describe(name, () => {
    it('has no checkpoint for a folder never swept', () => {
      const l = make();
      expect(l.get(key.account, key.folder)).toBeUndefined();
      l.close();
    });

    it('keeps pending decisions until their batch commits, then moves the checkpoint', () => {
      const l = make();
      l.restart(key);
      expect(l.get(key.account, key.folder)).toEqual({ uidValidity: key.uidValidity, lastUid: 0 });
      l.addPending(key, [row(1), row(2, true)]);
      expect(l.pending(key).map((r) => [r.uid, r.spam, r.outcome])).toEqual([
        [1, false, 'kept'],
        [2, true, 'moved'],
      ]);
      l.commit(key, [1, 2], 2);
      expect(l.pending(key)).toEqual([]);
      expect(l.get(key.account, key.folder)).toEqual({ uidValidity: key.uidValidity, lastUid: 2 });
      l.close();
    });

    it('forgets pending decisions of the old UIDVALIDITY on restart', () => {
      const l = make();
      l.restart(key);
      l.addPending(key, [row(5)]);
      const next = { ...key, uidValidity: '7' };
      l.restart(next);
      expect(l.pending(key)).toEqual([]);
      expect(l.get(key.account, key.folder)).toEqual({ uidValidity: '7', lastUid: 0 });
      l.close();
    });
  });
}

contract('openLedger (SQLite file)', () => openLedger(path.join(dir, 'a.db')));
contract('memoryLedger (dry run)', () => memoryLedger());

describe('openLedger durability', () => {
  it('survives a reopen: checkpoint and pending rows are on disk', () => {
    const file = path.join(dir, 'b.db');
    const l = openLedger(file);
    l.restart(key);
    l.addPending(key, [row(10, true)]);
    l.close();
    const again = openLedger(file);
    expect(again.pending(key).map((r) => r.uid)).toEqual([10]);
    expect(again.get(key.account, key.folder)?.lastUid).toBe(0);
    again.close();
  });

  it('refuses to record one message twice (a double scan fails loudly)', () => {
    const l = openLedger(path.join(dir, 'c.db'));
    l.restart(key);
    l.addPending(key, [row(3)]);
    expect(() => l.addPending(key, [row(3)])).toThrow(/ESTORE|UNIQUE|checkpoint/);
    l.close();
  });

  it('rolls the pending rows back when the callback in the same transaction fails', () => {
    const l = openLedger(path.join(dir, 'd.db'));
    l.restart(key);
    expect(() =>
      l.addPending(key, [row(4)], () => {
        throw new Error('verdict log is full');
      }),
    ).toThrow(/verdict log is full/);
    expect(l.pending(key)).toEqual([]);
    l.close();
  });

  it('shares a connection the verdict log opened and leaves it open', () => {
    const db = new Database(path.join(dir, 'e.db'));
    const l = openLedger(db);
    l.restart(key);
    l.close();
    expect(db.open).toBe(true);
    expect(db.prepare('SELECT last_uid FROM backfill_checkpoints').get()).toEqual({ last_uid: 0 });
    db.close();
  });

  it('names the file when it cannot be opened', () => {
    expect(() => openLedger(path.join(dir, 'missing', 'dir', 'x.db'))).toThrow(/cannot open the backfill checkpoint database .*x\.db/);
  });
});

describe('dry runs start from the saved checkpoints', () => {
  it('reads an account\'s checkpoints without changing the file, and seeds the memory ledger with them', () => {
    const file = path.join(dir, 'seed.db');
    const l = openLedger(file);
    l.restart(key);
    l.commit(key, [], 42);
    l.restart({ ...key, account: 'other@h:1' });
    l.close();
    const saved = readCheckpoints(file, key.account);
    expect(saved).toEqual([{ account: key.account, folder: 'INBOX', uidValidity: key.uidValidity, lastUid: 42 }]);
    const dry = memoryLedger(saved);
    expect(dry.get(key.account, 'INBOX')).toEqual({ uidValidity: key.uidValidity, lastUid: 42 });
    dry.commit(key, [43], 43);
    const reopened = openLedger(file);
    expect(reopened.get(key.account, 'INBOX')?.lastUid).toBe(42);
    reopened.close();
  });

  it('has nothing to read from a missing file or one without the table', () => {
    expect(readCheckpoints(path.join(dir, 'none.db'), key.account)).toEqual([]);
    const empty = path.join(dir, 'empty.db');
    new Database(empty).close();
    expect(readCheckpoints(empty, key.account)).toEqual([]);
  });
});
