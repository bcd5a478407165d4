// `atlas-email serve`: config → runtime (pool, auth) → pipeline → verdict sinks → doors, and on
// SIGTERM the reverse: stop accepting, finish in-flight work, flush the verdict log, exit 0.
import type { Config } from '../core/config.ts';
import { parseHostPort } from '../core/config.ts';
import { FilterError } from '../core/errors.ts';
import type { ScanInput } from '../core/scan.ts';
import type { Verdict } from '../core/verdict.ts';
import { createHttpApp } from '../ingress/http.ts';
import { startHttpServer } from '../ingress/http-node.ts';
import { startSmtpDoor } from '../ingress/smtp.ts';
import { startMilterServer } from '../ingress/milter.ts';
import { startSpamdServer } from '../ingress/spamd.ts';
import { findQuarantined } from '../ingress/smtp/quarantine-find.ts';
import { pagesApp } from '../metrics/pages.ts';
import { processMetrics } from '../metrics/registry.ts';
import { Series } from '../metrics/series.ts';
import { registerStoreMetrics } from '../store/metrics.ts';
import { storeHealth, verdictRoutes } from '../store/routes.ts';
import { openStore, type VerdictStore } from '../store/store.ts';
import { EXIT, parseCommand } from './args.ts';
import { loadConfig } from './config-file.ts';
import { shipped } from './paths.ts';
import { createLearner, type Learner } from './learner.ts';
import { createPipeline, type Pipeline } from './pipeline.ts';
import { createRuntime, type Runtime } from './runtime.ts';

export const serveHelp = `Usage: atlas-email serve [options]

Starts the filter. With no door flags it serves HTTP on 127.0.0.1:8025.

Doors:
  --http HOST:PORT       HTTP verdict API, metrics and pages (default 127.0.0.1:8025)
  --smtp HOST:PORT       Postfix after-queue content filter (e.g. 127.0.0.1:10025)
  --next-hop HOST:PORT   where the SMTP door re-injects mail (e.g. 127.0.0.1:10026)
  --milter HOST:PORT     milter for Postfix smtpd_milters (e.g. 127.0.0.1:11332)
  --spamd HOST:PORT      SPAMC/1.5 protocol, a drop-in for spamd (e.g. 127.0.0.1:7830)
  --no-http              do not start the HTTP door

Options:
  --db FILE              verdict log (default ./data/atlas.db)
  --rules DIR            rule folder (default: the shipped rules/)
  --model FILE           model file (default: the shipped models/default.model)
  --config FILE          YAML config file (default: embedded defaults, or $ATLAS_CONFIG)
  -h, --help             this help

Signals: SIGTERM/SIGINT stop accepting, finish in-flight messages, flush the log, exit 0.
         SIGHUP reloads the rules.

Exit codes: 0 stopped by a signal, 64 usage error, 78 bad config, rules or model, or an address a
door cannot listen on (ECONFIG).`;

/** Everything a door needs; doors take what they use and nothing else. */
export interface DoorDeps {
  config: Config;
  pipeline: Pipeline;
  runtime: Runtime;
  log: (msg: string) => void;
  /** The verdict log (history routes, health, metrics); absent when no log is kept. */
  store?: VerdictStore;
  /** The recent figures behind /performance. */
  series: Series;
  /** pipeline.scan, counted under the door's name for the messages/s-by-door chart. */
  scanAs(door: string): (input: ScanInput) => Promise<Verdict>;
  /** One per process, shared by the doors that learn (HTTP, SPAMC TELL): two would overwrite each other's model file. */
  learner?: Learner;
}

/** A started listener. close() stops accepting, lets in-flight work finish, then resolves. */
export interface Door {
  name: string;
  address: string;
  close(): Promise<void>;
}

/** HTTP on --http (default 127.0.0.1:8025): verdict API, Rspamd's /checkv2, learning, health, /metrics. */
async function startHttpDoor(deps: DoorDeps): Promise<Door> {
  const { config, pipeline, runtime, store } = deps;
  const metrics = processMetrics();
  const pool = runtime.pool;
  metrics.bind({
    caches: pipeline.env.caches,
    poolQueueDepth: pool && (() => pool.stats().queued),
    logQueueDepth: store && (() => store.stats().queued),
  });
  if (store) registerStoreMetrics(metrics.registry, () => store.stats());
  pipeline.onVerdict((v) => metrics.observe(v));
  const learner = deps.learner;
  const poolHealth = () => {
    if (!pool) return { name: 'pool', ok: true, detail: { classifier: 'off (rules only)' } };
    const s = pool.stats();
    // A full queue is "not ready": a balancer should send new mail elsewhere until it drains.
    return { name: 'pool', ok: s.queued < config.pool.queueLength, detail: { classifier: 'running', ...s } };
  };
  const app = createHttpApp({
    config,
    scan: deps.scanAs('http'),
    learn: learner && ((raw, label) => learner.learn(raw, label)),
    health: () => [poolHealth(), ...(store ? [storeHealth(store)] : [])],
    metrics,
    mounts: [
      ...(store ? [{ path: '/', app: verdictRoutes(store) }] : []),
      {
        path: '/',
        app: pagesApp({
          series: deps.series,
          http: config.http,
          assetsDir: shipped('src/metrics/assets'),
          uplotDir: shipped('node_modules/uplot/dist'),
          learnFromQuarantine:
            learner &&
            (async (messageId, label) => {
              const raw = await findQuarantined(config.smtp.quarantineDir, messageId);
              if (!raw) throw new FilterError('EPROTOCOL', `message ${messageId} is not in the quarantine: only held messages can be learned from here`, { status: 404 });
              return { ...(await learner.learn(raw, label)) };
            }),
        }),
      },
    ],
    log: deps.log,
  });
  return startHttpServer({ host: config.http.host, port: config.http.port, app, log: deps.log });
}

/**
 * SPAMC/1.5 on --spamd (7830 suggested: 783 is spamd's own). TELL (spamd.allowTell) trains the shared
 * learner; without a model there is nothing to train and TELL answers EX_UNAVAILABLE.
 */
async function startSpamdDoor(deps: DoorDeps): Promise<Door> {
  const { host, port } = parseHostPort(deps.config.spamd.listen as string, '--spamd');
  const learner = deps.learner;
  return startSpamdServer({
    host,
    port,
    scan: deps.scanAs('spamd'),
    maxMessageBytes: deps.config.maxMessageBytes,
    allowTell: deps.config.spamd.allowTell,
    // The model has no "unlearn", so Remove: local (spamc -L forget) is refused rather than faked.
    learner: learner && {
      learn: async (raw, label) => {
        await learner.learn(raw, label);
        return true;
      },
    },
    rewriteSubject: deps.config.smtp.rewriteSubject,
    log: deps.log,
  });
}

/** Before-queue milter on --milter (Postfix smtpd_milters; deploy/postfix/README.md). */
async function startMilterDoor(deps: DoorDeps): Promise<Door> {
  const { host, port } = parseHostPort(deps.config.milter.listen as string, '--milter');
  return startMilterServer({
    host,
    port,
    scan: deps.scanAs('milter'),
    maxMessageBytes: deps.config.maxMessageBytes,
    defaultAction: deps.config.milter.defaultAction,
    log: deps.log,
  });
}

/** Postfix after-queue content filter on --smtp, re-injecting to --next-hop (deploy/postfix/README.md). */
async function startSmtpFilterDoor(deps: DoorDeps): Promise<Door> {
  const { config } = deps;
  if (!config.smtp.nextHop) throw new FilterError('ECONFIG', '--smtp needs --next-hop HOST:PORT (where filtered mail is re-injected)', { option: '--next-hop' });
  const listen = parseHostPort(config.smtp.listen as string, '--smtp');
  const nextHop = parseHostPort(config.smtp.nextHop, '--next-hop');
  return startSmtpDoor({ ...listen, nextHop, scan: deps.scanAs('smtp'), config, log: deps.log });
}

/**
 * A door that cannot bind (port taken, privileged, address not on this host) is a configuration
 * problem: ECONFIG, exit 78, with the address, rather than an internal error with a stack trace.
 */
function listenFailure(e: unknown): unknown {
  const err = e as NodeJS.ErrnoException | undefined;
  if (err?.syscall !== 'listen') return e;
  return new FilterError('ECONFIG', `a door cannot start: ${err.message}`, { errno: err.code }, { cause: e });
}

export async function serveCommand(argv: string[]): Promise<number> {
  const args = parseCommand(
    argv,
    {
      http: { type: 'string' },
      'no-http': { type: 'boolean' },
      smtp: { type: 'string' },
      'next-hop': { type: 'string' },
      milter: { type: 'string' },
      spamd: { type: 'string' },
      db: { type: 'string' },
      rules: { type: 'string' },
      model: { type: 'string' },
      config: { type: 'string' },
    },
    serveHelp,
    false,
  );
  if (!args) return EXIT.OK;
  const v = args.values as Record<string, string | boolean | undefined>;
  const config = loadConfig(v.config as string | undefined);
  if (v.rules) config.rulesDir = v.rules as string;
  if (v.model) config.modelFile = v.model as string;
  if (v.db) config.dbFile = v.db as string;
  if (v.http) {
    const { host, port } = parseHostPort(v.http as string, '--http');
    config.http.host = host;
    config.http.port = port;
  }
  if (v.smtp) config.smtp.listen = v.smtp as string;
  if (v['next-hop']) config.smtp.nextHop = v['next-hop'] as string;
  if (v.milter) config.milter.listen = v.milter as string;
  if (v.spamd) config.spamd.listen = v.spamd as string;

  const log = (msg: string) => process.stderr.write(`${new Date().toISOString()} ${msg}\n`);
  // Applies pending migrations in the writer thread; a store that cannot be written yet holds verdicts
  // and retries, so mail is still filtered.
  const store = await openStore({ file: config.dbFile, ...config.log, log });
  let runtime: Runtime | undefined;
  let pipeline: Pipeline;
  try {
    // The auth stage reads the pipeline's caches (so /metrics sees its hits) once messages flow.
    runtime = await createRuntime(config, { classify: true, log: true, caches: () => pipeline.env.caches });
    pipeline = createPipeline(config, { watchRules: true, classifier: runtime.classifier, auth: runtime.auth, log });
  } catch (e) {
    // A bad model or rule file ends the start with its code (EMODEL, ERULES: exit 78), but the verdict
    // log's writer thread would keep the process alive, answering nothing: close what is open first.
    await runtime?.close();
    await store.close();
    throw e;
  }
  pipeline.onVerdict((verdict) => store.record(verdict));
  const series = new Series();
  series.bind({
    caches: pipeline.env.caches,
    poolQueueDepth: runtime.pool && (() => runtime.pool!.stats().queued),
    logQueueDepth: () => store.stats().queued,
    memory: () => process.memoryUsage(),
  });
  series.start();
  pipeline.onVerdict((verdict) => series.observe(verdict));
  const scanAs = (door: string) => (input: ScanInput) => {
    series.countDoor(door);
    return pipeline.scan(input);
  };
  const learner = runtime.pool && createLearner({ modelFile: config.modelFile, pool: runtime.pool, caches: pipeline.env.caches });
  const deps: DoorDeps = { config, pipeline, runtime, log, store, series, scanAs, learner };

  const doors: Door[] = [];
  const starters: [boolean, () => Promise<Door>][] = [
    // Each door registers here: [enabled, start]. Order is start order; shutdown is in parallel.
    [!v['no-http'], () => startHttpDoor(deps)],
    [config.smtp.listen !== null, () => startSmtpFilterDoor(deps)],
    [config.spamd.listen !== null, () => startSpamdDoor(deps)],
    [config.milter.listen !== null, () => startMilterDoor(deps)],
  ];
  try {
    for (const [enabled, start] of starters) if (enabled) doors.push(await start());
  } catch (e) {
    await Promise.allSettled(doors.map((d) => d.close()));
    await pipeline.close();
    await runtime.close();
    await store.close();
    throw listenFailure(e);
  }
  for (const d of doors) log(`${d.name} listening on ${d.address}`);
  if (doors.length === 0) log('no door enabled (see --help); nothing to serve');

  process.on('SIGHUP', () => pipeline.rules.reload());
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      log(`${sig}: stopping (finishing in-flight work)`);
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    if (doors.length === 0) resolve();
  });
  await Promise.allSettled(doors.map((d) => d.close()));
  series.stop();
  await pipeline.close();
  await runtime.close();
  // Last: every verdict of the in-flight work above is queued by now.
  await store.close();
  log('stopped');
  return EXIT.OK;
}
