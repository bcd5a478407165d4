// One error family for the whole filter. Every door maps `code` to its own reply in one place
// (HTTP status, SMTP reply, milter response, spamd exit code), so the codes are a stable contract.

export const ErrorCodes = {
  /** The message bytes are unusable (empty, no headers at all). */
  EMALFORMED: 'EMALFORMED',
  /** The message or one of its parts is over a limit from limits.ts. */
  ETOOLARGE: 'ETOOLARGE',
  /** A stage ran past its deadline. */
  ETIMEOUT: 'ETIMEOUT',
  /** The worker pool queue is full: back-pressure, try later. */
  EOVERLOAD: 'EOVERLOAD',
  /** A worker crashed or the pool is closed. */
  EWORKER: 'EWORKER',
  /** A configuration value is invalid; the message names the option. */
  ECONFIG: 'ECONFIG',
  /** A rule file is invalid; the message names file, rule and field. */
  ERULES: 'ERULES',
  /** A model file is missing, truncated or of an unknown format version. */
  EMODEL: 'EMODEL',
  /** The next hop (SMTP re-injection) refused or failed. */
  ENEXTHOP: 'ENEXTHOP',
  /** Storage failed (SQLite read-only, full, locked, corrupt). */
  ESTORE: 'ESTORE',
  /** A client spoke the protocol wrong. */
  EPROTOCOL: 'EPROTOCOL',
  /** Not allowed (missing or wrong token). */
  EAUTH: 'EAUTH',
  /** Anything we did not foresee. */
  EINTERNAL: 'EINTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** Codes that mean "nothing is wrong with the message; ask again later". */
const TRANSIENT: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'ETIMEOUT',
  'EOVERLOAD',
  'EWORKER',
  'ENEXTHOP',
  'ESTORE',
  'EINTERNAL',
]);

export class FilterError extends Error {
  readonly code: ErrorCode;
  /** Extra facts for logs and replies (file, rule, field, limit…). */
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FilterError';
    this.code = code;
    this.details = details;
  }

  /** True when the caller should answer "try later" (4xx / tempfail) rather than fail hard. */
  get transient(): boolean {
    return TRANSIENT.has(this.code);
  }
}

export function isFilterError(err: unknown): err is FilterError {
  return err instanceof FilterError;
}

/** Wraps anything thrown into a FilterError so adapters only ever see one family. */
export function toFilterError(err: unknown, fallback: ErrorCode = 'EINTERNAL'): FilterError {
  if (err instanceof FilterError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new FilterError(fallback, message, {}, { cause: err });
}
