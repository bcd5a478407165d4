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

/** Rounds a score the way SpamAssassin prints it (one decimal) without float noise. */
export function roundScore(n: number): number {
  return Math.round(n * 100) / 100;
}

/** The verdict as the outside world sees it (DESIGN.md): no internal timings or quick-look facts. */
export function publicVerdict(v: Verdict): Omit<Verdict, 'stages' | 'sender' | 'recipients' | 'subject' | 'relayIp'> {
  const { stages: _stages, sender: _s, recipients: _r, subject: _sub, relayIp: _ip, ...rest } = v;
  return rest;
}
