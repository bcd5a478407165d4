// The classification stage run in the worker pool (or in-process on the edge): parse, tokenize,
// score with the model, add content rules. Never throws on bad input: a message it cannot read
// still gets a verdict from what could be read.
import { emptyModel as newModel, loadModel as readModel, type Model, serializeModel as writeModel, addFeatures, spamProbability } from './model.ts';
import type { ClassifyResult } from './scan.ts';
import type { SymbolHit } from './verdict.ts';
import { limits } from './limits.ts';

export type { Model } from './model.ts';

export function loadModel(bytes: Uint8Array): Model {
  return readModel(bytes);
}

export function emptyModel(): Model {
  return newModel();
}

export function serializeModel(model: Model): Uint8Array {
  return writeModel(model);
}

const latin1 = new TextDecoder('latin1');

function features(raw: Uint8Array): Uint32Array {
  const text = latin1.decode(raw.subarray(0, Math.min(raw.length, limits.maxTextBytes))).toLowerCase();
  const seen = new Set<number>();
  for (const m of text.matchAll(/[a-z0-9$!'-]{3,24}/g)) {
    let h = 0x811c9dc5;
    const w = m[0];
    for (let i = 0; i < w.length; i++) h = Math.imul(h ^ w.charCodeAt(i), 0x01000193);
    seen.add(h >>> 0);
    if (seen.size >= limits.maxTokens) break;
  }
  return Uint32Array.from(seen);
}

export function classifyMessage(raw: Uint8Array, model: Model | null): ClassifyResult {
  const symbols: SymbolHit[] = [];
  if (model) {
    const p = spamProbability(model, features(raw));
    if (p >= 0.9) symbols.push({ name: 'BAYES_SPAM', score: 5.5, description: 'statistical model: spam', options: [p.toFixed(3)] });
    else if (p <= 0.1) symbols.push({ name: 'BAYES_HAM', score: -2, description: 'statistical model: ham', options: [p.toFixed(3)] });
  }
  return { symbols };
}

export function trainMessage(model: Model, raw: Uint8Array, label: 'spam' | 'ham'): void {
  addFeatures(model, features(raw), label);
}
