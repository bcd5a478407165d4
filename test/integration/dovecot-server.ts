// Test-side handle on the private Dovecot that test/integration/dovecot.sh runs: start and stop it,
// drop messages straight into a Maildir (much faster than APPEND for thousands), count over IMAP.
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ImapFlow } from 'imapflow';

const script = fileURLToPath(new URL('./dovecot.sh', import.meta.url));
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const MAIL_UID = 65534;

function dovecotInstalled(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v dovecot && command -v doveadm'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Why the Dovecot suites cannot run here, or '' when they can. */
export const dovecotMissing = !dovecotInstalled()
  ? 'dovecot is not installed (bash .ci/system-deps installs dovecot-imapd)'
  : process.getuid?.() !== 0
    ? 'the private Dovecot must be started as root (it runs the mail as uid 65534)'
    : '';
/** CI must run these suites: a missing Dovecot there is a failure, not a skip. */
export const mustRun = process.env.CI === 'true';

export interface Dovecot {
  dir: string;
  port: number;
  env: NodeJS.ProcessEnv;
  /** Drops raw messages into USER's FOLDER (tmp/ then rename into new/, as a delivery agent does). */
  drop(user: string, folder: string, messages: Iterable<Buffer>): number;
  client(user: string, password: string): Promise<ImapFlow>;
  kick(user: string): void;
  stop(): void;
}

export interface TlsFiles {
  cert: string;
  key: string;
  imapsPort: number;
}

/** A self-signed certificate for 127.0.0.1 (trusted by a client through NODE_EXTRA_CA_CERTS). */
export function makeCertificate(dir: string): { cert: string; key: string } {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
    { stdio: 'ignore' },
  );
  return { cert, key };
}

export function startDovecot(port: number, users: Record<string, string>, tls?: TlsFiles): Dovecot {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'atlas-dovecot-'));
  const env = {
    ...process.env,
    ...(tls ? { DC_TLS_CERT: tls.cert, DC_TLS_KEY: tls.key, DC_IMAPS_PORT: String(tls.imapsPort) } : {}),
    DC_DIR: dir,
    DC_PORT: String(port),
    DC_USERS: Object.entries(users)
      .map(([u, p]) => `${u}:${p}`)
      .join(' '),
  };
  execFileSync('bash', [script, 'start'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let serial = 0;
  const maildirs = new Map<string, string>();
  const maildir = (user: string, folder: string) => {
    const k = `${user}/${folder}`;
    let d = maildirs.get(k);
    if (!d) {
      d = execFileSync('bash', [script, 'maildir', user, folder], { env, encoding: 'utf8' }).trim();
      maildirs.set(k, d);
    }
    return d;
  };
  return {
    dir,
    port,
    env,
    drop(user, folder, messages) {
      const d = maildir(user, folder);
      let n = 0;
      for (const raw of messages) {
        const name = `${Math.floor(Date.now() / 1000)}.M${++serial}P${process.pid}.atlas-test${maildirSizes(raw)}`;
        const tmp = path.join(d, 'tmp', name);
        writeFileSync(tmp, raw, { mode: 0o600 });
        chownSync(tmp, MAIL_UID, MAIL_UID);
        renameSync(tmp, path.join(d, 'new', name));
        n++;
      }
      return n;
    },
    async client(user, password) {
      const c = new ImapFlow({ host: '127.0.0.1', port, secure: false, doSTARTTLS: false, auth: { user, pass: password }, logger: false, disableAutoIdle: true });
      c.on('error', () => {});
      await c.connect();
      return c;
    },
    kick(user) {
      execFileSync('bash', [script, 'kick', user], { env, stdio: 'ignore' });
    },
    stop() {
      execFileSync('bash', [script, 'stop'], { env, stdio: 'ignore' });
      if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * ",S=<bytes>,W=<bytes with CRLF>" as Dovecot's own delivery names its Maildir files: the server then
 * answers RFC822.SIZE from the name instead of reading each file, as it does on a real mail store.
 */
export function maildirSizes(raw: Buffer): string {
  let bare = 0;
  for (let i = raw.indexOf(10); i !== -1; i = raw.indexOf(10, i + 1)) if (i === 0 || raw[i - 1] !== 13) bare++;
  return `,S=${raw.length},W=${raw.length + bare}`;
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI (dist/); `onSpawn` gets the child, e.g. to kill it halfway. */
export function runCli(args: string[], env: NodeJS.ProcessEnv, onSpawn?: (child: ReturnType<typeof spawn>) => void): Promise<CliRun> {
  // ATLAS_TEST_DIST: a build of one's own while others rebuild the shared dist/ (see the README).
  const cli = path.join(process.env.ATLAS_TEST_DIST ?? path.join(repoRoot, 'dist'), 'cli/index.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run "npm run build" first (npm test does)`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 150_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    onSpawn?.(child);
  });
}

/**
 * Messages made distinct: an own Message-ID and marker header, and a trailing line after the body, so
 * a copy is neither the same message nor a verdict-cache hit (real folders rarely repeat content).
 */
export function* copies(sources: Buffer[], count: number, tag: string): Generator<Buffer> {
  for (let i = 0; i < count; i++) {
    const src = sources[i % sources.length];
    const text = src.toString('latin1').replace(/^message-id:.*\r?\n/im, '');
    const nl = text.includes('\r\n') ? '\r\n' : '\n';
    const end = text.endsWith('\n') ? '' : nl;
    yield Buffer.from(`Message-ID: <${tag}-${i}@atlas.test>${nl}X-Atlas-Copy: ${i}${nl}${text}${end}${nl}copy ${tag}-${i}${nl}`, 'latin1');
  }
}
