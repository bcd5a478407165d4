// The one place where the SMTP door turns verdicts and FilterError codes into SMTP replies.
// Rule: only a message that is itself at fault gets a 5xx (Postfix bounces it); anything that is our
// trouble or the next hop's gets 451 so Postfix keeps the message queued and tries again.
import type { ErrorCode, FilterError } from '../../core/errors.ts';

export interface SmtpReply {
  code: number;
  /** RFC 3463 enhanced status, written at the start of the text (smtp-server does not add it). */
  status: string;
  text: string;
}

const BY_CODE: Record<ErrorCode, { code: number; status: string; text: string }> = {
  EMALFORMED: { code: 554, status: '5.6.0', text: 'Message is malformed' },
  ETOOLARGE: { code: 552, status: '5.3.4', text: 'Message too big for the filter' },
  ETIMEOUT: { code: 451, status: '4.4.7', text: 'Scan timed out, try again later' },
  EOVERLOAD: { code: 451, status: '4.3.2', text: 'Filter overloaded, try again later' },
  EWORKER: { code: 451, status: '4.3.0', text: 'Filter worker failed, try again later' },
  ENEXTHOP: { code: 451, status: '4.4.1', text: 'Next hop did not accept the message, try again later' },
  ESTORE: { code: 451, status: '4.3.0', text: 'Quarantine store failed, try again later' },
  ECONFIG: { code: 451, status: '4.3.5', text: 'Filter misconfigured, try again later' },
  ERULES: { code: 451, status: '4.3.5', text: 'Filter rules broken, try again later' },
  EMODEL: { code: 451, status: '4.3.5', text: 'Filter model unavailable, try again later' },
  EPROTOCOL: { code: 451, status: '4.5.0', text: 'Protocol error, try again later' },
  EAUTH: { code: 451, status: '4.7.0', text: 'Not allowed, try again later' },
  EINTERNAL: { code: 451, status: '4.3.0', text: 'Internal filter error, try again later' },
};

/** Reply text must stay on one line and printable; reasons come from rules and remote servers. */
function clean(s: string, max = 300): string {
  const one = s.replace(/[\r\n]+/g, ' ').replace(/[^\x20-\x7e]/g, '?');
  return one.length > max ? one.slice(0, max - 3) + '...' : one;
}

export function replyForError(err: FilterError): SmtpReply {
  const r = BY_CODE[err.code] ?? BY_CODE.EINTERNAL;
  return { code: r.code, status: r.status, text: clean(`${r.text} (${err.code}: ${err.message})`) };
}

export function replyForReject(reason: string | undefined): SmtpReply {
  return { code: 550, status: '5.7.1', text: clean(`Message rejected as spam${reason ? `: ${reason}` : ''}`) };
}

/** A tempfail verdict: the scan ended in a stage error (errorCode set) or a rule asked for a retry. */
export function replyForTempfail(errorCode: string | undefined, reason: string | undefined): SmtpReply {
  const known = errorCode && errorCode in BY_CODE ? BY_CODE[errorCode as ErrorCode] : undefined;
  if (known && known.code === 451) return { code: 451, status: known.status, text: clean(`${known.text}${reason ? ` (${errorCode}: ${reason})` : ''}`) };
  return { code: 451, status: '4.7.1', text: clean(`Try again later${reason ? `: ${reason}` : ''}`) };
}

export function replyText(r: SmtpReply): string {
  return `${r.status} ${r.text}`;
}

/** The error object smtp-server's onData callback turns into a reply. */
export function replyError(r: SmtpReply): Error & { responseCode: number } {
  return Object.assign(new Error(replyText(r)), { responseCode: r.code });
}
