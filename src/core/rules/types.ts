import type { Action } from '../verdict.ts';

/** A rule as written in rules/*.yaml, after validation. */
export interface RuleSpec {
  symbol: string;
  score: number;
  group: string;
  description: string;
  priority: number;
  /** Ends the scan with this action when the rule fires (Rspamd's prefilter result). */
  action?: Action;
  /** Every condition given must hold; within a list, any entry may match. */
  match: MatchSpec;
  /** Where the rule came from, for error messages and reload logs. */
  file: string;
}

export interface MatchSpec {
  /** Envelope sender or From address; "*@domain" matches a whole domain. */
  sender?: string[];
  /** Sender or From domain, including subdomains. */
  domain?: string[];
  /** Relay IP or CIDR. */
  ip?: string[];
  subject?: string[];
  body?: string[];
  from?: string[];
  /** Header name → patterns on any of its values. */
  header?: Record<string, string[]>;
  /** Holds when every one of these headers is absent. */
  missing?: string[];
}

export interface RuleHit {
  symbol: string;
  score: number;
  description: string;
  group: string;
  priority: number;
  action?: Action;
  /** The value that matched (address, IP, or the matched text), for explanations. */
  options?: string[];
}
