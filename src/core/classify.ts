// The classification stage run in the worker pool (or in-process on the edge): parse, analyse,
// tokenize, score with the model, add content rules. Never throws on bad input: every step is bounded
// by limits.ts, and a message that cannot be read at all still gets a symbol saying so.
import { analyse, type Content, contentSymbols } from './content.ts';
import { FilterError } from './errors.ts';
import * as model from './model.ts';
import { parseMessage } from './parse.ts';
import type { ClassifyResult } from './scan.ts';
import { defaultTokenOptions, type Features, features } from './tokens.ts';
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

/** Parsed, analysed, checked by the content rules and tokenized: what training and scoring both start from. */
export interface Prepared {
  content: Content;
  /** The content rules that fired, with their own points (used only when no trained model scores). */
  symbols: SymbolHit[];
  features: Features;
}

export function prepare(raw: Uint8Array): Prepared {
  const content = analyse(parseMessage(raw));
  const symbols = contentSymbols(content);
  return { content, symbols, features: features(content, defaultTokenOptions, symbols.map((s) => s.name)) };
}

/** Whether the model has been trained, so that it scores the message and weighs the content rules. */
export function scores(m: Model | null): m is Model {
  return m !== null && m.spamDocs + m.hamDocs > 0;
}

/**
 * The content rules' symbols as the verdict shows them. A trained model has learned each rule's weight
 * (they are among its features), so the symbols stay, to say what fired, at 0 points: adding the fixed
 * points too measured worse (bench/README.md, Session 3). Without a model the fixed points stand.
 */
export function ruleSymbols(symbols: SymbolHit[], m: Model | null): SymbolHit[] {
  return scores(m) ? symbols.map((s) => ({ ...s, score: 0 })) : symbols;
}

/**
 * Points from the model's probability, continuous in its log-odds: 0.88 points per unit, so p = 0.9966
 * gives 5 points (tags alone) and p = 0.0105 gives -4 (the cap). Capped: one symbol must not outweigh
 * everything (Rspamd caps BAYES_SPAM too). The slope is the steepest that keeps the 5-point line at a
 * ham false-positive rate of 0.1% on average over seven cross-validation fold splits
 * (bench/classify/splits.mjs, bench/README.md): one split alone moves the line by tens of spam.
 */
export const BAYES_POINTS_PER_LOGIT = 0.88;
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
  const symbols = ruleSymbols(prep.symbols, m);
  let probability: number | null = null;
  if (scores(m)) {
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
