// The DATA encoding of a message (RFC 5321 4.5.2): a dot at the start of a line is doubled, every line
// ends in CRLF, and the data ends with CRLF.CRLF. Bare CR and bare LF become CRLF, so no receiver that
// treats a lone CR or LF as a line end can be made to see the terminator inside the message (SMTP
// smuggling). Runs once per re-injected message: Postfix hands over CRLF text in which dot lines are
// rare, so the common case finds every line end with the native indexOf and returns the message itself
// plus the terminator, without copying it.

const DOT = Buffer.from('.');
const CR = Buffer.from('\r');
const LF = Buffer.from('\n');
const LF_DOT = Buffer.from('\n.');
const TERMINATOR = Buffer.from('.\r\n');
const CRLF_TERMINATOR = Buffer.from('\r\n.\r\n');
const LF_TERMINATOR = Buffer.from('\n.\r\n');

/** Whether the message has a CR that is not followed by LF (the last byte excepted: the end fixes that). */
function hasBareCr(raw: Buffer): boolean {
  for (let i = raw.indexOf(13); i >= 0 && i < raw.length - 1; i = raw.indexOf(13, i + 1)) {
    if (raw[i + 1] !== 10) return true;
  }
  return false;
}

/** The byte-by-byte encoding, for the rare message with a bare CR. */
function encodeSlow(raw: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let copied = 0;
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i];
    const prev = i > 0 ? raw[i - 1] : 10;
    let insert: Buffer | null = null;
    if (prev === 13 && b !== 10) insert = b === 46 ? LF_DOT : LF;
    else if (b === 10 && prev !== 13) insert = CR;
    else if (b === 46 && prev === 10) insert = DOT;
    if (insert) {
      if (i > copied) out.push(raw.subarray(copied, i));
      out.push(insert);
      copied = i;
    }
  }
  if (copied < raw.length) out.push(raw.subarray(copied));
  return out;
}

/**
 * The message as DATA bytes, terminator included: a list of pieces to write in order (slices of `raw`
 * and short constants), so the caller can hand them to the socket without joining them.
 */
export function dotStuff(raw: Buffer): Buffer[] {
  let out: Buffer[];
  if (hasBareCr(raw)) out = encodeSlow(raw);
  else {
    out = [];
    let copied = 0;
    if (raw[0] === 46) out.push(DOT);
    for (let i = raw.indexOf(10); i >= 0; i = raw.indexOf(10, i + 1)) {
      const bare = i === 0 || raw[i - 1] !== 13;
      const dot = raw[i + 1] === 46;
      if (!bare && !dot) continue;
      if (bare) {
        if (i > copied) out.push(raw.subarray(copied, i));
        out.push(CR);
        copied = i;
      }
      if (dot) {
        out.push(raw.subarray(copied, i + 1), DOT);
        copied = i + 1;
      }
    }
    if (copied < raw.length) out.push(copied === 0 ? raw : raw.subarray(copied));
  }
  // An empty message still gets one (empty) line, as every other client sends it.
  const last = raw.length > 0 ? raw[raw.length - 1] : -1;
  out.push(last === 10 ? TERMINATOR : last === 13 ? LF_TERMINATOR : CRLF_TERMINATOR);
  return out;
}
