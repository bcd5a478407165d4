// The HTTP contract both doors keep — the Node server (`serve --http`) and the Deno edge entry. One list
// of cases, run against each by test/edge/contract.test.ts, so the two cannot drift apart.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { root } from '../helpers/env.ts';

export const contractConfig = 'maxMessageBytes: 100000\nauth: { enabled: false }\n';

const fixture = (name: string) => readFileSync(path.join(root, 'test/fixtures', name));

export interface ContractCase {
  name: string;
  run(base: string): Promise<void>;
}

async function post(base: string, route: string, body: BodyInit | null, headers: Record<string, string> = {}) {
  const res = await fetch(base + route, { method: 'POST', body, headers });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json: json as Record<string, unknown>, text };
}

export const contractCases: ContractCase[] = [
  {
    name: 'POST /v1/check answers a JSON verdict for ham',
    async run(base) {
      const r = await post(base, '/v1/check', fixture('ham-plain.eml'), { IP: '198.51.100.7', From: 'alice@example.org', Rcpt: 'bob@example.net' });
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({ action: 'accept', required: 5, spam: false, messageId: '<20261123091200.12345@mail.example.org>' });
      for (const k of ['score', 'symbols', 'source', 'elapsedMs']) expect(r.json).toHaveProperty(k);
    },
  },
  {
    name: 'POST /v1/check ends early on a high-confidence rule',
    async run(base) {
      const r = await post(base, '/v1/check', fixture('rules/SCAM_SEXTORTION.eml'));
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({ action: 'reject', spam: true, source: 'early', score: 15 });
      expect((r.json.symbols as { name: string }[]).map((s) => s.name)).toEqual(['SCAM_SEXTORTION']);
    },
  },
  {
    name: 'POST /checkv2 answers in Rspamd shape',
    async run(base) {
      const r = await post(base, '/checkv2', fixture('rules/SCAM_SEXTORTION.eml'), { 'Queue-Id': 'Q123' });
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({ action: 'reject', score: 15, required_score: 5 });
      expect((r.json.symbols as Record<string, unknown>).SCAM_SEXTORTION).toMatchObject({ name: 'SCAM_SEXTORTION', score: 15 });
    },
  },
  {
    name: 'an empty body is 400 EMALFORMED',
    async run(base) {
      const r = await post(base, '/v1/check', '');
      expect(r.status).toBe(400);
      expect(r.json).toEqual({ error: { code: 'EMALFORMED', message: expect.any(String) } });
    },
  },
  {
    name: 'a body over the size limit is 413 ETOOLARGE',
    async run(base) {
      const r = await post(base, '/v1/check', Buffer.alloc(150_000, 'a'));
      expect(r.status).toBe(413);
      expect((r.json.error as { code: string }).code).toBe('ETOOLARGE');
    },
  },
  {
    name: 'learning without the token is refused',
    async run(base) {
      const r = await post(base, '/v1/learn/spam', fixture('ham-plain.eml'));
      expect([401, 403]).toContain(r.status);
      expect((r.json.error as { code: string }).code).toBe('EAUTH');
    },
  },
  {
    name: 'GET /v1/health is ok',
    async run(base) {
      const res = await fetch(base + '/v1/health');
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ status: 'ok' });
    },
  },
  {
    name: 'an unknown route is a JSON 404',
    async run(base) {
      const res = await fetch(base + '/nope');
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('EPROTOCOL');
    },
  },
];

export interface Comparable {
  status: number;
  action?: string;
  spam?: boolean;
  score?: number;
  symbols?: Record<string, number>;
}

export async function verdictOf(base: string, raw: Uint8Array): Promise<Comparable> {
  const r = await post(base, '/v1/check', raw);
  if (r.status !== 200) return { status: r.status };
  const v = r.json as { action: string; score: number; spam: boolean; symbols: { name: string; score: number }[] };
  return { status: 200, action: v.action, spam: v.spam, score: v.score, symbols: Object.fromEntries(v.symbols.map((s) => [s.name, s.score])) };
}

/**
 * Why two verdicts for the same message differ, or null when they agree: status, action, spam flag and
 * symbol names must be equal; points may differ by 0.02 — the two runtimes' V8 versions may round the
 * last bit of the model's float arithmetic differently (seen: BAYES_SPAM 7.6 on one, 7.59 on the other).
 */
export function disagreement(a: Comparable, b: Comparable): string | null {
  const near = (x = 0, y = 0) => Math.abs(x - y) <= 0.02;
  if (a.status !== b.status || a.action !== b.action || a.spam !== b.spam || !near(a.score, b.score)) return 'verdict';
  const names = Object.keys(a.symbols ?? {}).sort();
  if (names.join() !== Object.keys(b.symbols ?? {}).sort().join()) return 'symbols';
  const off = names.find((n) => !near(a.symbols?.[n], b.symbols?.[n]));
  return off ? `points of ${off}` : null;
}
