import { describe, expect, it } from 'vitest';
import { spamHeaders, tagMessage } from '../../src/ingress/headers.ts';

const verdict = (over: Partial<{ spam: boolean; score: number; required: number; names: string[] }> = {}) => ({
  spam: over.spam ?? false,
  score: over.score ?? 1.23,
  required: over.required ?? 5,
  symbols: (over.names ?? ['B_RULE', 'A_RULE']).map((name) => ({ name, score: 1 })),
});

describe('spamHeaders', () => {
  it('writes SpamAssassin-style values with sorted tests', () => {
    const h = Object.fromEntries(spamHeaders(verdict({ spam: true, score: 7.25, names: ['ZED', 'ALPHA', 'ZED'] })));
    expect(h['X-Spam-Flag']).toBe('YES');
    expect(h['X-Spam-Score']).toBe('7.3');
    expect(h['X-Spam-Level']).toBe('*******');
    expect(h['X-Spam-Status']).toBe('Yes, score=7.3 required=5.0 tests=ALPHA,ZED');
  });

  it('says No and tests=none for clean mail, and no stars for negative scores', () => {
    const h = Object.fromEntries(spamHeaders(verdict({ score: -2, names: [] })));
    expect(h['X-Spam-Flag']).toBe('NO');
    expect(h['X-Spam-Level']).toBe('');
    expect(h['X-Spam-Status']).toBe('No, score=-2.0 required=5.0 tests=none');
  });

  it('caps the stars and folds a long test list', () => {
    const names = Array.from({ length: 40 }, (_, i) => `SOME_LONG_SYMBOL_NAME_${i}`);
    const h = Object.fromEntries(spamHeaders(verdict({ spam: true, score: 400, names }), '\r\n'));
    expect(h['X-Spam-Level']).toHaveLength(50);
    const lines = `X-Spam-Status: ${h['X-Spam-Status']}`.split('\r\n');
    expect(lines.length).toBeGreaterThan(5);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(78);
    for (const l of lines.slice(1)) expect(l.startsWith('\t')).toBe(true);
  });
});

describe('tagMessage', () => {
  const msg = Buffer.from(
    'Received: from a\r\n\tby b\r\nX-Spam-Flag: YES\r\nSubject: hi\r\nx-spam-status: No,\r\n forged\r\nFrom: a@b\r\n\r\nbody \xff\r\nX-Spam-Flag: in body stays\r\n',
    'latin1',
  );

  it('strips incoming X-Spam-* (with folds), appends ours at the end of the header block, keeps the body bytes', () => {
    const out = tagMessage(msg, verdict());
    const text = out.toString('latin1');
    const [head, body] = [text.slice(0, text.indexOf('\r\n\r\n') + 2), text.slice(text.indexOf('\r\n\r\n') + 4)];
    expect(head).toBe(
      'Received: from a\r\n\tby b\r\nSubject: hi\r\nFrom: a@b\r\nX-Spam-Flag: NO\r\nX-Spam-Score: 1.2\r\nX-Spam-Level: *\r\nX-Spam-Status: No, score=1.2 required=5.0 tests=A_RULE,B_RULE\r\n',
    );
    expect(Buffer.from(body, 'latin1').equals(msg.subarray(msg.indexOf('\r\n\r\n') + 4))).toBe(true);
  });

  it('rewrites the Subject of spam once, and only of spam', () => {
    const spam = tagMessage(msg, verdict({ spam: true, score: 9 }), { rewriteSubject: '[SPAM] ' }).toString('latin1');
    expect(spam).toContain('\r\nSubject: [SPAM] hi\r\n');
    const again = tagMessage(Buffer.from(spam, 'latin1'), verdict({ spam: true, score: 9 }), { rewriteSubject: '[SPAM] ' }).toString('latin1');
    expect(again).toContain('\r\nSubject: [SPAM] hi\r\n');
    const ham = tagMessage(msg, verdict(), { rewriteSubject: '[SPAM] ' }).toString('latin1');
    expect(ham).toContain('\r\nSubject: hi\r\n');
  });

  it('adds a Subject to spam that has none when rewriting', () => {
    const out = tagMessage(Buffer.from('From: a@b\n\nx\n'), verdict({ spam: true, score: 9 }), { rewriteSubject: '[SPAM] ' }).toString();
    expect(out).toMatch(/^From: a@b\nSubject: \[SPAM\]\nX-Spam-Flag: YES\n/);
  });

  it('matches the names it edits in any case, and a first header line that starts with whitespace', () => {
    const raw = Buffer.from(' X-Spam-Score: 99\r\nX-SPAM-FLAG: YES\r\nsUbJeCt: hi\r\nXY: keep\r\nAuthentication-Results: x; a=b\r\n\r\nbody\r\n');
    const out = tagMessage(raw, verdict({ spam: true, score: 9 }), { rewriteSubject: '[SPAM] ' }).toString();
    expect(out).toBe(
      'sUbJeCt: [SPAM] hi\r\nXY: keep\r\nAuthentication-Results: x; a=b\r\n' +
        'X-Spam-Flag: YES\r\nX-Spam-Score: 9.0\r\nX-Spam-Level: *********\r\nX-Spam-Status: Yes, score=9.0 required=5.0 tests=A_RULE,B_RULE\r\n\r\nbody\r\n',
    );
  });

  it('follows a bare-LF message and prepends to one without a header/body separator', () => {
    expect(tagMessage(Buffer.from('From: a@b\n\nx\n'), verdict()).toString()).toContain('\nX-Spam-Flag: NO\nX-Spam-Score');
    const noSep = Buffer.from('just some text without headers');
    const out = tagMessage(noSep, verdict());
    expect(out.toString().startsWith('X-Spam-Flag: NO\r\n')).toBe(true);
    expect(out.subarray(out.length - noSep.length).equals(noSep)).toBe(true);
  });
});

describe('Authentication-Results', () => {
  it('is added after the X-Spam headers when the auth stage ran', () => {
    const fields = spamHeaders({ spam: false, score: 0, required: 5, symbols: [], authResults: 'mx.example.net;\r\n spf=pass smtp.mailfrom=example.org' }, '\n');
    expect(fields.at(-1)).toEqual(['Authentication-Results', 'mx.example.net;\n spf=pass smtp.mailfrom=example.org']);
    expect(spamHeaders({ spam: false, score: 0, required: 5, symbols: [] }).map(([n]) => n)).not.toContain('Authentication-Results');
  });
});

describe('forged Authentication-Results', () => {
  it('removes incoming ones that claim our authserv-id and keeps the others', () => {
    const raw = Buffer.from(
      'Authentication-Results: MX.example.net; spf=pass smtp.mailfrom=evil.example\r\n' +
        'Authentication-Results: upstream.example; dkim=pass\r\n' +
        'Subject: hi\r\n\r\nbody\r\n',
    );
    const out = tagMessage(raw, { spam: false, score: 0, required: 5, symbols: [], authResults: 'mx.example.net;\r\n spf=fail smtp.mailfrom=evil.example' }).toString();
    expect(out).not.toContain('spf=pass');
    expect(out).toContain('Authentication-Results: upstream.example; dkim=pass\r\n');
    expect(out).toContain('Authentication-Results: mx.example.net;\r\n spf=fail');
    // Without an auth verdict, nothing is ours to claim: all are kept.
    expect(tagMessage(raw, { spam: false, score: 0, required: 5, symbols: [] }).toString()).toContain('spf=pass');
  });
});
