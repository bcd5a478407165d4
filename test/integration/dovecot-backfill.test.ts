// `atlas-email backfill` against a real Dovecot on loopback (test/integration/dovecot.sh): moves,
// a run killed halfway and resumed, dry runs, refused logins, missing folders, dropped connections,
// oversized messages, keywords.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { corpusFiles, hasCorpus, noCorpusReason } from '../helpers/corpus.ts';
import { copies, type Dovecot, dovecotMissing, makeCertificate, mustRun, repoRoot, runCli, startDovecot } from './dovecot-server.ts';

// Ports 15100-15199 belong to the backfill suites and bench.
const PORT = 15110;
const IMAPS_PORT = 15111;
const PASSWORD = 'secret';
const users = { test: PASSWORD, dry: PASSWORD, drop: PASSWORD, big: PASSWORD, tag: PASSWORD, bad: PASSWORD, uv: PASSWORD, learn: PASSWORD, pend: PASSWORD, slow: PASSWORD, tls: PASSWORD };

const fixtureDir = path.join(repoRoot, 'test/fixtures');
function fixtureMessages(): Buffer[] {
  const files = [
    ...readdirSync(fixtureDir).filter((f) => f.endsWith('.eml')).map((f) => path.join(fixtureDir, f)),
    ...readdirSync(path.join(fixtureDir, 'rules'))
      .filter((f) => f.endsWith('.eml'))
      .map((f) => path.join(fixtureDir, 'rules', f)),
  ].sort();
  return files.map((f) => readFileSync(f));
}

if (dovecotMissing && mustRun) throw new Error(`CI=true but the Dovecot suite cannot run: ${dovecotMissing}`);
if (dovecotMissing) console.warn(`skipping the Dovecot backfill suite: ${dovecotMissing}`);

describe.skipIf(Boolean(dovecotMissing))('backfill against a real Dovecot', () => {
  let dc: Dovecot;
  let work: string;
  const env = { ATLAS_IMAP_PASSWORD: PASSWORD, ATLAS_WORKER_COUNT: '1' };
  const url = (user: string) => `imap://${user}@127.0.0.1:${PORT}`;

  let ca = '';
  beforeAll(() => {
    work = mkdtempSync(path.join(os.tmpdir(), 'atlas-backfill-'));
    const { cert, key } = makeCertificate(work);
    ca = cert;
    dc = startDovecot(PORT, users, { cert, key, imapsPort: IMAPS_PORT });
  });
  afterAll(() => {
    dc?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  async function withClient<T>(user: string, fn: (c: ImapFlow) => Promise<T>): Promise<T> {
    const c = await dc.client(user, PASSWORD);
    try {
      return await fn(c);
    } finally {
      await c.logout();
    }
  }

  /** Message-IDs in a folder, as the server holds them. */
  function folderIds(user: string, folder: string): Promise<string[]> {
    return withClient(user, async (c) => {
      const lock = await c.getMailboxLock(folder, { readOnly: true });
      try {
        const out: string[] = [];
        if (!c.mailbox || c.mailbox.exists === 0) return out;
        for await (const m of c.fetch('1:*', { envelope: true })) out.push(m.envelope?.messageId ?? '');
        return out;
      } finally {
        lock.release();
      }
    });
  }

  const messagesIn = (status: false | { messages?: number }) => (status ? status.messages : undefined);

  function rows(db: string, sql: string): Record<string, unknown>[] {
    const d = new Database(db, { readonly: true });
    try {
      return d.prepare(sql).all() as Record<string, unknown>[];
    } finally {
      d.close();
    }
  }

  describe.skipIf(!hasCorpus)(`2,000 corpus messages, --action move (${hasCorpus ? 'corpus present' : noCorpusReason})`, () => {
    const TOTAL = 2000;
    let db: string;

    beforeAll(() => {
      db = path.join(work, 'move.db');
      // Half ham, half spam from the public corpora, and the rule fixtures so some spam is certain
      // whatever the model decides; every message made unique so Message-IDs identify them.
      const ham = corpusFiles(['spamassassin', 'csdmc2010']).filter((f) => f.label === 'ham');
      const spam = corpusFiles(['spamassassin', 'csdmc2010']).filter((f) => f.label === 'spam');
      const fixtures = fixtureMessages();
      const mixed: Buffer[] = [...fixtures];
      for (let i = 0; mixed.length < TOTAL; i++) mixed.push(readFileSync((i % 2 ? spam : ham)[Math.floor(i / 2)].path));
      expect(dc.drop('test', 'INBOX', copies(mixed, TOTAL, 'move'))).toBe(TOTAL);
    });

    it('is killed halfway, resumes, and processes every message exactly once', async () => {
      // First run: SIGKILL once the checkpoint has passed a third of the folder.
      let killedAt = 0;
      const first = await runCli([`backfill`, url('test'), '--action', 'move', '--batch', '50', '--db', db], env, (child) => {
        const timer = setInterval(() => {
          let last = 0;
          try {
            last = Number(rows(db, 'SELECT COALESCE(MAX(last_uid), 0) AS n FROM backfill_checkpoints')[0]?.n ?? 0);
          } catch {
            return; // the file or table does not exist yet
          }
          if (last >= TOTAL / 3) {
            killedAt = last;
            child.kill('SIGKILL');
            clearInterval(timer);
          }
        }, 10);
        child.on('close', () => clearInterval(timer));
      });
      expect(first.signal, first.stderr).toBe('SIGKILL');
      expect(killedAt).toBeGreaterThan(0);
      expect(killedAt).toBeLessThan(TOTAL);
      const recordedBefore = Number(rows(db, 'SELECT COUNT(*) AS n FROM backfill_messages')[0].n);
      expect(recordedBefore).toBeLessThan(TOTAL);

      const second = await runCli([`backfill`, url('test'), '--action', 'move', '--batch', '50', '--db', db], env);
      expect(second.code, second.stderr).toBe(0);
      expect(second.stderr).toContain('backfill summary:');

      // Exactly once: one ledger row and one verdict-log row per message, all settled.
      const ledger = rows(db, 'SELECT uid, message_id, spam, outcome, state FROM backfill_messages');
      expect(ledger).toHaveLength(TOTAL);
      expect(new Set(ledger.map((r) => r.uid)).size).toBe(TOTAL);
      expect(ledger.every((r) => r.state === 'done')).toBe(true);
      expect(rows(db, 'SELECT COUNT(*) AS n FROM verdicts')[0].n).toBe(TOTAL);
      expect(new Set(rows(db, 'SELECT message_id FROM verdicts').map((r) => r.message_id)).size).toBe(TOTAL);

      // The server agrees with the verdicts: spam in Junk, ham still in INBOX, nothing lost or doubled.
      const spamIds = ledger.filter((r) => r.spam === 1).map((r) => r.message_id as string);
      const hamIds = ledger.filter((r) => r.spam === 0).map((r) => r.message_id as string);
      expect(ledger.filter((r) => r.outcome === 'moved').map((r) => r.message_id)).toEqual(spamIds);
      expect(spamIds.length).toBeGreaterThan(0);
      expect(hamIds.length).toBeGreaterThan(0);
      const junk = await folderIds('test', 'Junk');
      const inbox = await folderIds('test', 'INBOX');
      expect(junk.sort()).toEqual([...spamIds].sort());
      expect(inbox.sort()).toEqual([...hamIds].sort());

      // A third run finds nothing left to do.
      const third = await runCli([`backfill`, url('test'), '--action', 'move', '--db', db], env);
      expect(third.code, third.stderr).toBe(0);
      expect(third.stderr).toMatch(/summary: 0 scanned/);
      expect(rows(db, 'SELECT COUNT(*) AS n FROM verdicts')[0].n).toBe(TOTAL);
    }, 150_000);
  });

  it('--dry-run changes nothing: not the folders, not the flags, not the database', async () => {
    dc.drop('dry', 'INBOX', copies(fixtureMessages(), 120, 'dry'));
    const db = path.join(work, 'dry.db');
    const r = await runCli(['backfill', url('dry'), '--action', 'move', '--dry-run', '--db', db], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/dry run summary: 120 scanned/);
    expect(r.stderr).toMatch(/would be moved [1-9]/);
    expect(r.stderr).toContain('nothing was changed');
    await withClient('dry', async (c) => {
      expect(messagesIn(await c.status('INBOX', { messages: true }))).toBe(120);
      expect(messagesIn(await c.status('Junk', { messages: true }))).toBe(0);
      const lock = await c.getMailboxLock('INBOX', { readOnly: true });
      try {
        // \Recent still set: no session has even selected the folder read-write.
        for await (const m of c.fetch('1:*', { flags: true })) expect([...(m.flags ?? [])]).toEqual(['\\Recent']);
      } finally {
        lock.release();
      }
    });
    expect(readdirSync(work)).not.toContain('dry.db');
  });

  it('a refused login exits 77 with EAUTH and touches nothing', async () => {
    const r = await runCli(['backfill', url('bad'), '--action', 'move', '--db', path.join(work, 'bad.db')], { ...env, ATLAS_IMAP_PASSWORD: 'wrong' });
    expect(r.code).toBe(77);
    expect(r.stderr).toMatch(/EAUTH: the IMAP server 127\.0\.0\.1:15110 refused the login of "bad"/);
  });

  it('a missing folder exits 78 with ECONFIG naming it, before anything is moved', async () => {
    dc.drop('bad', 'INBOX', copies(fixtureMessages(), 5, 'missing'));
    const db = path.join(work, 'missing.db');
    const r = await runCli(['backfill', url('bad'), '--folders', 'INBOX,Nope', '--action', 'move', '--db', db], env);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('ECONFIG: the folder "Nope" does not exist');
    await withClient('bad', async (c) => expect(messagesIn(await c.status('INBOX', { messages: true }))).toBe(5));
    const moveToMissing = await runCli(['backfill', url('bad'), '--action', 'move', '--junk', 'Spam', '--db', db], env);
    expect(moveToMissing.code).toBe(78);
    expect(moveToMissing.stderr).toContain('the folder "Spam" does not exist');
  });

  it('reconnects after a dropped connection and finishes from the checkpoint, each message once', async () => {
    const COUNT = 400;
    dc.drop('drop', 'INBOX', copies(fixtureMessages(), COUNT, 'drop'));
    // A loopback relay to Dovecot that cuts the first session once 150 kB have come back from the server.
    let sessions = 0;
    const relay = net.createServer((client) => {
      const n = ++sessions;
      const server = net.connect(PORT, '127.0.0.1');
      let fromServer = 0;
      server.on('data', (d: Buffer) => {
        fromServer += d.length;
        client.write(d);
        if (n === 1 && fromServer > 150_000) {
          client.destroy();
          server.destroy();
        }
      });
      client.on('data', (d) => server.write(d));
      const end = () => {
        client.destroy();
        server.destroy();
      };
      client.on('error', end);
      server.on('error', end);
      client.on('close', end);
      server.on('close', end);
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    const relayPort = (relay.address() as net.AddressInfo).port;
    const db = path.join(work, 'drop.db');
    try {
      const r = await runCli(['backfill', `imap://drop@127.0.0.1:${relayPort}`, '--action', 'tag', '--batch', '25', '--db', db], env);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/reconnecting in \d+ ms/);
      expect(r.stderr).toMatch(/reconnects 1\b/);
      // a reading and an acting session, twice: before and after the cut
      expect(sessions).toBe(4);
    } finally {
      relay.close();
    }
    expect(rows(db, 'SELECT COUNT(*) AS n FROM backfill_messages')[0].n).toBe(COUNT);
    expect(rows(db, 'SELECT COUNT(*) AS n FROM verdicts')[0].n).toBe(COUNT);
    await withClient('drop', async (c) => {
      const lock = await c.getMailboxLock('INBOX', { readOnly: true });
      try {
        let tagged = 0;
        for await (const m of c.fetch('1:*', { flags: true })) if (m.flags?.has('$Junk') || m.flags?.has('$NotJunk')) tagged++;
        expect(tagged).toBe(COUNT);
      } finally {
        lock.release();
      }
    });
  });

  it('skips and counts messages over maxMessageBytes without downloading them', async () => {
    const small = copies(fixtureMessages(), 10, 'small');
    const huge = Buffer.from(`From: a@example.org\r\nTo: b@example.org\r\nSubject: big\r\nMessage-ID: <huge@atlas.test>\r\n\r\n${'x'.repeat(200_000)}\r\n`);
    dc.drop('big', 'INBOX', [...small, huge]);
    const config = path.join(work, 'big.yaml');
    writeFileSync(config, 'maxMessageBytes: 100000\n');
    const db = path.join(work, 'big.db');
    const r = await runCli(['backfill', url('big'), '--action', 'move', '--config', config, '--db', db], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/skipped too large 1, errors 0/);
    expect(rows(db, "SELECT message_id, outcome FROM backfill_messages WHERE outcome = 'too-large'")).toEqual([{ message_id: null, outcome: 'too-large' }]);
    expect(await folderIds('big', 'INBOX')).toContain('<huge@atlas.test>');
  });

  it('counts messages the classifier cannot judge in time as errors, leaves them alone, and goes on', async () => {
    dc.drop('slow', 'INBOX', copies(fixtureMessages(), 30, 'slow'));
    // A 1 ms deadline per classification: most tasks time out (ETIMEOUT), first try and retry alike.
    const config = path.join(work, 'slow.yaml');
    writeFileSync(config, 'pool:\n  taskTimeoutMs: 1\n');
    const db = path.join(work, 'slow.db');
    const r = await runCli(['backfill', url('slow'), '--action', 'move', '--config', config, '--db', db], env);
    expect(r.code, r.stderr).toBe(0);
    const ledger = rows(db, 'SELECT uid, verdict, outcome FROM backfill_messages');
    expect(ledger).toHaveLength(30);
    const errors = ledger.filter((x) => x.outcome === 'error');
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((x) => x.verdict === 'ETIMEOUT')).toBe(true);
    expect(r.stderr).toContain(`errors ${errors.length}`);
    await withClient('slow', async (c) => {
      expect(messagesIn(await c.status('INBOX', { messages: true }))).toBe(30 - ledger.filter((x) => x.outcome === 'moved').length);
    });
  });

  it('--action tag sets $Junk on spam and $NotJunk on ham, as the verdicts say', async () => {
    dc.drop('tag', 'INBOX', copies(fixtureMessages(), 40, 'tag'));
    const db = path.join(work, 'tag.db');
    const r = await runCli(['backfill', url('tag'), '--action', 'tag', '--db', db], env);
    expect(r.code, r.stderr).toBe(0);
    const spamById = new Map(rows(db, 'SELECT message_id, spam FROM backfill_messages').map((x) => [x.message_id, x.spam === 1]));
    expect(spamById.size).toBe(40);
    await withClient('tag', async (c) => {
      const lock = await c.getMailboxLock('INBOX', { readOnly: true });
      try {
        for await (const m of c.fetch('1:*', { flags: true, envelope: true })) {
          const spam = spamById.get(m.envelope?.messageId);
          expect(m.flags?.has(spam ? '$Junk' : '$NotJunk'), m.envelope?.messageId).toBe(true);
          expect(m.flags?.has(spam ? '$NotJunk' : '$Junk')).toBe(false);
        }
      } finally {
        lock.release();
      }
    });
  });

  it('starts a folder over when its UIDVALIDITY changes', async () => {
    dc.drop('uv', 'INBOX', copies(fixtureMessages(), 10, 'uv'));
    const db = path.join(work, 'uv.db');
    const first = await runCli(['backfill', url('uv'), '--db', db], env);
    expect(first.code, first.stderr).toBe(0);
    // Without its uidlist and index Dovecot renumbers the folder under a new UIDVALIDITY, as after a
    // restore from backup. UIDVALIDITY is a clock value: let a second pass so it cannot repeat.
    await new Promise((r) => setTimeout(r, 1100));
    const maildir = path.join(dc.dir, 'mail/uv/Maildir');
    for (const f of readdirSync(maildir)) if (f.startsWith('dovecot-uidlist') || f.startsWith('dovecot.index')) rmSync(path.join(maildir, f));
    const again = await runCli(['backfill', url('uv'), '--db', db], env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/UIDVALIDITY changed \(\d+ → \d+\); sweeping the folder again/);
    expect(again.stderr).toMatch(/summary: 10 scanned/);
    const validities = rows(db, 'SELECT uid_validity, COUNT(*) AS n FROM backfill_messages GROUP BY uid_validity');
    expect(validities.map((v) => v.n)).toEqual([10, 10]);
  });

  it('re-applies the decisions a run left pending (killed between its moves and its commit) without rescanning', async () => {
    dc.drop('pend', 'INBOX', copies(fixtureMessages(), 60, 'pend'));
    const db = path.join(work, 'pend.db');
    const first = await runCli(['backfill', url('pend'), '--action', 'move', '--db', db], env);
    expect(first.code, first.stderr).toBe(0);
    const moved = rows(db, "SELECT COUNT(*) AS n FROM backfill_messages WHERE outcome = 'moved'")[0].n as number;
    expect(moved).toBeGreaterThan(0);
    // A dry run starts from the saved checkpoint: the next real run has nothing to do.
    const dry = await runCli(['backfill', url('pend'), '--action', 'move', '--dry-run', '--db', db], env);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stderr).toMatch(/dry run summary: 0 scanned/);
    // The state a SIGKILL right after UID MOVE leaves behind: decisions pending, checkpoint not moved.
    const d = new Database(db);
    d.exec("UPDATE backfill_messages SET state = 'pending'; UPDATE backfill_checkpoints SET last_uid = 0");
    d.close();
    const again = await runCli(['backfill', url('pend'), '--action', 'move', '--db', db], env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain('applied 60 decisions left by an interrupted run');
    expect(again.stderr).toMatch(/summary: 0 scanned/);
    expect(rows(db, 'SELECT COUNT(*) AS n FROM verdicts')[0].n).toBe(60);
    expect(rows(db, "SELECT COUNT(*) AS n FROM backfill_messages WHERE state = 'done'")[0].n).toBe(60);
    await withClient('pend', async (c) => {
      expect(messagesIn(await c.status('Junk', { messages: true }))).toBe(moved);
      expect(messagesIn(await c.status('INBOX', { messages: true }))).toBe(60 - moved);
    });
  });

  it('speaks TLS: imaps:// and --starttls with a trusted certificate; an untrusted one exits 78 at once', async () => {
    dc.drop('tls', 'INBOX', copies(fixtureMessages(), 12, 'tls'));
    const trusted = { ...env, NODE_EXTRA_CA_CERTS: ca };
    const implicit = await runCli(['backfill', `imaps://tls@127.0.0.1:${IMAPS_PORT}`, '--dry-run'], trusted);
    expect(implicit.code, implicit.stderr).toBe(0);
    expect(implicit.stderr).toMatch(/summary: 12 scanned/);
    const upgraded = await runCli(['backfill', url('tls'), '--starttls', '--dry-run'], trusted);
    expect(upgraded.code, upgraded.stderr).toBe(0);
    expect(upgraded.stderr).toMatch(/summary: 12 scanned/);
    const untrusted = await runCli(['backfill', `imaps://tls@127.0.0.1:${IMAPS_PORT}`, '--dry-run'], env);
    expect(untrusted.code).toBe(78);
    expect(untrusted.stderr).toMatch(/ECONFIG: TLS with the IMAP server tls@127\.0\.0\.1:15111 failed/);
    expect(untrusted.stderr).not.toContain('reconnecting');
  });

  it('learn --imap trains from the spam and ham folders, newest --limit first, without marking anything read', async () => {
    dc.drop('learn', 'Junk', copies(fixtureMessages(), 40, 'learn-spam'));
    dc.drop('learn', 'INBOX', copies(fixtureMessages(), 25, 'learn-ham'));
    const model = path.join(work, 'learn.model');
    const r = await runCli(['learn', '--imap', url('learn'), '--spam-folder', 'Junk', '--ham-folder', 'INBOX', '--limit', '30', '--new', '--model', model], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/learn: spam .*\/Junk: 30 messages/);
    expect(r.stderr).toMatch(/learn: ham .*\/INBOX: 25 messages/);
    expect(r.stderr).toMatch(/spam 0 → 30, ham 0 → 25/);
    await withClient('learn', async (c) => {
      const lock = await c.getMailboxLock('Junk', { readOnly: true });
      try {
        for await (const m of c.fetch('1:*', { flags: true })) expect(m.flags?.has('\\Seen')).toBe(false);
      } finally {
        lock.release();
      }
    });
    const missing = await runCli(['learn', '--imap', url('learn'), '--spam-folder', 'Spam', '--model', model], env);
    expect(missing.code).toBe(78);
    expect(missing.stderr).toContain('the folder "Spam" does not exist');
  });
});
