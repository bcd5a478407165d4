// The IMAP account as the user names it: imap://USER@HOST:PORT (RFC 5092 style), imaps:// for TLS
// from the first byte. The password never comes from the URL alone when --password-env is given.
import { FilterError } from '../../core/errors.ts';

export type ImapSecurity = 'tls' | 'starttls' | 'plain';

export interface ImapAccount {
  user: string;
  password?: string;
  host: string;
  port: number;
  security: ImapSecurity;
  /** Stable name of the account for checkpoints: user@host:port (never the password). */
  key: string;
}

export interface SecurityFlags {
  tls?: boolean;
  starttls?: boolean;
}

export function parseImapUrl(text: string, flags: SecurityFlags = {}): ImapAccount {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw bad(`"${text}" is not an IMAP URL (expected imap://USER@HOST:PORT)`);
  }
  if (url.protocol !== 'imap:' && url.protocol !== 'imaps:') {
    throw bad(`"${text}" is not an IMAP URL: the scheme must be imap:// or imaps://`);
  }
  if (!url.username) throw bad(`the IMAP URL "${redact(url)}" names no user (imap://USER@HOST:PORT)`);
  if (!url.hostname) throw bad(`the IMAP URL "${redact(url)}" names no host`);
  if (flags.tls && flags.starttls) throw bad('--tls and --starttls exclude each other');
  if (url.pathname && url.pathname !== '/' && url.pathname !== '') {
    throw bad(`the IMAP URL "${redact(url)}" has a path; name folders with --folders`);
  }
  const implicitTls = url.protocol === 'imaps:' || Boolean(flags.tls);
  if (url.protocol === 'imaps:' && flags.starttls) throw bad('imaps:// is TLS from the start; --starttls does not apply');
  const security: ImapSecurity = implicitTls ? 'tls' : flags.starttls ? 'starttls' : 'plain';
  const port = url.port ? Number(url.port) : implicitTls ? 993 : 143;
  // WHATWG URL keeps IPv6 hosts in brackets; sockets want them bare.
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const user = decodeURIComponent(url.username);
  return {
    user,
    password: url.password ? decodeURIComponent(url.password) : undefined,
    host,
    port,
    security,
    key: `${user}@${host}:${port}`,
  };
}

function bad(message: string): FilterError {
  return new FilterError('ECONFIG', message, { option: 'URL' });
}

/** The URL with any password replaced, fit for logs and error messages. */
export function redact(url: URL): string {
  if (!url.password) return url.href;
  const copy = new URL(url.href);
  copy.password = '***';
  return copy.href;
}
