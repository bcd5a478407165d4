// A verdict as one row of the verdicts table, and back. Rows travel to the writer thread as plain
// arrays in column order: cheap to clone, and the insert binds them positionally.
import { domainOf } from '../core/look.ts';
import type { Action, Source, SymbolHit, Verdict } from '../core/verdict.ts';

export const COLUMNS = [
  'time',
  'message_id',
  'queue_id',
  'sender',
  'sender_domain',
  'recipients',
  'subject',
  'relay_ip',
  'country',
  'score',
  'action',
  'source',
  'symbols',
  'elapsed_ms',
] as const;

export type Row = [
  time: number,
  messageId: string,
  queueId: string | null,
  sender: string,
  senderDomain: string,
  recipients: string,
  subject: string,
  relayIp: string | null,
  country: string | null,
  score: number,
  action: string,
  source: string,
  symbols: string,
  elapsedMs: number,
];

export function toRow(v: Verdict, time: number): Row {
  const sender = (v.sender ?? '').toLowerCase();
  return [
    time,
    v.messageId ?? '',
    v.queueId || null,
    sender,
    domainOf(sender),
    JSON.stringify(v.recipients ?? []),
    v.subject ?? '',
    v.relayIp || null,
    v.country || null,
    v.score,
    v.action,
    v.source,
    JSON.stringify(v.symbols ?? []),
    v.elapsedMs,
  ];
}

/** One logged verdict as the history API and `history --json` print it. */
export interface LoggedVerdict {
  id: number;
  time: string;
  messageId: string;
  queueId: string | null;
  sender: string;
  senderDomain: string;
  recipients: string[];
  subject: string;
  relayIp: string | null;
  country: string | null;
  score: number;
  action: Action;
  source: Source;
  symbols: SymbolHit[];
  elapsedMs: number;
}

export interface DbRow {
  id: number;
  time: number;
  message_id: string;
  queue_id: string | null;
  sender: string;
  sender_domain: string;
  recipients: string;
  subject: string;
  relay_ip: string | null;
  country: string | null;
  score: number;
  action: string;
  source: string;
  symbols: string;
  elapsed_ms: number;
}

function parseList<T>(json: string): T[] {
  try {
    const v = JSON.parse(json) as unknown;
    return Array.isArray(v) ? (v as T[]) : [];
  } catch {
    // A row edited by hand must not break the whole page.
    return [];
  }
}

export function fromDbRow(r: DbRow): LoggedVerdict {
  return {
    id: r.id,
    time: new Date(r.time).toISOString(),
    messageId: r.message_id,
    queueId: r.queue_id,
    sender: r.sender,
    senderDomain: r.sender_domain,
    recipients: parseList<string>(r.recipients),
    subject: r.subject,
    relayIp: r.relay_ip,
    country: r.country,
    score: r.score,
    action: r.action as Action,
    source: r.source as Source,
    symbols: parseList<SymbolHit>(r.symbols),
    elapsedMs: r.elapsed_ms,
  };
}
