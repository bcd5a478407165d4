// Starts a server process for a bench and waits for the line that says where it listens.
import { spawn } from 'node:child_process';

/**
 * Runs `node ARGS` in `cwd` and resolves once stderr names its address (`http listening on ADDR`);
 * rejects if it exits first or says nothing for a minute. `log()` is everything it wrote to stderr.
 */
export async function spawnListening(args, cwd, pattern = /http listening on (\S+)/) {
  const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => (log += d.toString()));
  const exited = new Promise((r) => child.on('exit', (code, sig) => r(code ?? sig)));
  const address = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`server did not start:\n${log}`)), 60_000);
    child.stderr.on('data', () => {
      const m = pattern.exec(log);
      if (m) {
        clearTimeout(t);
        resolve(m[1]);
      }
    });
    exited.then((c) => reject(new Error(`server exited (${c}):\n${log}`)));
  });
  return { child, address, exited, log: () => log };
}
