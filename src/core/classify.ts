// The classification stage run in the worker pool (or in-process on the edge): parse, analyse,
// tokenize, score with the model, add content rules. Never throws on bad input: every step is bounded
// by limits.ts, and a message that cannot be read at all still gets a symbol saying so.
import { analyse, type Content, contentSymbols } from './content.ts';
import { FilterError } from './errors.ts';
import * as model from './model.ts';
import { parseMessage } from './parse.ts';
import type { ClassifyResult } from './scan.ts';
import { type Features, features } from './tokens.ts';
import { roundScore, type SymbolHit } from './verdict.ts';

export type Model = model.Model;

export function loadModel(bytes: Uint8Array): Model {
  return model.loadModel(bytes);
}

export function emptyModel(): Model {
  return model.emptyModel();
}

export function serializeModel(m: Model): Uint8Array {
  return model.serializeModel(m);
}

/** Parsed, analysed and tokenized: what training and scoring both start from. */
export interface Prepared {
  content: Content;
  features: Features;
}

export function prepare(raw: Uint8Array): Prepared {
  const content = analyse(parseMessage(raw));
  return { content, features: features(content) };
}

/**
 * Points from the model's probability, continuous in its log-odds: 1.15 points per unit, so p = 0.987
 * gives 5 points (tags alone) and p = 0.03 gives -4 (the cap). Capped: one symbol must not outweigh
 * everything (Rspamd caps BAYES_SPAM too). The slope was set from cross-validation so that the 5-point
 * line, with the content rules, sits at a ham false-positive rate of 0.1% (bench/README.md).
 */
export const BAYES_POINTS_PER_LOGIT = 1.15;
const SPAM_CAP = 8;
const HAM_CAP = -4;

export function bayesSymbol(p: number): SymbolHit | null {
  const q = Math.min(Math.max(p, 1e-9), 1 - 1e-9);
  const logit = Math.log(q / (1 - q));
  const points = roundScore(Math.min(SPAM_CAP, Math.max(HAM_CAP, BAYES_POINTS_PER_LOGIT * logit)));
  if (Math.abs(points) < 0.5) return null;
  const options = [`p=${p.toFixed(4)}`];
  return points > 0
    ? { name: 'BAYES_SPAM', score: points, description: 'statistical model says spam', options }
    : { name: 'BAYES_HAM', score: points, description: 'statistical model says ham', options };
}

/** Symbols and the raw probability (eval needs it for the AUC). */
export function score(raw: Uint8Array, m: Model | null): { symbols: SymbolHit[]; probability: number | null } {
  let prep: Prepared;
  try {
    prep = prepare(raw);
  } catch (e) {
    // Parsing is written not to throw; if it still does, the message is odd, not the filter broken.
    const why = e instanceof Error ? e.message : String(e);
    return { symbols: [{ name: 'PARSE_FAILED', score: 0.5, description: 'the message could not be parsed', options: [why.slice(0, 100)] }], probability: null };
  }
  const symbols = contentSymbols(prep.content);
  let probability: number | null = null;
  if (m && m.spamDocs + m.hamDocs > 0) {
    probability = model.spamProbability(m, prep.features);
    const b = bayesSymbol(probability);
    if (b) symbols.unshift(b);
  }
  return { symbols, probability };
}

export function classifyMessage(raw: Uint8Array, m: Model | null): ClassifyResult {
  return { symbols: score(raw, m).symbols };
}

export function trainMessage(m: Model, raw: Uint8Array, label: 'spam' | 'ham'): void {
  if (label !== 'spam' && label !== 'ham') throw new FilterError('EINTERNAL', `unknown training label "${String(label)}"`);
  model.trainBatch(m, [{ features: prepare(raw).features, label }], 1);
}
