// Loaded by test/core/deno.test.ts under Deno: the core must run unchanged there.
import { createCaches } from '../../src/core/cache.ts';
import { defaultConfig } from '../../src/core/config.ts';
import { loadRules } from '../../src/core/rules/load.ts';
import { scan } from '../../src/core/scan.ts';

const dir = new URL('../../rules/', import.meta.url);
const files = [];
for await (const e of Deno.readDir(dir)) {
  if (e.name.endsWith('.yaml')) files.push({ path: e.name, text: await Deno.readTextFile(new URL(e.name, dir)) });
}
const config = defaultConfig();
const rules = loadRules(files);
const env = { config, rules: () => rules, caches: createCaches(config.cache), now: () => performance.now() };
const raw = await Deno.readFile(new URL('../fixtures/rules/SCAM_SEXTORTION.eml', import.meta.url));
const v = await scan({ raw }, env);
console.log(JSON.stringify({ action: v.action, source: v.source, symbols: v.symbols.map((s) => s.name) }));
