// Shared argument handling: every command has --help, and a bad flag is a usage error (exit 64)
// that names the flag, as sysexits' EX_USAGE.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { FilterError } from '../core/errors.ts';

export const EXIT = {
  OK: 0,
  SPAM: 1,
  TEMPFAIL: 3,
  USAGE: 64,
  DATAERR: 65,
  NOINPUT: 66,
  SOFTWARE: 70,
  IOERR: 74,
  TEMPFAIL_EX: 75,
  /** The server refused our credentials (an IMAP login). */
  NOPERM: 77,
  CONFIG: 78,
} as const;

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/** Parses argv for one command; returns null when --help was asked (the help is already printed). */
export function parseCommand(argv: string[], options: Options, help: string, allowPositionals = true): Parsed | null {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(help.trimEnd() + '\n');
    return null;
  }
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals, strict: true });
    return { values: values as Parsed['values'], positionals };
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

export function intFlag(values: Parsed['values'], name: string): number | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isInteger(n) || n < 0) throw new UsageError(`--${name} must be a whole number, got "${String(v)}"`);
  return n;
}

/** Maps an error to a sysexits code and prints it once, with its stable code. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError) {
    process.stderr.write(`atlas-email: ${err.message}\n(see --help)\n`);
    return EXIT.USAGE;
  }
  if (err instanceof FilterError) {
    process.stderr.write(`atlas-email: ${err.code}: ${err.message}\n`);
    switch (err.code) {
      case 'ECONFIG':
      case 'ERULES':
      case 'EMODEL':
        return EXIT.CONFIG;
      case 'EMALFORMED':
      case 'ETOOLARGE':
        return EXIT.DATAERR;
      case 'ESTORE':
        return EXIT.IOERR;
      case 'EAUTH':
        return EXIT.NOPERM;
      default:
        return err.transient ? EXIT.TEMPFAIL_EX : EXIT.SOFTWARE;
    }
  }
  const e = err as NodeJS.ErrnoException;
  if (e && e.code === 'ENOENT') {
    process.stderr.write(`atlas-email: ENOENT: ${e.message}\n`);
    return EXIT.NOINPUT;
  }
  process.stderr.write(`atlas-email: EINTERNAL: ${e?.stack ?? String(err)}\n`);
  return EXIT.SOFTWARE;
}
