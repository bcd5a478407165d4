// The core must load unchanged on Deno (the edge entry depends on it): run a scan under real Deno.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { root } from '../helpers/env.ts';

const deno = path.join(root, 'node_modules/.bin/deno');

describe('core on Deno', () => {
  it('scans a message with the shipped rules', () => {
    const out = execFileSync(deno, ['run', '--allow-read', '--allow-env', '--no-prompt', 'test/deno/core-smoke.ts'], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' },
    });
    expect(JSON.parse(out.trim().split('\n').at(-1)!)).toEqual({ action: 'reject', source: 'early', symbols: ['SCAM_SEXTORTION'] });
  }, 60_000);
});
