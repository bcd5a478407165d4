// Rspamd's HTTP protocol (/checkv2), so rspamc, Rspamd's milter proxy, Exim's and Haraka's rspamd
// clients talk to atlas-email unchanged: request headers carry the envelope, the reply is Rspamd's JSON.
import type { Envelope } from '../core/look.ts';
import type { Action, Verdict } from '../core/verdict.ts';
import { spamHeaders } from './headers.ts';

/**
 * Rspamd's action names. Rspamd has "quarantine" too (its milter proxy quarantines in Postfix);
 * "soft reject" is how Rspamd tells the MTA to try later.
 */
const RSPAMD_ACTION: Record<Action, string> = {
  accept: 'no action',
  tag: 'add header',
  quarantine: 'quarantine',
  reject: 'reject',
  tempfail: 'soft reject',
};

/**
 * Request headers as Fetch's `Headers.get` reads them (repeated fields joined with ", "): a `Headers`, or
 * the Node fast path's view of the same raw fields (http-node.ts).
 */
export interface HeaderSource {
  get(name: string): string | null;
}

/**
 * The envelope from Rspamd-style request headers: `IP`, `Helo`, `From`, `Rcpt` (repeatable), `Queue-Id`.
 * Repeated headers arrive joined with ", " (Fetch semantics); envelope addresses carry no commas.
 */
export function envelopeFromHeaders(h: HeaderSource): Envelope | undefined {
  const ip = h.get('ip')?.trim();
  const helo = h.get('helo')?.trim();
  const from = h.get('from')?.trim();
  const rcptRaw = h.get('rcpt');
  const queueId = h.get('queue-id')?.trim();
  if (!ip && !helo && from === undefined && !rcptRaw && !queueId) return undefined;
  const env: Envelope = {};
  if (ip) env.ip = ip;
  if (helo) env.helo = helo;
  if (from !== undefined) env.from = from;
  if (rcptRaw) {
    const rcpt = rcptRaw
      .split(',')
      .map((r) => r.trim())
      .filter((r) => r.length > 0);
    if (rcpt.length > 0) env.rcpt = rcpt;
  }
  if (queueId) env.queueId = queueId;
  return env;
}

export interface RspamdSymbol {
  name: string;
  score: number;
  metric_score: number;
  description?: string;
  options?: string[];
}

export interface RspamdReply {
  is_skipped: boolean;
  score: number;
  required_score: number;
  action: string;
  thresholds: Record<string, number>;
  symbols: Record<string, RspamdSymbol>;
  messages: Record<string, string>;
  'message-id': string;
  time_real: number;
  milter: { add_headers: Record<string, string>; remove_headers: Record<string, number> };
  subject?: string;
}

export interface RspamdOptions {
  /** Reject threshold, reported in `thresholds` as Rspamd does. */
  reject: number;
  /** Subject prefix for spam; when set, tagged mail answers "rewrite subject" with the new `subject`. */
  rewriteSubject?: string | null;
}

/**
 * Rspamd's reply for one verdict. `required_score` is our spam threshold (`required`), so clients that
 * compare `score >= required_score` (Exim's spam condition) flag exactly what we call spam.
 */
export function toRspamd(v: Verdict, opts: RspamdOptions): RspamdReply {
  const symbols: Record<string, RspamdSymbol> = {};
  for (const s of v.symbols) {
    const prev = symbols[s.name];
    if (prev) {
      // The same rule may fire from two stages; Rspamd keys symbols by name, so their points add up.
      prev.score += s.score;
      prev.metric_score = prev.score;
      continue;
    }
    const out: RspamdSymbol = { name: s.name, score: s.score, metric_score: s.score };
    if (s.description) out.description = s.description;
    if (s.options && s.options.length > 0) out.options = s.options;
    symbols[s.name] = out;
  }
  const reply: RspamdReply = {
    is_skipped: false,
    score: v.score,
    required_score: v.required,
    action: RSPAMD_ACTION[v.action],
    thresholds: { reject: opts.reject, 'add header': v.required },
    symbols,
    messages: {},
    'message-id': v.messageId,
    time_real: v.elapsedMs / 1000,
    milter: { add_headers: {}, remove_headers: {} },
  };
  if (v.action === 'tag' && opts.rewriteSubject) {
    reply.action = 'rewrite subject';
    reply.subject = opts.rewriteSubject + (v.subject ?? '');
  }
  if ((v.action === 'reject' || v.action === 'tempfail') && v.reason) reply.messages.smtp_message = v.reason;
  if (v.action !== 'reject' && v.action !== 'tempfail') {
    for (const [name, value] of spamHeaders(v)) {
      // Index 0 removes every copy: an incoming X-Spam-* header is forgeable and must not survive.
      reply.milter.remove_headers[name] = 0;
      reply.milter.add_headers[name] = value;
    }
  }
  return reply;
}
