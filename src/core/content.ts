// What the parsed message says to a reader: visible text (HTML turned into text), hidden text, links
// and their domains; and the content rules that look at it (Rspamd-style: symbol, score, check).
// Runtime-neutral.
import { limits } from './limits.ts';
import { header, headerText, type ParsedMessage } from './parse.ts';
import type { SymbolHit } from './verdict.ts';

export interface Link {
  href: string;
  /** Lower-cased host, '' when the href has none (mailto:, relative). */
  host: string;
  /** Visible text of the anchor, when the link came from HTML. */
  text?: string;
}

export interface Content {
  subject: string;
  /** Visible text of all text parts, HTML rendered to text. */
  text: string;
  links: Link[];
  /** Letters inside HTML elements styled to be invisible. */
  hiddenChars: number;
  images: number;
  hasPlain: boolean;
  hasHtml: boolean;
  /** Link text shows one domain while the href goes to another. */
  mismatched: Link[];
  parsed: ParsedMessage;
}

const ENTITIES: Record<string, string> = {
  nbsp: ' ', amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", copy: '©', reg: '®', euro: '€', pound: '£',
  hellip: '…', mdash: '—', ndash: '–', rsquo: '’', lsquo: '‘', rdquo: '”', ldquo: '“', zwnj: '', zwj: '', shy: '',
};

export function decodeEntities(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(/&(#x[0-9a-f]{1,6}|#[0-9]{1,7}|[a-z]{2,8});?/gi, (whole, e: string) => {
    if (e[0] === '#') {
      const n = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return n > 0 && n <= 0x10ffff && !(n >= 0xd800 && n <= 0xdfff) ? String.fromCodePoint(n) : ' ';
    }
    return ENTITIES[e.toLowerCase()] ?? whole;
  });
}

const HIDDEN_STYLE =
  /display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*[01](?:\.\d+)?(?:px|pt)?\s*(?:[;"'!]|$)|opacity\s*:\s*0(?:\.0+)?\s*(?:[;"'!]|$)|max-height\s*:\s*0(?:px)?\s*(?:[;"'!]|$)|color\s*:\s*(?:#fff(?:fff)?|white)\b[^"']{0,200}background(?:-color)?\s*:\s*(?:#fff(?:fff)?|white)\b/i;

interface Html {
  text: string;
  links: Link[];
  hiddenChars: number;
  images: number;
}

// Tags that sit inside words ("fr<b>ee</b>" is one word to a reader); any other tag separates words.
const INLINE = new Set(['a', 'b', 'i', 'u', 's', 'span', 'font', 'strong', 'em', 'small', 'big', 'sup', 'sub', 'abbr', 'mark', 'wbr']);
const SKIP_CONTENT = new Set(['script', 'style', 'title', 'head', 'xml', 'template']);
const VOID = new Set(['br', 'img', 'hr', 'meta', 'link', 'input', 'col', 'area', 'base', 'wbr', 'source']);

/**
 * Renders HTML to its visible text in one forward pass (no backtracking regular expressions over the
 * whole document, so hostile markup stays linear): skips comments, scripts and styles, collects
 * links with their text, counts images, and counts letters inside invisible elements.
 */
export function htmlToText(html: string): Html {
  const h = html.length > limits.maxHtmlChars ? html.slice(0, limits.maxHtmlChars) : html;
  const n = h.length;
  const out: string[] = [];
  const links: Link[] = [];
  let images = 0;
  let hiddenChars = 0;
  const hidden: { name: string; nest: number }[] = [];
  let link: { href: string; text: string[] } | null = null;
  let i = 0;
  let nextGt = -1;
  // End tags searched for and not found: a thousand unclosed <head>s must not search a thousand times.
  const noClose = new Set<string>();
  const text = (chunk: string) => {
    if (!chunk) return;
    if (hidden.length > 0) {
      for (let k = 0; k < chunk.length; k++) {
        const c = chunk.charCodeAt(k);
        if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c >= 0xc0) hiddenChars++;
      }
      return;
    }
    out.push(chunk);
    if (link && link.text.length < 50) link.text.push(chunk);
  };
  while (i < n) {
    const lt = h.indexOf('<', i);
    if (lt < 0) {
      text(h.slice(i));
      break;
    }
    text(h.slice(i, lt));
    if (h.startsWith('<!--', lt)) {
      const end = h.indexOf('-->', lt + 4);
      i = end < 0 ? n : end + 3;
      continue;
    }
    // Remembered: a run of lone "<" before one far ">" must not search for it again each time.
    if (nextGt <= lt) nextGt = h.indexOf('>', lt + 1);
    const gt = nextGt;
    if (gt < 0) {
      text(h.slice(lt));
      break;
    }
    if (gt - lt > 4000) {
      // Not a tag after all: a lone "<" in text.
      text('<');
      i = lt + 1;
      continue;
    }
    i = gt + 1;
    const closing = h.charCodeAt(lt + 1) === 47;
    let e = lt + (closing ? 2 : 1);
    const nameStart = e;
    while (e < gt) {
      const c = h.charCodeAt(e) | 0x20;
      if ((c >= 97 && c <= 122) || (c >= 48 && c <= 57 && e > nameStart)) e++;
      else break;
    }
    const name = h.slice(nameStart, e).toLowerCase();
    if (!name) continue;
    if (closing) {
      const top = hidden[hidden.length - 1];
      if (top && top.name === name) {
        if (top.nest > 0) top.nest--;
        else hidden.pop();
      }
      if (name === 'a' && link) {
        const t = decodeEntities(link.text.join('')).replace(/\s+/g, ' ').trim();
        links.push({ href: link.href, host: hostOf(link.href), text: t });
        link = null;
      }
      if (!INLINE.has(name)) out.push('\n');
      continue;
    }
    if (SKIP_CONTENT.has(name) && h.charCodeAt(gt - 1) !== 47) {
      const end = noClose.has(name) ? -1 : indexOfCloseTag(h, name, gt + 1);
      if (end < 0) noClose.add(name);
      // A <head> left open would hide the whole body: only skip when its end tag is there.
      if (end >= 0) i = end;
      else if (name !== 'head') i = n;
      continue;
    }
    const attrs = e < gt ? h.slice(e, gt) : '';
    if (name === 'img') {
      images++;
      continue;
    }
    if (!INLINE.has(name)) out.push(name === 'br' || name === 'p' || name === 'div' || name === 'tr' || name === 'li' ? '\n' : ' ');
    if (attrs) {
      const top = hidden[hidden.length - 1];
      if (top && top.name === name && !VOID.has(name)) top.nest++;
      else if (!VOID.has(name) && isHidden(attrs)) {
        hidden.push({ name, nest: 0 });
      }
      if (name === 'a' && links.length < limits.maxUrls) {
        const hm = /\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))/i.exec(attrs);
        if (hm) {
          if (link) links.push({ href: link.href, host: hostOf(link.href), text: decodeEntities(link.text.join('')).trim() });
          link = { href: decodeEntities((hm[1] ?? hm[2] ?? hm[3] ?? '').trim()), text: [] };
        }
      }
    } else if (hidden.length > 0 && hidden[hidden.length - 1]!.name === name && !VOID.has(name)) hidden[hidden.length - 1]!.nest++;
  }
  if (link) links.push({ href: link.href, host: hostOf(link.href), text: decodeEntities(link.text.join('')).trim() });
  return { text: decodeEntities(out.join('')), links, hiddenChars, images };
}

/** An element the reader cannot see: the hidden attribute or an invisible style. */
function isHidden(attrs: string): boolean {
  if (/(?:^|\s)hidden(?:\s|=|\/|$)/i.test(attrs)) return true;
  return attrs.length < 3000 && /style\s*=/i.test(attrs) && HIDDEN_STYLE.test(attrs);
}

/** Index just past the end tag </name ...>, case-insensitive, or -1. */
function indexOfCloseTag(h: string, name: string, from: number): number {
  const re = new RegExp(`</${name}\\s*>`, 'gi');
  re.lastIndex = from;
  const m = re.exec(h);
  return m ? m.index + m[0].length : -1;
}

/** Host of a URL, lower-cased, without credentials or port; '' when none. */
export function hostOf(url: string): string {
  const m = /^(?:[a-z][a-z0-9+.-]*:)?\/\/(?:[^@/?#\s]*@)?(\[[^\]]*\]|[^/?#:\s\\]+)/i.exec(url.trim());
  if (!m) return /^www\./i.test(url) ? hostOf('http://' + url) : '';
  return (m[1] as string).toLowerCase().replace(/\.$/, '');
}

const TWO_LEVEL = /^(?:co|com|net|org|gov|edu|ac|or|ne|go|gob|mil|nic)$/;

/** The registrable part of a host, approximated without a public-suffix list (co.uk, com.br…). */
export function baseDomain(host: string): string {
  if (/^[\d.]+$/.test(host) || host.startsWith('[')) return host;
  const labels = host.split('.');
  if (labels.length <= 2) return host;
  const n = labels.length;
  const take = (labels[n - 1] as string).length === 2 && TWO_LEVEL.test(labels[n - 2] as string) ? 3 : 2;
  return labels.slice(n - take).join('.');
}

// A domain shown as link text, starting a word: "www.bank.com", "https://bank.com/login".
const SHOWN_DOMAIN = /(?:^|[\s(<\[])(?:https?:\/\/)?([a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63}){1,6})(?=[/\s)>\]]|$)/i;

const URL_RE = /\b(?:https?:\/\/|www\.)[^\s<>"'()[\]{}]{2,2000}/gi;

export function analyse(parsed: ParsedMessage): Content {
  const texts: string[] = [];
  const links: Link[] = [];
  let hiddenChars = 0;
  let images = 0;
  let hasPlain = false;
  let hasHtml = false;
  for (const p of parsed.parts) {
    if (p.html) {
      hasHtml = true;
      const h = htmlToText(p.text);
      texts.push(h.text);
      for (const l of h.links) if (links.length < limits.maxUrls) links.push(l);
      hiddenChars += h.hiddenChars;
      images += h.images;
    } else {
      if (p.text.trim()) hasPlain = true;
      texts.push(p.text);
    }
  }
  const text = texts.join('\n');
  for (const m of text.matchAll(URL_RE)) {
    if (links.length >= limits.maxUrls) break;
    const href = m[0].replace(/[.,;:!?]+$/, '');
    links.push({ href, host: hostOf(href) });
  }
  const mismatched: Link[] = [];
  for (const l of links) {
    if (!l.text || !l.host || !l.text.includes('.')) continue;
    const shown = SHOWN_DOMAIN.exec(l.text.length > 300 ? l.text.slice(0, 300) : l.text);
    if (!shown) continue;
    const shownHost = (shown[1] as string).toLowerCase();
    if (/\.[a-z]{2,}$/.test(shownHost) && baseDomain(shownHost) !== baseDomain(l.host)) mismatched.push(l);
  }
  return { subject: parsed.subject, text, links, hiddenChars, images, hasPlain, hasHtml, mismatched, parsed };
}

const SHORTENERS = new Set([
  'bit.ly', 'bitly.com', 'tinyurl.com', 'goo.gl', 't.co', 'ow.ly', 'is.gd', 'buff.ly', 'rebrand.ly', 'cutt.ly',
  'shorturl.at', 'rb.gy', 't.ly', 'tiny.cc', 'bl.ink', 's.id', 'shorte.st', 'adf.ly', 'lnkd.in', 'v.gd', 'qrco.de',
  'tr.im', 'x.co', 'u.to', 'clck.ru', 'urlz.fr', 'shorturl.com', 'short.io', 'tiny.one', 'snip.ly',
]);

const statsCache = new WeakMap<Content, { letters: number; upper: number }>();

/** Letter counts of the body text, computed once per message for the rules that need them. */
function bodyStats(c: Content): { letters: number; upper: number } {
  let s = statsCache.get(c);
  if (!s) {
    s = letterStats(c.text);
    statsCache.set(c, s);
  }
  return s;
}

function letterStats(s: string): { letters: number; upper: number } {
  let letters = 0;
  let upper = 0;
  const n = Math.min(s.length, 20_000);
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) {
      letters++;
      upper++;
    } else if (c >= 97 && c <= 122) letters++;
  }
  return { letters, upper };
}

export interface ContentRule {
  symbol: string;
  score: number;
  description: string;
  /** Returns the options to show when the rule fires, or null. */
  check: (c: Content) => string[] | null;
}

/**
 * Scores are deliberately modest: they add evidence beside the model, which carries the decision.
 * Each was set from how often the rule fires on corpus ham versus spam (bench/README.md), so that
 * together with BAYES_SPAM they do not push the ham false-positive rate over 0.1%.
 */
export const contentRules: readonly ContentRule[] = [
  {
    symbol: 'MIME_HTML_ONLY',
    score: 0.3,
    description: 'HTML part without a plain-text alternative',
    check: (c) => (c.hasHtml && !c.hasPlain ? [] : null),
  },
  {
    symbol: 'HTML_HIDDEN_TEXT',
    score: 1.5,
    description: 'HTML contains text styled to be invisible',
    check: (c) => (c.hiddenChars >= 30 ? [`${c.hiddenChars} letters`] : null),
  },
  {
    symbol: 'HTML_LINK_MISMATCH',
    score: 1.5,
    description: 'link text shows a different domain than the link goes to',
    check: (c) => (c.mismatched.length > 0 ? c.mismatched.slice(0, 3).map((l) => `${l.text ?? ''} -> ${l.host}`) : null),
  },
  {
    symbol: 'URL_SHORTENER',
    score: 1.0,
    description: 'links through a URL shortener',
    check: (c) => {
      const hosts = [...new Set(c.links.map((l) => l.host).filter((h) => SHORTENERS.has(h.replace(/^www\./, ''))))];
      return hosts.length > 0 ? hosts.slice(0, 3) : null;
    },
  },
  {
    symbol: 'URL_IP_HOST',
    score: 1.0,
    description: 'links to a bare IP address',
    check: (c) => {
      const ips = c.links.filter((l) => /^\d{1,3}(?:\.\d{1,3}){3}$/.test(l.host)).map((l) => l.host);
      return ips.length > 0 ? [...new Set(ips)].slice(0, 3) : null;
    },
  },
  {
    symbol: 'SUBJ_ALL_CAPS',
    score: 0.5,
    description: 'subject is mostly capital letters',
    check: (c) => {
      const s = letterStats(c.subject);
      return s.letters >= 10 && s.upper / s.letters >= 0.8 ? [] : null;
    },
  },
  {
    symbol: 'BODY_EXCESS_CAPS',
    score: 0.5,
    description: 'body text is mostly capital letters',
    check: (c) => {
      const s = bodyStats(c);
      return s.letters >= 200 && s.upper / s.letters >= 0.5 ? [`${Math.round((100 * s.upper) / s.letters)}%`] : null;
    },
  },
  {
    symbol: 'HTML_IMAGE_ONLY',
    score: 1.0,
    description: 'HTML with images and almost no text',
    check: (c) => (c.hasHtml && c.images > 0 && bodyStats(c).letters < 200 ? [`${c.images} images`] : null),
  },
  {
    symbol: 'FROM_DISPLAY_DOMAIN_MISMATCH',
    score: 1.0,
    description: 'From display name shows an address in another domain than the sender',
    check: (c) => {
      const from = headerText(header(c.parsed.headers, 'from') ?? '');
      // Real From headers are short; a hostile 16 KB one must not cost a quadratic regex search.
      if (from.length > 500) return null;
      const m = /^\s*"?[^<"]*?([a-z0-9._%+-]+@([a-z0-9-]+\.)+[a-z]{2,})[^<]*"?\s*<[^@>]*@([^>]+)>/i.exec(from);
      if (!m) return null;
      const shown = (m[1] as string).split('@')[1] as string;
      return baseDomain(shown.toLowerCase()) !== baseDomain((m[3] as string).toLowerCase().trim()) ? [m[1] as string] : null;
    },
  },
];

export function contentSymbols(c: Content): SymbolHit[] {
  const out: SymbolHit[] = [];
  for (const r of contentRules) {
    const options = r.check(c);
    if (options) out.push(options.length ? { name: r.symbol, score: r.score, description: r.description, options } : { name: r.symbol, score: r.score, description: r.description });
  }
  return out;
}
