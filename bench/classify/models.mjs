// bench/classify/models.mjs: the measurements behind the model and token choices. 5-fold stratified
// cross-validation on all of ../shared/corpus, side by side: naive Bayes (Robinson/Fisher, as
// SpamBayes), the shipped logistic regression, and their average; then the regression with each
// token option switched. The figure that matters is spam recall at a ham false-positive rate of 0.1%.
// Usage: npm run bench:classify-models
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { auc, stratifiedFolds } from '../../dist/cli/eval.js';
import { analyse, contentSymbols } from '../../dist/core/content.js';
import { emptyModel, spamProbability, TRAIN_EPOCHS, trainBatch } from '../../dist/core/model.js';
import { parseMessage } from '../../dist/core/parse.js';
import { defaultTokenOptions, features } from '../../dist/core/tokens.js';
import { corpusFiles, requireCorpus } from '../lib/corpus.mjs';

requireCorpus();
const K = 5;
const SEED = 1729;

const items = corpusFiles()
  .filter((f) => f.size > 0)
  .map(({ source, label, path }) => {
    const content = analyse(parseMessage(new Uint8Array(readFileSync(path))));
    // The content rules that fired are features too, as prepare() gives them (model format 3).
    return { source, label, content, rules: contentSymbols(content).map((s) => s.name) };
  });
const labels = items.map((it) => it.label);
const folds = stratifiedFolds(labels, K, SEED);
console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? '?'} x${os.cpus().length}; ${items.length} messages, ${K}-fold, seed ${SEED}`);

/** Naive Bayes as SpamBayes scores it: Robinson's per-token estimate, Fisher's chi-square combining. */
function trainNB(batch, bits = 20) {
  const mask = (1 << bits) - 1;
  const m = { mask, spam: new Uint32Array(1 << bits), ham: new Uint32Array(1 << bits), nSpam: 0, nHam: 0 };
  for (const { features: x, label } of batch) {
    const t = label === 'spam' ? m.spam : m.ham;
    for (const f of x.hashes) t[f & mask]++;
    if (label === 'spam') m.nSpam++;
    else m.nHam++;
  }
  return m;
}
function chi2Q(x2, v) {
  const mm = x2 / 2;
  let sum = Math.exp(-mm);
  let term = sum;
  for (let i = 1; i < v / 2; i++) {
    term *= mm / i;
    sum += term;
  }
  return Math.min(sum, 1);
}
function probNB(m, x) {
  let lnS = 0;
  let lnH = 0;
  let n = 0;
  for (const f of x.hashes) {
    const sc = m.spam[f & m.mask];
    const hc = m.ham[f & m.mask];
    if (sc + hc === 0) continue;
    const sr = sc / m.nSpam;
    const hr = hc / m.nHam;
    const p = (0.45 * 0.5 + (sc + hc) * (sr / (sr + hr))) / (0.45 + sc + hc);
    if (Math.abs(p - 0.5) < 0.1) continue;
    lnS += Math.log(1 - p);
    lnH += Math.log(p);
    n++;
  }
  if (n === 0) return 0.5;
  return (1 - chi2Q(-2 * lnS, 2 * n) - (1 - chi2Q(-2 * lnH, 2 * n)) + 1) / 2;
}

/** Out-of-fold probabilities for one feature set, by each model. */
function crossValidate(xs, training = {}) {
  const out = { nb: new Float64Array(xs.length), lr: new Float64Array(xs.length) };
  for (let k = 0; k < K; k++) {
    const batch = [];
    xs.forEach((x, i) => folds[i] !== k && batch.push({ features: x, label: labels[i] }));
    const lr = emptyModel();
    trainBatch(lr, batch, TRAIN_EPOCHS, SEED + k, training);
    const nb = trainNB(batch);
    xs.forEach((x, i) => {
      if (folds[i] !== k) return;
      out.lr[i] = spamProbability(lr, x);
      out.nb[i] = probNB(nb, x);
    });
  }
  return out;
}

function figures(p) {
  const ham = [];
  const spam = [];
  p.forEach((v, i) => (labels[i] === 'spam' ? spam : ham).push(v));
  ham.sort((a, b) => b - a);
  // The threshold that lets through 0.1% of ham (rounded down: at most that many).
  const thr = ham[Math.floor(ham.length * 0.001)];
  const recall = spam.filter((v) => v > thr).length / spam.length;
  const a = auc([...p].map((v, i) => ({ value: v, spam: labels[i] === 'spam' })));
  return { recall, auc: a, thr };
}

/**
 * How a model trained like the shipped one (every source but phishing-pot) does on phishing-pot, at
 * the probability threshold that cross-validation put at a 0.1% ham false-positive rate.
 */
function shippedOnPot(xs, thr) {
  const batch = [];
  xs.forEach((x, i) => items[i].source !== 'phishing-pot' && batch.push({ features: x, label: labels[i] }));
  const m = emptyModel();
  trainBatch(m, batch, TRAIN_EPOCHS, SEED);
  const pot = xs.filter((_, i) => items[i].source === 'phishing-pot');
  return pot.filter((x) => spamProbability(m, x) > thr).length / pot.length;
}

const rows = [];
const show = (name, p, xs) => {
  const f = figures(p);
  rows.push([name, (f.recall * 100).toFixed(2) + '%', f.auc.toFixed(5), xs ? (shippedOnPot(xs, f.thr) * 100).toFixed(1) + '%' : '']);
};

const base = items.map((it) => features(it.content, defaultTokenOptions, it.rules));
const cv = crossValidate(base);
show('naive Bayes (chi-square)', cv.nb);
show('logistic regression (shipped)', cv.lr, base);
show('average of both', cv.lr.map((v, i) => (v + cv.nb[i]) / 2));
show('LR trained as in session 2 (one replica, no dropout, no ham cost)', crossValidate(base, { replicas: 1, dropout: 0, hamCost: 1 }).lr);
// One feature group: content and header hashes scaled together by 1/sqrt(all), as model version 1 did.
const oneGroup = base.map((x) => ({ hashes: x.hashes, content: x.hashes.length }));
show('LR, one feature group (v1)', crossValidate(oneGroup).lr, oneGroup);
for (const [name, opts] of [
  ['LR + word pairs (bigrams)', { ...defaultTokenOptions, bigrams: true }],
  ['LR without header tokens', { ...defaultTokenOptions, headers: false }],
  ['LR without Received tokens', { ...defaultTokenOptions, received: false }],
  ['LR without header shapes', { ...defaultTokenOptions, shapes: false }],
  ['LR without From-domain alignment', { ...defaultTokenOptions, alignment: false }],
]) {
  const xs = items.map((it) => features(it.content, opts, it.rules));
  show(name, crossValidate(xs).lr, xs);
}
const w0 = Math.max(...rows.map((r) => r[0].length));
console.log(`${'model / tokens'.padEnd(w0)}  recall@FPR0.1%  AUC      phishing-pot, trained without it`);
for (const r of rows) console.log(`${r[0].padEnd(w0)}  ${r[1].padStart(14)}  ${r[2]}  ${r[3].padStart(8)}`);
