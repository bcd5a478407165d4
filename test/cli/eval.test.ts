// `atlas-email eval` as a user runs it: a real process on the built CLI (npm run build first).
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { auc, metrics, stratifiedFolds } from '../../src/cli/eval.ts';
import { root } from '../helpers/env.ts';

const cli = path.join(root, 'dist/cli/index.js');
const run = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });
const fx = (name: string) => path.join(root, 'test/fixtures', name);
const lastJson = (out: string) => JSON.parse(out.trim().split('\n').at(-1)!);

describe('atlas-email eval', () => {
  const model = path.join(mkdtempSync(path.join(os.tmpdir(), 'atlas-eval-')), 'm.model');

  it('--help prints the usage', () => {
    const r = run(['eval', '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Usage: atlas-email eval --ham PATH --spam PATH [--folds K] [--model FILE]');
  });

  it('scores with the given model: a table per source, then one JSON line', () => {
    expect(run(['learn', '-q', '--spam', fx('classify-train/spam'), '--ham', fx('classify-train/ham'), '--model', model]).status).toBe(0);
    const r = run(['eval', '-q', '--ham', fx('classify-train/ham'), '--spam', fx('classify-train/spam'), '--spam', fx('classify-spam.mbox'), '--model', model]);
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^source\s+ham\s+spam\s+fp\s+fn\s+fpr\s+recall\s+precision\s+f1\s+auc$/);
    // Sources: the folder holding ham/ and spam/, and the mbox file's name.
    expect(lines.slice(0, -1).map((l) => l.split(/\s+/).slice(0, 3))).toEqual([
      ['source', 'ham', 'spam'],
      ['classify-spam', '0', '4'],
      ['classify-train', '8', '8'],
      ['all', '8', '12'],
    ]);
    const summary = lastJson(r.stdout);
    expect(Object.keys(summary).slice(0, 5)).toEqual(['precision', 'recall', 'f1', 'fpr', 'auc']);
    expect(summary).toMatchObject({ messages: 20, threshold: 5, folds: null });
    expect(summary.tp + summary.fn).toBe(12);
    expect(summary.tn + summary.fp).toBe(8);
    // Scored on its own training messages, the model ranks every spam above every ham.
    expect(summary.auc).toBe(1);
  });

  it('--folds K cross-validates without a model file', () => {
    const r = run(['eval', '--folds', '2', '--ham', fx('classify-train/ham'), '--spam', fx('classify-train/spam'), '--model', '/nonexistent.model']);
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('eval: fold 2/2 done');
    const s = lastJson(r.stdout);
    expect(s).toMatchObject({ folds: 2, messages: 16 });
    expect(s.tp + s.fn).toBe(8);
    expect(s.auc).toBeGreaterThan(0.5);
  });

  it('exits 78 without a model when not cross-validating, 64 for bad --folds', () => {
    const r = run(['eval', '--ham', fx('classify-train/ham'), '--model', '/nonexistent.model']);
    expect(r.status).toBe(78);
    expect(r.stderr).toContain('no model file at /nonexistent.model');
    expect(run(['eval', '--folds', '1', '--ham', fx('classify-train/ham')]).status).toBe(64);
    expect(run(['eval', '--folds', 'x', '--ham', fx('classify-train/ham')]).status).toBe(64);
  });
});

describe('eval arithmetic', () => {
  it('computes precision, recall, f1 and fpr from counts', () => {
    const m = metrics({ tp: 90, fp: 10, tn: 990, fn: 10 });
    expect(m.precision).toBeCloseTo(0.9, 10);
    expect(m.recall).toBeCloseTo(0.9, 10);
    expect(m.f1).toBeCloseTo(0.9, 10);
    expect(m.fpr).toBeCloseTo(0.01, 10);
    expect(metrics({ tp: 0, fp: 0, tn: 0, fn: 0 })).toEqual({ precision: 0, recall: 0, f1: 0, fpr: 0 });
  });

  it('computes the AUC by ranks, ties sharing their rank', () => {
    expect(auc([{ value: 0.1, spam: false }, { value: 0.9, spam: true }])).toBe(1);
    expect(auc([{ value: 0.9, spam: false }, { value: 0.1, spam: true }])).toBe(0);
    expect(auc([{ value: 0.5, spam: false }, { value: 0.5, spam: true }])).toBe(0.5);
    expect(auc([{ value: 0.5, spam: true }])).toBeNull();
  });

  it('deals stratified folds: each class spread evenly, the same for the same seed', () => {
    const labels = [...Array(10).fill('ham'), ...Array(5).fill('spam')];
    const folds = stratifiedFolds(labels, 5, 42);
    for (let k = 0; k < 5; k++) {
      expect(labels.filter((l, i) => l === 'ham' && folds[i] === k)).toHaveLength(2);
      expect(labels.filter((l, i) => l === 'spam' && folds[i] === k)).toHaveLength(1);
    }
    expect(stratifiedFolds(labels, 5, 42)).toEqual(folds);
    expect(stratifiedFolds(labels, 5, 43)).not.toEqual(folds);
  });
});
