// The IMAP connection the sweep and `learn --imap` share: how to open it, which folders exist, and
// what its errors mean (give up with a clear code, or reconnect and go on).
import { ImapFlow } from 'imapflow';
import { FilterError } from '../../core/errors.ts';
import type { ImapAccount } from './url.ts';

export type Client = ImapFlow;

export interface ConnectOptions {
  account: ImapAccount;
  password: string;
  /** Largest literal accepted from the server; bigger messages are refused before they are read. */
  maxLiteralBytes: number;
}

export async function connect(o: ConnectOptions): Promise<Client> {
  const client = new ImapFlow({
    host: o.account.host,
    port: o.account.port,
    secure: o.account.security === 'tls',
    doSTARTTLS: o.account.security === 'starttls' ? true : o.account.security === 'plain' ? false : undefined,
    auth: { user: o.account.user, pass: o.password },
    logger: false,
    // A sweep sends one command after another; IDLE in between would only cost round trips.
    disableAutoIdle: true,
    maxLiteralSize: o.maxLiteralBytes,
    maxResponseSize: o.maxLiteralBytes + 64 * 1024,
    clientInfo: { name: 'atlas-email backfill' },
  });
  // Without a listener a dropped socket would be an uncaught 'error' event; the failing command
  // reports it to the sweep anyway.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (e) {
    client.close();
    throw imapError(e, o.account);
  }
  return client;
}

/** A FilterError for any IMAP failure; `transient` says whether reconnecting may help. */
export function imapError(e: unknown, account: ImapAccount, folder?: string): FilterError {
  if (e instanceof FilterError) return e;
  const err = (e ?? {}) as ImapErrorLike;
  const where = `${account.user}@${account.host}:${account.port}`;
  if (err.authenticationFailed || err.serverResponseCode === 'AUTHENTICATIONFAILED') {
    return new FilterError('EAUTH', `the IMAP server ${account.host}:${account.port} refused the login of "${account.user}" (wrong user or password)`, {
      server: where,
    });
  }
  if (folder && (err.mailboxMissing || err.serverResponseCode === 'NONEXISTENT')) return missingFolder(folder, account);
  const code = String(err.code ?? '');
  if (code === 'ETHROTTLE' || err.serverResponseCode === 'LIMIT') {
    return new FilterError('ETIMEOUT', `the IMAP server ${where} is throttling: ${err.message ?? 'rate limited'}`, {
      server: where,
      throttleMs: err.throttleReset,
    });
  }
  // An untrusted certificate or a server without STARTTLS stays so: say it once, do not retry.
  if ((err.tlsFailed && !CONNECTION_CODES.has(code)) || /CERT|SSL|TLS/.test(code)) {
    return new FilterError('ECONFIG', `TLS with the IMAP server ${where} failed: ${err.message ?? code}`, { option: '--tls', server: where });
  }
  if (CONNECTION_CODES.has(code)) {
    return new FilterError('ENEXTHOP', `the connection to the IMAP server ${where} failed: ${err.message ?? code}`, { server: where, cause: code }, { cause: e });
  }
  const text = err.responseText ? `${err.message}: ${err.responseText}` : (err.message ?? String(e));
  return new FilterError('EPROTOCOL', `IMAP ${err.command ?? 'command'} failed on ${where}${folder ? ` in "${folder}"` : ''}: ${text}`, {
    server: where,
    folder,
  });
}

export function missingFolder(folder: string, account: ImapAccount): FilterError {
  return new FilterError('ECONFIG', `the folder "${folder}" does not exist on ${account.user}@${account.host}:${account.port}`, {
    option: '--folders',
    folder,
  });
}

/** Reconnecting may help: a dropped or timed-out connection, or a server asking us to slow down. */
export function isRetryable(e: FilterError): boolean {
  return e.code === 'ENEXTHOP' || e.code === 'ETIMEOUT';
}

/** Throws a clear error when a folder is missing, before anything is scanned or moved. */
export async function requireFolders(client: Client, folders: string[], account: ImapAccount): Promise<void> {
  const list = await client.list();
  const known = new Set(list.map((m) => (m.path.toUpperCase() === 'INBOX' ? 'INBOX' : m.path)));
  for (const f of folders) {
    if (!known.has(f.toUpperCase() === 'INBOX' ? 'INBOX' : f)) throw missingFolder(f, account);
  }
}

interface ImapErrorLike {
  message?: string;
  code?: string;
  command?: string;
  responseText?: string;
  serverResponseCode?: string;
  authenticationFailed?: boolean;
  mailboxMissing?: boolean;
  tlsFailed?: boolean;
  throttleReset?: number;
}

const CONNECTION_CODES = new Set([
  'NoConnection',
  'EConnectionClosed',
  'ClosedAfterConnectText',
  'ClosedAfterConnectTLS',
  'CONNECT_TIMEOUT',
  'GREETING_TIMEOUT',
  'UPGRADE_TIMEOUT',
  'ETIMEOUT',
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

/** Exponential back-off with a cap; a server's own throttle hint wins when it is longer. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, hintMs?: number): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.max(exp, Math.min(maxMs, hintMs ?? 0));
}
