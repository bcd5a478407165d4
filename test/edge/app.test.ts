import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../../src/core/config.ts';
import { createEdgeApp } from '../../src/edge/app.ts';
import { consoleSink } from '../../src/edge/sink.ts';
import { fixture } from '../helpers/env.ts';

describe('edge app', () => {
  it('answers learning without a model as the Node door does: 503 EWORKER, not a 500', async () => {
    const config = defaultConfig();
    config.http.token = 'secret';
    const edge = createEdgeApp({ config, rules: [], model: null, sink: consoleSink(() => {}), log: () => {} });
    const r = await edge.fetch(
      new Request('http://edge/v1/learn/spam', { method: 'POST', headers: { authorization: 'Bearer secret' }, body: fixture('ham-plain.eml') }),
    );
    expect(r.status).toBe(503);
    expect(await r.json()).toMatchObject({ error: { code: 'EWORKER', message: 'no model loaded: start the edge with a model file to learn' } });
  });
});
