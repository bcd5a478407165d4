// `atlas-email eval`: how well the classifier separates labelled ham and spam. Without --folds it
// scores the messages with the current model (training nothing); with --folds K it runs stratified,
// seeded K-fold cross-validation, each fold trained from an empty model. Runs in-process, one thread.
import { bayesSymbol, emptyModel, prepare, ruleSymbols } from '../core/classify.ts';
import { FilterError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import { spamProbability, TRAIN_EPOCHS, trainBatch } from '../core/model.ts';
import type { Features } from '../core/tokens.ts';
import type { SymbolHit } from '../core/verdict.ts';
import { EXIT, intFlag, parseCommand, UsageError } from './args.ts';
import { loadConfig } from './config-file.ts';
import { fileSources, readModelFile } from './learn.ts';
import { sourceName } from './mailsource.ts';

export const evalHelp = `Usage: atlas-email eval --ham PATH --spam PATH [--folds K] [--model FILE]

Measures the classifier on labelled messages and prints a table per source (the folder holding
ham/ and spam/, e.g. spamassassin), then, last, one JSON line:
  {"precision","recall","f1","fpr","auc","tp","fp","tn","fn","messages","threshold","folds"}

A message counts as spam when the classifier's points (BAYES_SPAM/BAYES_HAM and the content
rules) reach the config's required score (5). The AUC is over the model's probability.

  PATH is a folder of .eml files or an mbox file; --ham and --spam may be repeated.

Options:
  --ham PATH       messages that are not spam
  --spam PATH      messages that are spam
  --folds K        K-fold cross-validation (stratified, seeded; K from 2 to 20); trains from an
                   empty model per fold and never touches the model file
  --seed N         seed of the fold split (default 1729)
  --model FILE     model to score with when not cross-validating (default: config modelFile)
  --config FILE    YAML config file (default: embedded defaults, or $ATLAS_CONFIG)
  -q, --quiet      no progress on stderr
  -h, --help       this help

Exit codes:
  0   evaluated      64  usage error      65  no message could be read
  66  a PATH is missing      78  the model file is missing or invalid (EMODEL)`;

interface Item {
  source: string;
  label: 'spam' | 'ham';
  features: Features;
  content: SymbolHit[];
  probability: number;
  score: number;
}

export interface Counts {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

export function metrics(c: Counts): { precision: number; recall: number; f1: number; fpr: number } {
  const precision = c.tp + c.fp ? c.tp / (c.tp + c.fp) : 0;
  const recall = c.tp + c.fn ? c.tp / (c.tp + c.fn) : 0;
  const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
  const fpr = c.fp + c.tn ? c.fp / (c.fp + c.tn) : 0;
  return { precision, recall, f1, fpr };
}

/** Area under the ROC curve by ranks (ties share their mean rank); null without both classes. */
export function auc(scores: { value: number; spam: boolean }[]): number | null {
  const sorted = [...scores].sort((a, b) => a.value - b.value);
  let pos = 0;
  let rankSum = 0;
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j < sorted.length && sorted[j]!.value === sorted[i]!.value) j++;
    const meanRank = (i + 1 + j) / 2;
    for (let k = i; k < j; k++) {
      if (sorted[k]!.spam) {
        pos++;
        rankSum += meanRank;
      }
    }
    i = j;
  }
  const neg = sorted.length - pos;
  if (pos === 0 || neg === 0) return null;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

/** Stratified fold numbers: each class shuffled with the seed, then dealt round-robin. */
export function stratifiedFolds(labels: readonly string[], k: number, seed: number): number[] {
  const fold = new Array<number>(labels.length).fill(0);
  let s = seed >>> 0 || 1;
  for (const label of new Set(labels)) {
    const idx = labels.map((l, i) => (l === label ? i : -1)).filter((i) => i >= 0);
    for (let i = idx.length - 1; i > 0; i--) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      const j = s % (i + 1);
      [idx[i], idx[j]] = [idx[j] as number, idx[i] as number];
    }
    idx.forEach((m, n) => (fold[m] = n % k));
  }
  return fold;
}

const round = (n: number) => Math.round(n * 10000) / 10000;

export async function evalCommand(argv: string[]): Promise<number> {
  const args = parseCommand(
    argv,
    {
      ham: { type: 'string', multiple: true },
      spam: { type: 'string', multiple: true },
      folds: { type: 'string' },
      seed: { type: 'string' },
      model: { type: 'string' },
      config: { type: 'string' },
      quiet: { type: 'boolean', short: 'q' },
    },
    evalHelp,
    false,
  );
  if (!args) return EXIT.OK;
  const folds = intFlag(args.values, 'folds');
  if (folds !== undefined && (folds < 2 || folds > 20)) throw new UsageError(`--folds must be from 2 to 20, got ${folds}`);
  const seed = intFlag(args.values, 'seed') ?? 1729;
  const sources = fileSources(args.values);
  if (sources.length === 0) throw new UsageError('give at least one --ham PATH or --spam PATH');
  const config = loadConfig(args.values.config as string | undefined);
  const required = config.thresholds.required;
  const quiet = args.values.quiet === true;
  const say = (m: string) => {
    if (!quiet) process.stderr.write(m);
  };

  let model = null;
  if (folds === undefined) {
    const file = (args.values.model as string | undefined) ?? config.modelFile;
    model = readModelFile(file);
    if (!model) throw new FilterError('EMODEL', `no model file at ${file} (train one with "atlas-email learn", or use --folds)`, { file });
  }

  const items: Item[] = [];
  for (const src of sources) {
    const source = sourceName(src.describe);
    let n = 0;
    for await (const m of src.messages()) {
      if (m.raw.length === 0 || m.raw.length > limits.maxMessageBytes) continue;
      const p = prepare(m.raw);
      items.push({ source, label: src.label, features: p.features, content: p.symbols, probability: 0.5, score: 0 });
      if (++n % 500 === 0 && process.stderr.isTTY) say(`eval: ${src.describe}: ${n} read\r`);
    }
    say(`eval: ${src.label} ${src.describe}: ${n} messages\n`);
  }
  if (items.length === 0) throw new FilterError('EMALFORMED', 'no message could be read from the given paths');

  const scoreWith = (m: NonNullable<typeof model>, it: Item) => {
    it.probability = spamProbability(m, it.features);
    it.score = (bayesSymbol(it.probability)?.score ?? 0) + ruleSymbols(it.content, m).reduce((a, s) => a + s.score, 0);
  };
  if (folds === undefined) {
    for (const it of items) scoreWith(model!, it);
  } else {
    const fold = stratifiedFolds(
      items.map((it) => it.label),
      folds,
      seed,
    );
    for (let k = 0; k < folds; k++) {
      const m = emptyModel();
      trainBatch(
        m,
        items.filter((_, i) => fold[i] !== k),
        TRAIN_EPOCHS,
        seed + k,
      );
      items.forEach((it, i) => {
        if (fold[i] === k) scoreWith(m, it);
      });
      say(`eval: fold ${k + 1}/${folds} done\n`);
    }
  }

  const bySource = new Map<string, Item[]>();
  for (const it of items) {
    const list = bySource.get(it.source);
    if (list) list.push(it);
    else bySource.set(it.source, [it]);
  }
  const rows: string[][] = [['source', 'ham', 'spam', 'fp', 'fn', 'fpr', 'recall', 'precision', 'f1', 'auc']];
  const count = (list: Item[]): Counts => {
    const c = { tp: 0, fp: 0, tn: 0, fn: 0 };
    for (const it of list) {
      const spam = it.score >= required;
      if (it.label === 'spam') spam ? c.tp++ : c.fn++;
      else spam ? c.fp++ : c.tn++;
    }
    return c;
  };
  const aucOf = (list: Item[]) => auc(list.map((it) => ({ value: it.probability, spam: it.label === 'spam' })));
  const pct = (n: number) => (n * 100).toFixed(2) + '%';
  const row = (name: string, list: Item[]) => {
    const c = count(list);
    const m = metrics(c);
    const a = aucOf(list);
    const ham = c.fp + c.tn;
    const spam = c.tp + c.fn;
    rows.push([
      name,
      String(ham),
      String(spam),
      String(c.fp),
      String(c.fn),
      ham ? pct(m.fpr) : '-',
      spam ? pct(m.recall) : '-',
      c.tp + c.fp ? m.precision.toFixed(4) : '-',
      spam ? m.f1.toFixed(4) : '-',
      a === null ? '-' : a.toFixed(4),
    ]);
  };
  for (const [name, list] of [...bySource].sort((a, b) => (a[0] < b[0] ? -1 : 1))) row(name, list);
  row('all', items);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) process.stdout.write(r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ') + '\n');

  const total = count(items);
  const m = metrics(total);
  const a = aucOf(items);
  const summary = {
    precision: round(m.precision),
    recall: round(m.recall),
    f1: round(m.f1),
    fpr: round(m.fpr),
    auc: a === null ? null : round(a),
    ...total,
    messages: items.length,
    threshold: required,
    folds: folds ?? null,
  };
  process.stdout.write(JSON.stringify(summary) + '\n');
  return EXIT.OK;
}
