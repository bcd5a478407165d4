import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { analyse, baseDomain, contentRules, contentSymbols, hostOf, htmlToText } from '../../src/core/content.ts';
import { parseMessage } from '../../src/core/parse.ts';

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../fixtures/${name}`, import.meta.url)));
const symbolsOf = (name: string) => contentSymbols(analyse(parseMessage(fixture(name))));
const scoreOf = (symbol: string) => contentRules.find((r) => r.symbol === symbol)!.score;

describe('htmlToText', () => {
  it('keeps visible text, joins words split by inline tags, drops scripts, styles and comments', () => {
    const h = htmlToText('<html><head><title>T</title><style>p{}</style></head><body><p>Dear <b>fr</b>ee&nbsp;m&#111;ney</p><script>"<p>no</p>"</script><!-- <p>gone</p> --></body></html>');
    expect(h.text.replace(/\s+/g, ' ').trim()).toBe('Dear free money');
  });

  it('collects links with their text, counts images and letters in hidden elements', () => {
    const h = htmlToText('<a href="https://x.example/a?b=1&amp;c=2">Go <i>here</i></a><img src=x><div style="display:none">hidden words <div>nested</div> still</div>after');
    expect(h.links).toEqual([{ href: 'https://x.example/a?b=1&c=2', host: 'x.example', text: 'Go here' }]);
    expect(h.images).toBe(1);
    expect(h.hiddenChars).toBe('hiddenwordsnestedstill'.length);
    expect(h.text).toContain('after');
    expect(h.text).not.toContain('hidden');
  });

  it('stays bounded on hostile styles and a 16 KB From header', () => {
    const style = `<span style="${'color:white;'.repeat(300)}">x</span>`;
    expect(htmlToText(style.repeat(60)).hiddenChars).toBe(0);
    const raw = new TextEncoder().encode(`From: ${'a'.repeat(16_000)}\r\nSubject: s\r\n\r\nbody`);
    expect(contentSymbols(analyse(parseMessage(raw)))).toEqual([]);
  });

  it('stays linear on hostile markup (unclosed tags, lone angle brackets)', () => {
    const h = htmlToText('<a href=x>'.repeat(10_000) + '< '.repeat(50_000) + '<head><p>still read</p>');
    expect(h.text).toContain('still read');
  });
});

describe('hosts and domains', () => {
  it('reads the host of a URL and its registrable domain', () => {
    expect(hostOf('https://user:pw@Login.Example.CO.UK:8443/x')).toBe('login.example.co.uk');
    expect(hostOf('www.example.com/path')).toBe('www.example.com');
    expect(hostOf('mailto:a@b.c')).toBe('');
    expect(baseDomain('login.example.co.uk')).toBe('example.co.uk');
    expect(baseDomain('a.b.example.com')).toBe('example.com');
    expect(baseDomain('10.1.2.3')).toBe('10.1.2.3');
  });
});

describe('content rules (each fires on a fixture)', () => {
  const spam = symbolsOf('classify-spam-html.eml');
  const names = spam.map((s) => s.name);

  it.each([
    'MIME_HTML_ONLY',
    'HTML_HIDDEN_TEXT',
    'HTML_LINK_MISMATCH',
    'URL_SHORTENER',
    'URL_IP_HOST',
    'SUBJ_ALL_CAPS',
    'HTML_IMAGE_ONLY',
    'FROM_DISPLAY_DOMAIN_MISMATCH',
  ])('classify-spam-html.eml fires %s with its score', (symbol) => {
    expect(names).toContain(symbol);
    expect(spam.find((s) => s.name === symbol)!.score).toBe(scoreOf(symbol));
  });

  it('names the mismatched link and the shortener in the options', () => {
    expect(spam.find((s) => s.name === 'HTML_LINK_MISMATCH')!.options).toEqual(['https://www.mybank.com/secure -> 198.51.100.7']);
    expect(spam.find((s) => s.name === 'URL_SHORTENER')!.options).toEqual(['bit.ly']);
  });

  it('classify-caps.eml fires BODY_EXCESS_CAPS', () => {
    const s = symbolsOf('classify-caps.eml').find((x) => x.name === 'BODY_EXCESS_CAPS');
    expect(s).toMatchObject({ score: scoreOf('BODY_EXCESS_CAPS'), options: ['100%'] });
  });

  it('a plain, well-formed message fires none', () => {
    expect(symbolsOf('classify-mime.eml')).toEqual([]);
    expect(symbolsOf('classify-train/ham/001.eml')).toEqual([]);
  });
});
