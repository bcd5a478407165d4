// Rspamd 3.4 (Debian's package) as the side-by-side peer of bench/http, set up as shared/recipes/peers.md
// describes: a private LOCAL_CONFDIR with the workers on loopback ports, every network or Redis module
// off and a resolver where nothing listens (a stray lookup fails at once instead of waiting).
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const OFF = [
  'rbl', 'surbl', 'emails', 'dkim', 'spf', 'dmarc', 'arc', 'asn', 'fuzzy_check', 'dcc', 'mx_check', 'reputation',
  'url_redirector', 'rspamd_update', 'bimi', 'external_services', 'antivirus', 'p0f', 'greylist', 'ratelimit',
  'neural', 'replies', 'history_redis', 'once_received',
];

export function hasRspamd() {
  return spawnSync('rspamd', ['--version'], { encoding: 'utf8' }).status === 0;
}

/** Starts rspamd in the foreground (-f) with its normal worker on `port`; resolves once it answers /ping. */
export async function startRspamd(work, port) {
  const conf = path.join(work, 'rspamd');
  for (const d of ['local.d', 'override.d', 'db', 'run', 'log']) mkdirSync(path.join(conf, d), { recursive: true });
  const w = (f, text) => writeFileSync(path.join(conf, f), text);
  w('override.d/worker-normal.inc', `bind_socket = "127.0.0.1:${port}";\n`);
  w('override.d/worker-controller.inc', `bind_socket = "127.0.0.1:${port + 1}";\n`);
  w('override.d/worker-proxy.inc', 'enabled = false;\n');
  w('local.d/options.inc', 'dns { nameserver = ["127.0.0.1:53"]; }\n');
  w('override.d/logging.inc', `type = "file";\nfilename = "${path.join(conf, 'log/rspamd.log')}";\nlevel = "error";\n`);
  for (const m of OFF) w(`local.d/${m}.conf`, 'enabled = false;\n');
  w('local.d/phishing.conf', 'phishtank_enabled = false;\nopenphish_enabled = false;\n');
  w('local.d/hfilter.conf', 'helo_enabled = false;\nhostname_enabled = false;\nfrom_enabled = false;\n');
  const uid = Number(spawnSync('id', ['-u', '_rspamd'], { encoding: 'utf8' }).stdout.trim());
  const gid = Number(spawnSync('id', ['-g', '_rspamd'], { encoding: 'utf8' }).stdout.trim());
  for (const d of ['db', 'run', 'log']) chownSync(path.join(conf, d), uid, gid);
  const child = spawn(
    'rspamd',
    [
      '-f', '-u', '_rspamd', '-g', '_rspamd', '-c', '/etc/rspamd/rspamd.conf',
      `--var=LOCAL_CONFDIR=${conf}`, `--var=DBDIR=${path.join(conf, 'db')}`, `--var=RUNDIR=${path.join(conf, 'run')}`,
      `--var=LOGDIR=${path.join(conf, 'log')}`, '-p', path.join(conf, 'run/rspamd.pid'),
    ],
    // rspamd keeps its caller's stdio open after starting workers: give it files, not pipes.
    { stdio: 'ignore' },
  );
  const exited = new Promise((r) => child.on('exit', (code, sig) => r(code ?? sig)));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`rspamd exited (${child.exitCode}); see ${conf}/log/rspamd.log`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/ping`);
      if ((await r.text()).startsWith('pong')) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`rspamd did not answer on ${port} within 60 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return { child, address: `127.0.0.1:${port}`, exited, pids: () => family(child.pid) };
}

/** The main process and every descendant (rspamd's workers are forked children). */
function family(root) {
  const parent = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // the process ended while we looked
    }
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const [pid, ppid] of parent) if (ppid === out[i]) out.push(pid);
  return out.filter((p) => existsSync(`/proc/${p}`));
}
