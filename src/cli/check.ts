// `atlas-email check`: scans files (or stdin) and prints one JSON verdict per line.
import { readFileSync } from 'node:fs';
import { toFilterError } from '../core/errors.ts';
import { publicVerdict, type Verdict } from '../core/verdict.ts';
import { EXIT, parseCommand, UsageError } from './args.ts';
import { loadConfig } from './config-file.ts';
import { createPipeline } from './pipeline.ts';
import { createRuntime } from './runtime.ts';

export const checkHelp = `Usage: atlas-email check [options] FILE... | -

Scans each message and prints one JSON verdict per line:
  {"file","action","score","required","spam","symbols","source","elapsedMs","messageId"}

Options:
  --rules DIR      rule folder (default: the shipped rules/)
  --config FILE    YAML config file (default: embedded defaults, or $ATLAS_CONFIG)
  --model FILE     model file (default: the shipped models/default.model)
  --no-classify    early rules and cache only: skip the statistical classifier
  --explain        print a readable table of symbols after each verdict
  -h, --help       this help

Exit codes:
  0   every message scanned, none is spam
  1   at least one message is spam (tag, quarantine or reject)
  3   at least one message could not be judged now (tempfail)
  64  usage error     65  a message is unusable (empty, too large)
  66  a file is missing     78  bad config, rules or model`;

export async function checkCommand(argv: string[]): Promise<number> {
  const args = parseCommand(
    argv,
    {
      rules: { type: 'string' },
      config: { type: 'string' },
      model: { type: 'string' },
      'no-classify': { type: 'boolean' },
      explain: { type: 'boolean' },
    },
    checkHelp,
  );
  if (!args) return EXIT.OK;
  if (args.positionals.length === 0) throw new UsageError('give at least one FILE, or - for stdin');
  const config = loadConfig(args.values.config as string | undefined);
  if (args.values.rules) config.rulesDir = args.values.rules as string;
  if (args.values.model) config.modelFile = args.values.model as string;
  const runtime = await createRuntime(config, { classify: !args.values['no-classify'], log: false, caches: () => pipeline.env.caches });
  const pipeline = createPipeline(config, { classifier: runtime.classifier, auth: runtime.auth });
  let worst: number = EXIT.OK;
  try {
    for (const file of args.positionals) {
      const raw = file === '-' ? readFileSync(0) : readFileSync(file);
      let line: Record<string, unknown>;
      let verdict: Verdict | undefined;
      try {
        verdict = await pipeline.scan({ raw: new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength) });
        line = { file, ...publicVerdict(verdict) };
        if (verdict.action === 'tempfail') worst = Math.max(worst, EXIT.TEMPFAIL);
        else if (verdict.spam && worst === EXIT.OK) worst = EXIT.SPAM;
      } catch (e) {
        const err = toFilterError(e);
        line = { file, error: { code: err.code, message: err.message } };
        worst = Math.max(worst, EXIT.DATAERR);
      }
      process.stdout.write(JSON.stringify(line) + '\n');
      if (args.values.explain && verdict) process.stdout.write(explain(verdict) + '\n');
    }
  } finally {
    await pipeline.close();
    await runtime.close();
  }
  return worst;
}

export function explain(v: Verdict): string {
  const rows = [...v.symbols].sort((a, b) => Math.abs(b.score) - Math.abs(a.score));
  const w = Math.max(6, ...rows.map((r) => r.name.length));
  const lines = [
    `  ${v.action.toUpperCase()}  score ${v.score.toFixed(2)} / required ${v.required.toFixed(1)}  (source: ${v.source}, ${v.elapsedMs} ms)`,
    `  ${'symbol'.padEnd(w)}  ${'points'.padStart(7)}  description`,
  ];
  for (const r of rows) lines.push(`  ${r.name.padEnd(w)}  ${r.score.toFixed(2).padStart(7)}  ${r.description ?? ''}`);
  if (rows.length === 0) lines.push('  (no symbols)');
  if (v.reason && v.action === 'tempfail') lines.push(`  reason: ${v.reason}`);
  return lines.join('\n');
}
