// SIGKILL of the filter in the middle of a 1,000-message stream through real Postfix loses nothing.
// Ports 12511-12513.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  countMail,
  type FilterProcess,
  message,
  type OutMessage,
  type PostfixInstance,
  postfixUnavailable,
  readMail,
  sendAll,
  startFilter,
  startPostfix,
  waitFor,
} from './postfix-harness.ts';

const SMTP = 12511;
const REINJECT = 12512;
const FILTER = 12513;
const dir = '/tmp/atlas-it-postfix-kill';
const TOTAL = 1000;
/** Every 50th message carries the reject marker: "properly rejected" must hold across the kill too. */
const isReject = (i: number) => i % 50 === 0;
/** Postfix runs at most this many deliveries to the filter at once (maxproc of "scan" in master.cf). */
const SCAN_MAXPROC = 10;
const unavailable = postfixUnavailable();

describe.skipIf(unavailable !== null)(`SIGKILL of the filter mid-stream${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  let pf: PostfixInstance;
  let filter: FilterProcess | undefined;

  beforeAll(() => {
    pf = startPostfix({ dir, smtpPort: SMTP, reinjectPort: REINJECT, filterPort: FILTER, mailboxes: ['bob@test.local'] });
  });
  afterAll(async () => {
    await filter?.stop();
    pf?.clean();
  });

  it(
    `delivers or rejects every one of ${TOTAL} messages, duplicating at most the transactions in flight at the kill`,
    async () => {
      filter = await startFilter({ port: FILTER, nextHop: REINJECT, dir });
      const messages: OutMessage[] = [];
      for (let i = 1; i <= TOTAL; i++) {
        messages.push(message({ id: `kill-${i}@example.org`, subject: isReject(i) ? `ATLAS-TEST-REJECT ${i}` : `stream ${i}` }));
      }
      const sending = sendAll(SMTP, messages, 4);

      const inbox = pf.mail('bob@test.local');
      await waitFor('a third of the stream delivered before the kill', () => countMail(inbox) >= TOTAL / 3, 90_000, 50);
      const first = filter;
      await first.stop('SIGKILL');
      const deliveredAtKill = countMail(inbox);

      const replies = await sending;
      expect(replies.every((r) => r.startsWith('250'))).toBe(true);

      filter = await startFilter({ port: FILTER, nextHop: REINJECT, dir });
      pf.flush();
      const wantDelivered = TOTAL - messages.filter((_, i) => isReject(i + 1)).length;
      const uniqueDelivered = () => new Set(readMail(inbox).map((m) => m.messageId)).size;
      await waitFor(`${wantDelivered} distinct messages in the inbox`, () => countMail(inbox) >= wantDelivered && uniqueDelivered() >= wantDelivered, 120_000, 500);
      await waitFor('an empty Postfix queue (bounces done)', () => pf.queued() === 0, 60_000, 500);

      const delivered = readMail(inbox);
      const ids = delivered.map((m) => m.messageId);
      const counts = new Map<string, number>();
      for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
      const missing: string[] = [];
      const wronglyDelivered: string[] = [];
      for (let i = 1; i <= TOTAL; i++) {
        const id = `kill-${i}@example.org`;
        if (isReject(i) && counts.has(id)) wronglyDelivered.push(id);
        if (!isReject(i) && !counts.has(id)) missing.push(id);
      }
      const duplicates = [...counts.values()].reduce((a, n) => a + (n - 1), 0);
      const bounces = readMail(pf.mail('catchall'));
      const bounced = messages.map((_, i) => i + 1).filter((i) => isReject(i) && bounces.some((b) => b.text.includes(`kill-${i}@example.org`)));

      // The kill really hit a live stream: Postfix had to defer deliveries to the dead filter and retry them.
      const deferred = pf.log().split('\n').filter((l) => /127\.0\.0\.1\]:12513.*status=deferred|12513: Connection refused/.test(l)).length;
      console.log(
        `kill test: delivered at kill ${deliveredAtKill}, delivered ${delivered.length} files for ${counts.size} ids, ` +
          `duplicates ${duplicates}, bounced ${bounced.length}/${TOTAL / 50}, deferred log lines ${deferred}`,
      );
      expect(deliveredAtKill).toBeLessThan(TOTAL - TOTAL / 50);
      expect(deferred).toBeGreaterThan(0);
      expect(missing).toEqual([]);
      expect(wronglyDelivered).toEqual([]);
      expect(bounced).toHaveLength(TOTAL / 50);
      for (const b of bounces) expect(b.text).toMatch(/550 5\.7\.1 Message rejected as spam/);
      // A duplicate needs the kill to land between the next hop's 250 and ours: at most one per delivery in flight.
      expect(duplicates).toBeLessThanOrEqual(SCAN_MAXPROC);
      expect(delivered.every((m) => /^X-Spam-Flag: NO$/m.test(m.text.replace(/\r/g, '')))).toBe(true);
    },
    240_000,
  );
});
