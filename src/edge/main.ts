// Deno entry: `deno serve` (or Deno Deploy) imports this module and calls its default export's fetch.
//   deno serve --host 127.0.0.1 --port 8787 --allow-read=. --allow-env src/edge/main.ts   (npm run edge)
// Settings (environment): ATLAS_CONFIG (YAML), ATLAS_RULES_DIR, ATLAS_MODEL_FILE, ATLAS_LOG_URL and
// ATLAS_LOG_TOKEN (HTTP verdict sink; default: JSON lines on stdout), ATLAS_API_TOKEN (learn routes).
import { parse } from 'yaml';
import { resolveConfig } from '../core/config.ts';
import type { RuleFileText } from '../core/rules/load.ts';
import { createEdgeApp } from './app.ts';
import { consoleSink, httpSink } from './sink.ts';

/** The slice of the Deno namespace this entry uses (typed here: the project type-checks with Node's types). */
interface DenoLike {
  env: { get(name: string): string | undefined; toObject(): Record<string, string> };
  readTextFile(path: string | URL): Promise<string>;
  readFile(path: string | URL): Promise<Uint8Array>;
  readDir(path: string | URL): AsyncIterable<{ name: string; isFile: boolean }>;
  watchFs?(path: string): AsyncIterable<{ kind: string; paths: string[] }>;
  addSignalListener?(signal: 'SIGTERM' | 'SIGINT', handler: () => void): void;
  exit(code: number): never;
  errors: { NotFound: new (...args: never[]) => Error };
}

const Deno = (globalThis as unknown as { Deno: DenoLike }).Deno;
const here = new URL('../../', import.meta.url);
const pathOf = (value: string | undefined, fallback: string): URL => (value ? new URL(value, `file://${Deno.env.get('PWD') ?? '/'}/`) : new URL(fallback, here));

async function readRules(dir: URL): Promise<RuleFileText[]> {
  const files: RuleFileText[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && /\.ya?ml$/.test(e.name)) files.push({ path: e.name, text: await Deno.readTextFile(new URL(e.name, dir)) });
  }
  return files.sort((a, b) => a.path.localeCompare(b.path));
}

async function readModel(file: URL): Promise<Uint8Array | null> {
  try {
    return await Deno.readFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      console.error(`edge: no model at ${file.pathname}; classifying on rules alone`);
      return null;
    }
    throw e;
  }
}

const configFile = Deno.env.get('ATLAS_CONFIG');
const config = resolveConfig(configFile ? parse(await Deno.readTextFile(configFile)) : undefined, Deno.env.toObject(), 1);
const rulesDir = pathOf(Deno.env.get('ATLAS_RULES_DIR') && `${Deno.env.get('ATLAS_RULES_DIR')}/`, 'rules/');
const logUrl = Deno.env.get('ATLAS_LOG_URL');
const edge = createEdgeApp({
  config,
  rules: await readRules(rulesDir),
  model: await readModel(pathOf(Deno.env.get('ATLAS_MODEL_FILE'), 'models/default.model')),
  sink: logUrl ? httpSink({ url: logUrl, token: Deno.env.get('ATLAS_LOG_TOKEN'), log: (m) => console.error(m) }) : consoleSink(),
});

// Hot reload where the runtime can watch files (Deno yes; Deno Deploy has no watcher and redeploys).
if (Deno.watchFs) {
  (async () => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    for await (const _ of Deno.watchFs!(rulesDir.pathname)) {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        try {
          edge.setRules(await readRules(rulesDir));
          console.error(`edge: rules reloaded from ${rulesDir.pathname}`);
        } catch (e) {
          console.error(`edge: rules reload failed, keeping the previous rules: ${(e as Error).message}`);
        }
      }, 100);
    }
  })().catch((e) => console.error(`edge: cannot watch rules: ${(e as Error).message}`));
}

// deno serve waits for idle keep-alive connections to close before exiting on SIGTERM, which a client
// pool may never do: flush the verdict sink and exit instead.
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  Deno.addSignalListener?.(sig, () => {
    edge.sink.flush().finally(() => Deno.exit(0));
  });
}

export default { fetch: edge.fetch };
