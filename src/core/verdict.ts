// The verdict every door answers with. Shape fixed in DESIGN.md; doors translate it, never extend it.

export const ACTIONS = ['accept', 'tag', 'quarantine', 'reject', 'tempfail'] as const;
export type Action = (typeof ACTIONS)[number];

export const SOURCES = ['early', 'cache', 'classifier'] as const;
export type Source = (typeof SOURCES)[number];

export interface SymbolHit {
  name: string;
  score: number;
  description?: string;
  /** Free-form detail such as the matched value (Rspamd's "options"). */
  options?: string[];
}

export interface Verdict {
  action: Action;
  score: number;
  required: number;
  spam: boolean;
  symbols: SymbolHit[];
  source: Source;
  elapsedMs: number;
  messageId: string;
  queueId?: string;
  /** Why a tempfail or reject happened, for SMTP/milter replies. */
  reason?: string;
  /** Error code when the action is tempfail because something failed. */
  errorCode?: string;
  /** Facts from the quick look that the verdict log keeps. */
  sender?: string;
  recipients?: string[];
  subject?: string;
  relayIp?: string;
  country?: string;
  /** Authentication-Results header value (SPF/DKIM/DMARC/ARC) for doors to add to passed mail. */
  authResults?: string;
  /** Per-stage timings in ms (look, early, cache, classify, decide) for metrics. */
  stages?: Partial<Record<Stage, number>>;
}

export const STAGES = ['look', 'early', 'cache', 'classify', 'decide'] as const;
export type Stage = (typeof STAGES)[number];

/** Hundredths, so a sum of symbol scores carries no float noise (0.1 + 0.2) into thresholds and replies. */
export function roundScore(n: number): number {
  return Math.round(n * 100) / 100;
}

export type PublicVerdict = Omit<Verdict, 'stages' | 'sender' | 'recipients' | 'subject' | 'relayIp'>;

/**
 * The verdict as the outside world sees it (DESIGN.md), fields in DESIGN's order. An allow-list, so a
 * field added to Verdict for internal use never leaks into the doors' answers by accident.
 */
export function publicVerdict(v: Verdict): PublicVerdict {
  const out: PublicVerdict = {
    action: v.action,
    score: v.score,
    required: v.required,
    spam: v.spam,
    symbols: v.symbols,
    source: v.source,
    elapsedMs: v.elapsedMs,
    messageId: v.messageId,
  };
  if (v.queueId !== undefined) out.queueId = v.queueId;
  if (v.reason !== undefined) out.reason = v.reason;
  if (v.errorCode !== undefined) out.errorCode = v.errorCode;
  if (v.country !== undefined) out.country = v.country;
  if (v.authResults !== undefined) out.authResults = v.authResults;
  return out;
}
