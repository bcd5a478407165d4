// A server a test file started must not outlive the test process: a test that fails before its own stop
// (or a vitest worker that dies) would leave it listening, and the next run would talk to it (it happened
// once with the Postfix filter). The child goes when this process goes.
import type { ChildProcess } from 'node:child_process';

export function reapOnExit(child: ChildProcess): void {
  const reap = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', reap);
  child.once('exit', () => process.off('exit', reap));
}
