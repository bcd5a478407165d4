#!/usr/bin/env node
// The atlas-email command: one file per command, wired here.
import { readFileSync } from 'node:fs';
import { EXIT, exitCodeFor } from './args.ts';
import { backfillCommand } from './backfill.ts';
import { checkCommand } from './check.ts';
import { evalCommand } from './eval.ts';
import { learnCommand } from './learn.ts';
import { historyCommand } from './history.ts';
import { migrateCommand } from './migrate.ts';
import { serveCommand } from './serve.ts';
import { shipped } from './paths.ts';

type Command = (argv: string[]) => Promise<number>;

const commands: Record<string, { run: Command; summary: string }> = {
  serve: { run: serveCommand, summary: 'run the filter: HTTP, SMTP, milter and SPAMC doors' },
  check: { run: checkCommand, summary: 'scan message files and print JSON verdicts' },
  learn: { run: learnCommand, summary: 'train the statistical model on spam and ham (folders or mbox)' },
  eval: { run: evalCommand, summary: 'measure the classifier on labelled mail, or cross-validate it' },
  migrate: { run: migrateCommand, summary: 'move the verdict log schema: up, down, status' },
  history: { run: historyCommand, summary: 'list logged verdicts (filters, JSON lines) or apply retention' },
  backfill: { run: backfillCommand, summary: 'sweep IMAP folders: scan, tag or move spam, resume where it stopped' },
};

function mainHelp(): string {
  const w = Math.max(...Object.keys(commands).map((c) => c.length));
  return `atlas-email — a fast, trustworthy inline mail filter

Usage: atlas-email <command> [options]

Commands:
${Object.entries(commands)
  .map(([name, c]) => `  ${name.padEnd(w)}  ${c.summary}`)
  .join('\n')}

Run "atlas-email <command> --help" for a command's options.
Environment: ATLAS_CONFIG, ATLAS_WORKER_COUNT, ATLAS_BULK_BATCH_SIZE, ATLAS_CACHE_ENABLED,
             ATLAS_MEMORY_LIMIT_MB, ATLAS_CACHE_SIZE_MULTIPLIER, ATLAS_API_TOKEN, ATLAS_NEXT_HOP`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(mainHelp() + '\n');
    return name ? EXIT.OK : EXIT.USAGE;
  }
  if (name === '--version' || name === '-V') {
    const pkg = JSON.parse(readFileSync(shipped('package.json'), 'utf8')) as { version: string };
    process.stdout.write(pkg.version + '\n');
    return EXIT.OK;
  }
  const cmd = commands[name];
  if (!cmd) {
    process.stderr.write(`atlas-email: unknown command "${name}"\n\n${mainHelp()}\n`);
    return EXIT.USAGE;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    return exitCodeFor(e);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.exitCode = exitCodeFor(e);
  },
);
