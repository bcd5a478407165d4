// Symbols → score → action, by thresholds from config (SpamAssassin's required_score, Rspamd's actions).
import type { Config } from './config.ts';
import { type Action, roundScore, type SymbolHit } from './verdict.ts';

export interface Decision {
  score: number;
  action: Action;
  spam: boolean;
}

export function decide(symbols: readonly SymbolHit[], thresholds: Config['thresholds']): Decision {
  let score = 0;
  for (const s of symbols) score += s.score;
  score = roundScore(score);
  let action: Action = 'accept';
  if (score >= thresholds.reject) action = 'reject';
  else if (thresholds.quarantine !== null && score >= thresholds.quarantine) action = 'quarantine';
  else if (score >= thresholds.required) action = 'tag';
  return { score, action, spam: score >= thresholds.required };
}
